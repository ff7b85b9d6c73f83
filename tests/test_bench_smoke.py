"""The benchmark script runs, and its table says what it should (bench/bench_vs_keras.py).

The benchmark itself is not a test: timings depend on the machine. What is
tested here is the script, in its tiny ``--quick`` mode (32x32, batch 1, one
repeat): every case has a row with numbers and a numeric ratio, the JSON
agrees with the table, numvgg and Keras really got the same weights and data
(their outputs and first losses agree), and the machine report names the
BLAS and versions. The run takes about a minute (TensorFlow is imported twice:
once in the script, once in the memory case's Keras child process).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# The module fixture runs the benchmark script: minutes on a busy 2-core machine.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "bench_vs_keras.py"
CASES = ("forward", "train_full", "train_frozen", "memory", "winograd")
# VGG16 without top: 13 conv layers, 14,714,688 float32 parameters.
VGG16_NOTOP_BYTES = 14_714_688 * 4


def has_winograd_switch() -> bool:
    """True when numvgg lets one choose a Winograd forward (``numvgg.config``)."""
    try:
        from numvgg import config
    except ImportError:
        return False
    return hasattr(config, "using_conv_algorithm") and any(
        "winograd" in name for name in getattr(config, "CONV_ALGORITHMS", ())
    )


def run_script(*args, timeout=900):
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def table_rows(stdout: str) -> dict[str, list[str]]:
    """The Markdown table's body rows, keyed by the first cell (the case)."""
    rows = {}
    for line in stdout.splitlines():
        if line.startswith("| ") and not line.startswith("| case ") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows[cells[0]] = cells
    return rows


@pytest.fixture(scope="module")
def quick_run(keras, tmp_path_factory):
    """One ``--quick`` run of every case: (stdout, parsed JSON)."""
    out = tmp_path_factory.mktemp("bench") / "out.json"
    done = run_script("--quick", "--json", str(out))
    assert done.returncode == 0, f"benchmark failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout, json.loads(out.read_text())


def test_table_has_every_case_with_numbers(quick_run):
    stdout, report = quick_run
    rows = table_rows(stdout)
    assert list(rows) == list(CASES)
    for case, (_, _what, ours, theirs, ratio, goal, met) in rows.items():
        if case == "winograd" and not has_winograd_switch():
            # Only allowed to be missing when numvgg offers no conv algorithm choice.
            assert (ours, theirs, ratio) == ("n/a", "n/a", "n/a")
            continue
        unit = "GiB" if case == "memory" else "s"
        for cell in (ours, theirs):
            number, cell_unit = cell.split()
            assert cell_unit == unit and float(number) >= 0, (case, cell)
        assert float(ratio) > 0, (case, ratio)
        assert goal and met == "-", "quick mode is not the goals' size: no verdict"


def test_json_agrees_with_table(quick_run):
    stdout, report = quick_run
    rows = table_rows(stdout)
    assert report["config"]["batch"] == 1 and report["config"]["size"] == 32
    for result in report["results"]:
        if result["ratio"] is None:
            continue
        assert rows[result["case"]][4] == f"{result['ratio']:.2f}"
        assert (
            result["ratio"] == pytest.approx(result["numvgg"] / result["keras"], rel=1e-6)
            or result["case"] == "memory"
        )
        if "numvgg_times" in result:
            assert len(result["numvgg_times"]) == len(result["keras_times"]) == 1
            assert result["numvgg"] == statistics.median(result["numvgg_times"])
            assert result["keras"] == statistics.median(result["keras_times"])


def test_both_frameworks_computed_the_same_thing(quick_run):
    """Same weights and data: outputs agree, and the first training step's losses agree."""
    _, report = quick_run
    by_case = {r["case"]: r for r in report["results"]}
    assert by_case["forward"]["check_rel_diff"] < 1e-4
    if has_winograd_switch():
        assert by_case["winograd"]["check_rel_diff"] < 1e-4
    for case in ("train_full", "train_frozen"):
        first = by_case[case]["first_loss"]
        assert np.isfinite(first["numvgg"])
        assert first["numvgg"] == pytest.approx(first["keras"], rel=1e-4, abs=1e-6)


def test_memory_case_measures_a_fresh_child(quick_run):
    _, report = quick_run
    memory = next(r for r in report["results"] if r["case"] == "memory")
    for name in ("numvgg", "keras"):
        detail = memory["detail"][name]
        assert detail["framework"] == name
        assert detail["weights_bytes"] == VGG16_NOTOP_BYTES
        assert detail["peak_rss"] >= detail["above_baseline"] >= 0
        assert detail["output_shape"] == [2, 1, 1, 512]
        assert memory[name] == pytest.approx(detail["above_baseline"] / 2**30)
    # TensorFlow alone is far bigger than numvgg: the two children really differ.
    assert memory["detail"]["keras"]["baseline_rss"] > memory["detail"]["numvgg"]["baseline_rss"]


def test_machine_report_names_blas_and_versions(quick_run):
    stdout, report = quick_run
    machine = report["machine"]
    assert machine["numpy"] == np.__version__
    assert f"numpy {np.__version__}" in stdout and "tensorflow " in stdout
    assert any(lib["internal_api"] and lib["num_threads"] for lib in machine["blas"])
    assert "Thread pool: blas/" in stdout and "kernel " in stdout
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        line = next(l for l in stdout.splitlines() if l.startswith(var + ":"))
        assert line.endswith("unset") or "SET to" in line


def test_profile_mode_lists_numvgg_functions():
    # Top 8: the call chain down to the layer (predict_on_batch .. Conv2D.forward) takes 5 places.
    done = run_script("--quick", "--profile", "--profile-top", "8", timeout=300)
    assert done.returncode == 0, done.stderr
    assert "## Profile: numvgg forward, batch 1, 32x32" in done.stdout
    assert "conv2d_forward" in done.stdout
    assert "tensorflow" not in done.stdout  # the profile runs numvgg alone


def test_unknown_case_is_rejected():
    done = run_script("--cases", "forward,backwards", timeout=120)
    assert done.returncode == 2
    assert "unknown case(s) ['backwards']" in done.stderr
