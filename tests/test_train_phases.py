"""bench/train_phases.py runs, finds every phase's function, and its phases add up to the step."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import train_phases  # noqa: E402


def test_every_phase_function_exists():
    for phase, owner, attribute in train_phases.phase_targets():
        assert callable(getattr(owner, attribute, None)), (phase, attribute)


def test_a_tiny_run_prints_every_phase():
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "train_phases.py"),
            "--size",
            "32",
            "--batch",
            "2",
            "--repeats",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    rows = dict(re.findall(r"^\| ([^|]+?) \| ([0-9.]+) \|", result.stdout, re.MULTILINE))
    phases = [phase for phase, _, _ in train_phases.phase_targets()]
    assert set(phases) <= set(rows), result.stdout
    assert float(rows["backward: conv dkernel"]) > 0  # winograd4 layers go through kernel_gradient
    step = float(re.search(r"\*\*step\*\* \| \*\*([0-9.]+)\*\*", result.stdout).group(1))
    assert sum(float(rows[p]) for p in phases) <= step * 1.01
