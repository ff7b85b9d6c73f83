"""Running a course with numvgg.exercises: isolation, batch grading, teachers' exercises, hints.

What must hold:

* a submission that exits, hangs, crashes, eats memory, prints a fake report or
  rewrites numvgg FAILs with a line that says which, and the batch goes on;
* handing the work to numvgg's own function (a wrapper, a layer, the
  optimizer) FAILs;
* ``grade`` turns a folder of mixed submissions into the expected table, CSV
  and JSON, and its exit code says whether the run worked;
* a teacher's exercise folder is listed, started, checked and graded like a
  built-in one;
* the default handout holds no worked solution; ``--lang zh`` hands out Chinese;
* the check gaps of issue 11 are closed, each shown by a wrong solution.
"""

from __future__ import annotations

import csv
import io
import json
import pickle
import textwrap
from pathlib import Path

import numpy as np
import pytest

from numvgg.exercises import EXERCISES, check_file, get_exercise
from numvgg.exercises.batch import (
    find_submissions,
    grade_folder,
    table,
    to_csv,
    to_json,
)
from numvgg.exercises.catalog import FolderExercise, all_exercises
from numvgg.exercises.cli import main
from numvgg.exercises.grading import CheckFailed, assert_close
from numvgg.exercises.handout import select_hints
from numvgg.exercises.isolation import Limits
from numvgg.exercises.wire import FrameReader, SafeUnpickler

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples" / "exercises"
FAST = Limits(timeout=20.0, memory_mb=1024)

GOOD_RELU = """\
    import numpy as np

    def relu_backward(dout, mask):
        return np.where(mask, dout, np.zeros((), dtype=dout.dtype))

    def sigmoid_backward(dout, s):
        return dout * s * (1 - s)
    """

# Each bad submission of relu_sigmoid_backward, and the words its FAIL line must contain.
BAD = {
    "exits_at_import": (
        "import sys\nsys.exit(0)\n",
        "while importing the file: your code called sys.exit(0)",
    ),
    "os_exit_at_import": ("import os\nos._exit(0)\n", "exit code 0"),
    "fake_report": ("import os\nprint('All 7 checks passed.')\nos._exit(0)\n", "exit code 0"),
    "exits_in_function": (
        "import sys\ndef relu_backward(dout, mask):\n    sys.exit(3)\n"
        "def sigmoid_backward(dout, s):\n    return dout * s * (1 - s)\n",
        "called sys.exit(3)",
    ),
    "hangs_in_function": (
        "def relu_backward(dout, mask):\n    while True:\n        pass\n"
        "def sigmoid_backward(dout, s):\n    return dout\n",
        "time limit",
    ),
    "crashes": (
        "import ctypes\ndef relu_backward(dout, mask):\n    return ctypes.string_at(0)\n"
        "def sigmoid_backward(dout, s):\n    return dout\n",
        "signal SIGSEGV",
    ),
    "eats_memory": (
        "import numpy as np\ndef relu_backward(dout, mask):\n    return np.ones(1 << 31)\n"
        "def sigmoid_backward(dout, s):\n    return dout\n",
        "ran out of memory",
    ),
    # Wrong answers, then numvgg rewritten so that they would look right inside that process.
    "monkey_patches": (
        """\
import numpy as np
import numvgg.exercises.checker as checker
import numvgg.exercises.grading as grading
import numvgg.ops.activations as activations

def relu_backward(dout, mask):
    return np.zeros_like(dout)

def sigmoid_backward(dout, s):
    return np.zeros_like(dout)

activations.relu_backward = relu_backward
activations.sigmoid_backward = sigmoid_backward
grading.assert_close = lambda *args, **kwargs: "max abs error 0"
grading.gradient_check = lambda *args, **kwargs: "rel. error 0"
checker.run_checks = lambda *args, **kwargs: []
""",
        "max abs error",
    ),
    "wraps_numvgg": (
        "from numvgg.ops import activations\n"
        "def relu_backward(dout, mask):\n    return activations.relu_backward(dout, mask)\n"
        "def sigmoid_backward(dout, s):\n    return activations.sigmoid_backward(dout, s)\n",
        "numvgg's own relu_backward()",
    ),
}


def write(path: Path, source: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


# -- isolation: every way a submission can misbehave --------------------------------------------------


@pytest.mark.slow
def test_bad_submissions_fail_with_their_reason_and_the_batch_goes_on(tmp_path):
    folder = tmp_path / "class"
    for student, (source, _) in BAD.items():
        write(folder / student / "relu_sigmoid_backward.py", source)
    write(folder / "zz_good" / "relu_sigmoid_backward.py", GOOD_RELU)
    limits = Limits(timeout=12.0, memory_mb=1024)  # the endless loop costs this much
    result = grade_folder(folder, [get_exercise("relu_sigmoid_backward")], limits, jobs=2)
    assert not result.run_failed
    good = result.reports[("zz_good", "relu_sigmoid_backward")]
    assert good.passed, str(good)
    for student, (_, reason) in BAD.items():
        report = result.reports[(student, "relu_sigmoid_backward")]
        assert not report.passed, (student, str(report))
        assert reason in str(report), (student, str(report))
        assert report.points < report.max_points or report.error, student


def test_fake_report_is_shown_as_output_not_taken_as_the_verdict(tmp_path):
    path = write(tmp_path / "relu_sigmoid_backward.py", BAD["fake_report"][0])
    report = check_file("relu_sigmoid_backward", path, FAST)
    assert "All 7 checks passed." in report.output
    assert not report.passed and report.exit_code == 1
    assert str(report).splitlines()[-1].startswith("  FAIL  exit")


def test_monkey_patching_numvgg_cannot_change_the_verdict(tmp_path):
    path = write(tmp_path / "relu_sigmoid_backward.py", BAD["monkey_patches"][0])
    report = check_file("relu_sigmoid_backward", path, FAST)
    assert report.points == 1, str(report)  # only "leaves dout unchanged" is true of zeros_like
    assert "leaves dout unchanged" in next(r.title for r in report.results if r.status == "PASS")


def test_delegation_through_the_optimizer_is_caught(tmp_path):
    path = write(
        tmp_path / "adam_step.py",
        """\
        import numpy as np
        from numvgg.optimizers import Adam

        def adam_update(variable, gradient, m, v, t, learning_rate=0.001, beta_1=0.9, beta_2=0.999,
                        epsilon=1e-7):
            opt = Adam(learning_rate, beta_1, beta_2, epsilon)
            w = variable.copy()
            opt.build([w])
            opt.momentums[0][...] = m
            opt.velocities[0][...] = v
            opt._iterations = t - 1
            opt.apply([gradient], [w])
            return w, opt.momentums[0].copy(), opt.velocities[0].copy()
        """,
    )
    report = check_file("adam_step", path, FAST)
    assert report.points == 0
    assert "numvgg's own Adam.update_step()" in str(report)


def test_inputs_changed_in_the_students_process_are_detected(tmp_path):
    """Rewriting a numvgg function a check builds its inputs with gives other inputs over there."""
    path = write(
        tmp_path / "relu_sigmoid_backward.py",
        textwrap.dedent(GOOD_RELU)
        + textwrap.dedent("""\
        import numvgg.ops.activations as activations
        activations.relu_forward = lambda x: (np.maximum(x, 0), x <= 0)     # an inverted mask
        """),
    )
    report = check_file("relu_sigmoid_backward", path, FAST)
    assert not report.passed
    assert "received other inputs" in str(report)


def test_the_grader_never_unpickles_code():
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    payload = pickle.dumps(Evil(), protocol=4)
    with pytest.raises(pickle.UnpicklingError, match="refusing builtins.print"):
        SafeUnpickler(io.BytesIO(payload)).load()
    frame = len(payload).to_bytes(8, "little") + payload
    with pytest.raises(pickle.UnpicklingError):
        FrameReader().feed(frame)


def test_limits_are_validated():
    with pytest.raises(ValueError, match="timeout"):
        Limits(timeout=0)
    with pytest.raises(ValueError, match="memory_mb"):
        Limits(memory_mb=10)


# -- batch grading ----------------------------------------------------------------------------------------

GAP_NO_DIVISION = """\
    import numpy as np

    def global_average_pooling2d_forward(x):
        return x.mean(axis=(1, 2)), x.shape

    def global_average_pooling2d_backward(dout, x_shape):
        return np.broadcast_to(dout[:, None, None, :], x_shape).copy()
    """


def _mixed_class(folder: Path) -> None:
    write(folder / "alice" / "relu_sigmoid_backward.py", GOOD_RELU)
    write(folder / "alice" / "global_average_pooling.py", GAP_NO_DIVISION)
    write(folder / "alice" / "notes.txt", "not a submission")
    write(folder / "bob__relu_sigmoid_backward.py", "import sys\nsys.exit(1)\n")
    write(folder / "carol" / "global_average_pooling.py", "def global_average_pooling2d_forward(x:\n")


EXPECTED_TABLE = """\
student  relu_sigmoid_backward  global_average_pooling  total
-------  ---------------------  ----------------------  -----
alice                      7/7                     3/7  10/14
bob                      0/7 !                 missing   0/14
carol                  missing                   0/7 !   0/14
! the file could not be graded at all (see --csv or --json for why)"""


def test_naming_rule(tmp_path):
    _mixed_class(tmp_path)
    found = {(s.student, s.exercise) for s in find_submissions(tmp_path, [e.name for e in EXERCISES])}
    assert found == {
        ("alice", "relu_sigmoid_backward"),
        ("alice", "global_average_pooling"),
        ("bob", "relu_sigmoid_backward"),
        ("carol", "global_average_pooling"),
    }


def test_grade_a_mixed_folder_to_table_csv_and_json(tmp_path, capsys):
    _mixed_class(tmp_path / "class")
    csv_path, json_path = tmp_path / "out.csv", tmp_path / "out.json"
    code = main(
        [
            "grade",
            str(tmp_path / "class"),
            "--exercise",
            "relu_sigmoid_backward",
            "--exercise",
            "global_average_pooling",
            "--csv",
            str(csv_path),
            "--json",
            str(json_path),
            "--jobs",
            "2",
            "--timeout",
            "30",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err  # students failing is not the run failing
    assert out.startswith(EXPECTED_TABLE), out
    assert "3/3" in err  # the progress bar counts students

    rows = list(csv.DictReader(io.StringIO(csv_path.read_text())))
    alice_gap = [r for r in rows if r["student"] == "alice" and r["exercise"] == "global_average_pooling"]
    assert len(alice_gap) == 7
    assert [r["status"] for r in alice_gap].count("PASS") == 3
    division = next(r for r in alice_gap if r["check"].startswith("backward, known answer"))
    assert division["status"] == "FAIL" and division["points"] == "0" and "divide by 15" in division["detail"]
    bob = [r for r in rows if r["student"] == "bob" and r["exercise"] == "relu_sigmoid_backward"]
    assert bob[0]["status"] == "FAIL" and "sys.exit(1)" in bob[0]["detail"]
    missing = [r for r in rows if r["student"] == "bob" and r["exercise"] == "global_average_pooling"]
    assert missing == [
        {
            "student": "bob",
            "exercise": "global_average_pooling",
            "file": "",
            "check": "",
            "status": "MISSING",
            "points": "0",
            "max_points": "7",
            "detail": "no file handed in",
        }
    ]

    document = json.loads(json_path.read_text())
    assert document["exercises"] == ["relu_sigmoid_backward", "global_average_pooling"]
    assert [(s["student"], s["points"], s["max_points"]) for s in document["students"]] == [
        ("alice", 10, 14),
        ("bob", 0, 14),
        ("carol", 0, 14),
    ]
    carol = document["students"][2]["exercises"]["global_average_pooling"]
    assert carol["status"] == "failed" and "SyntaxError at line 1" in carol["error"]
    alice = document["students"][0]["exercises"]["relu_sigmoid_backward"]
    assert alice["status"] == "passed" and len(alice["checks"]) == 7
    assert all(c["points"] == c["max_points"] == 1 for c in alice["checks"])


def test_grade_exit_codes(tmp_path, capsys):
    assert main(["grade", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["grade", str(tmp_path / "empty")]) == 1
    assert "no submissions" in capsys.readouterr().err
    assert main(["grade", str(tmp_path / "empty"), "--exercise", "nope"]) == 2
    assert main(["grade", str(tmp_path / "empty"), "--jobs", "0"]) == 2


def test_table_csv_json_from_a_result_without_processes(tmp_path):
    """The formatters alone, on the result of a one-student folder graded in this process's children."""
    write(tmp_path / "dave" / "relu_sigmoid_backward.py", GOOD_RELU)
    result = grade_folder(tmp_path, [get_exercise("relu_sigmoid_backward")], FAST)
    assert table(result).splitlines()[2].split() == ["dave", "7/7", "7/7"]
    assert to_csv(result).count("\n") == 8
    assert json.loads(to_json(result, FAST))["limits"] == {"timeout_s": 20.0, "memory_mb": 1024}


# -- teachers' exercises ----------------------------------------------------------------------------------

LEAKY = """\
    import numpy as np

    def leaky_relu_forward(x, negative_slope=0.3):
        return np.where(x > 0, x, x * x.dtype.type(negative_slope)), (x, negative_slope)

    def leaky_relu_backward(dout, cache):
        x, slope = cache
        return np.where(x > 0, dout, dout * slope)
    """


def test_teacher_exercise_from_a_folder(tmp_path, capsys, monkeypatch):
    exercise = FolderExercise(EXAMPLES / "leaky_relu")
    assert exercise.function_names == ["leaky_relu_forward", "leaky_relu_backward"]
    args = ["--exercises-dir", str(EXAMPLES)]
    assert main(["list", *args]) == 0
    assert "leaky_relu  " in capsys.readouterr().out
    assert main(["check", "leaky_relu", "--reference", *args]) == 0
    assert "All 5 checks passed." in capsys.readouterr().out
    assert main(["start", "leaky_relu", str(tmp_path / "hand"), *args]) == 0
    capsys.readouterr()
    assert (tmp_path / "hand" / "leaky_relu.py").read_text() == (
        EXAMPLES / "leaky_relu" / "skeleton.py"
    ).read_text()
    assert main(["check", "leaky_relu", str(tmp_path / "hand" / "leaky_relu.py"), *args]) == 1
    assert "not implemented" in capsys.readouterr().out

    write(tmp_path / "class" / "erin__leaky_relu.py", LEAKY)
    write(tmp_path / "class" / "frank__leaky_relu.py", LEAKY.replace("dout * slope", "dout * 0"))
    monkeypatch.setenv("NUMVGG_EXERCISES", str(EXAMPLES / "leaky_relu"))  # the environment variable too
    assert "leaky_relu" in [e.name for e in all_exercises()]
    assert main(["grade", str(tmp_path / "class"), "--no-progress"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].split() == ["erin", "6/6", "6/6"]  # the gradient check is worth 2 points
    assert lines[3].split() == ["frank", "3/6", "3/6"]  # the three forward checks


def test_teacher_exercises_from_an_entry_point(monkeypatch):
    class EntryPoint:
        def load(self):
            return [str(EXAMPLES)]

    import importlib.metadata

    monkeypatch.setattr(
        importlib.metadata,
        "entry_points",
        lambda group: [EntryPoint()] if group == "numvgg.exercises" else [],
    )
    assert [e.name for e in all_exercises()][-1] == "leaky_relu"
    assert get_exercise("leaky_relu").summary.startswith("LeakyReLU")


def test_teacher_exercise_folder_errors(tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "exercise.py").write_text("SUMMARY = 'x'\n")
    with pytest.raises(ValueError, match="lacks text.md, skeleton.py"):
        all_exercises([tmp_path])
    with pytest.raises(ValueError, match="does not exist"):
        all_exercises([tmp_path / "missing"])


# -- hints and languages -------------------------------------------------------------------------------------


def test_default_handout_gives_no_solution(tmp_path):
    assert main(["start", "conv2d_backward", str(tmp_path)]) == 0
    text = (tmp_path / "conv2d_backward.md").read_text()
    assert "cols.T @ dout_rows" not in text and "<!--" not in text
    assert "explicit ends" in text  # the hints are there
    full = get_exercise("conv2d_backward").text(hints="full")
    assert "cols.T @ dout_rows" in full
    none = get_exercise("conv2d_backward").text(hints="none")
    assert "## Hints" not in none and "## Shapes" in none
    assert main(["start", "adam_step", str(tmp_path)]) == 0
    for handout in ((tmp_path / "adam_step.py").read_text(), (tmp_path / "adam_step.md").read_text()):
        assert "alpha * m /" not in handout and "np.sqrt(1 - " not in handout
    assert "alpha * m / (sqrt(v) + epsilon)" in get_exercise("adam_step").text(hints="full")


def test_select_hints_rejects_bad_markers():
    assert select_hints("a\n<!-- hints: full -->\nb\n<!-- end hints -->\nc\n", "some") == "a\nc\n"
    with pytest.raises(ValueError, match="never closed"):
        select_hints("<!-- hints: full -->\nb\n", "full")
    with pytest.raises(ValueError, match="hint level"):
        select_hints("a", "all")


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.name)
def test_chinese_texts_exist_and_match_the_english_structure(exercise, tmp_path):
    for hints in ("none", "some", "full"):
        en, zh = exercise.text("en", hints), exercise.text("zh", hints)
        assert zh.startswith(f"# 练习：{exercise.name}")
        assert sum("\u4e00" <= ch <= "\u9fff" for ch in zh) > 30
        for function in exercise.function_names:
            assert function in zh
        # The same code and commands: every indented line of the English text is in the Chinese one.
        en_code = [line for line in en.splitlines() if line.startswith("    ")]
        zh_code = [line for line in zh.splitlines() if line.startswith("    ")]
        assert en_code == zh_code, (hints, set(en_code) ^ set(zh_code))
    assert main(["start", exercise.name, str(tmp_path), "--lang", "zh"]) == 0
    assert (tmp_path / f"{exercise.name}.md").read_text(encoding="utf-8") == exercise.text("zh", "some")


# -- the check gaps of issue 11 ----------------------------------------------------------------------------------


def test_assert_close_fails_when_the_reference_is_nan():
    with pytest.raises(CheckFailed, match="expected value has 1 NaN"):
        assert_close(np.array([1.0, 2.0]), np.array([np.nan, 2.0]), "out")
    with pytest.raises(CheckFailed):
        assert_close(np.array([np.nan]), np.array([np.nan]), "out")


def test_conv_backward_symmetric_crop_fails_the_uneven_padding_check(tmp_path):
    path = write(
        tmp_path / "conv2d_backward.py",
        """\
        import numpy as np
        from numvgg.ops.conv import col2im, im2col, pad_input

        def conv2d_backward(dout, cache, need_input_grad=True, need_weight_grads=True):
            x, kernel, strides, pads = cache
            kh, kw, c, f = kernel.shape
            xp = pad_input(x, pads)
            rows = dout.reshape(-1, f)
            dk = (im2col(xp, kh, kw, strides).T @ rows).reshape(kernel.shape) if need_weight_grads else None
            db = rows.sum(axis=0) if need_weight_grads else None
            if not need_input_grad:
                return None, dk, db
            dxp = col2im(rows @ kernel.reshape(-1, f).T, xp.shape, kh, kw, strides)
            pt, pl = pads[0], pads[2]              # the same amount off both sides
            return dxp[:, pt:xp.shape[1] - pt, pl:xp.shape[2] - pl, :], dk, db
        """,
    )
    report = check_file("conv2d_backward", path, FAST)
    uneven = [r for r in report.results if "uneven padding" in r.title]
    assert len(uneven) == 1 and uneven[0].status == "FAIL", str(report)
    assert "'valid'" in [r.title for r in report.results if r.status == "PASS"][2]  # symmetric cases pass


def test_softmax_log_of_shifted_softmax_is_rejected(tmp_path):
    path = write(
        tmp_path / "softmax_cross_entropy.py",
        """\
        import numpy as np

        def softmax_cross_entropy_forward(logits, y_true):
            e = np.exp(logits - logits.max(axis=-1, keepdims=True))
            p = e / e.sum(axis=-1, keepdims=True)
            return -np.sum(y_true * np.log(p)) / logits.shape[0], (p, y_true)

        def softmax_cross_entropy_backward(dloss, cache):
            p, y_true = cache
            return dloss * (p - y_true) / p.shape[0]
        """,
    )
    report = check_file("softmax_cross_entropy", path, FAST)
    failed = {r.title: r.detail for r in report.results if r.status == "FAIL"}
    assert set(failed) == {
        "forward, entries far apart within a row: logits [[0, -800, 5], ...]: no log(0)",
        "forward, float32 logits 110 apart within a row: no log(0)",
    }, str(report)
    assert all("log-softmax directly" in detail for detail in failed.values())


# -- your layer inside VGG16 ----------------------------------------------------------------------------------

DENSE = """\
    import numpy as np

    def dense_forward(x, kernel, bias):
        out = np.tensordot(x, kernel, axes=1)
        return (out if bias is None else out + bias), (x, kernel)

    def dense_backward(dout, cache, need_input_grad=True, need_weight_grads=True):
        x, kernel = cache
        dx = np.tensordot(dout, kernel, axes=(-1, -1)) if need_input_grad else None
        if not need_weight_grads:
            return dx, None, None
        x2, d2 = x.reshape(-1, x.shape[-1]), dout.reshape(-1, dout.shape[-1])
        return dx, np.einsum("ni,nk->ik", x2, d2), {bias_grad}
    """


@pytest.mark.slow
def test_run_puts_the_students_function_into_vgg16(tmp_path, capsys):
    good = write(tmp_path / "good" / "dense.py", DENSE.replace("{bias_grad}", "d2.sum(axis=0)"))
    assert main(["run", "dense", str(good), "--no-keras"]) == 0
    out = capsys.readouterr().out
    assert (
        "Your code ran in place of: numvgg.ops.dense:dense_backward, numvgg.ops.dense:dense_forward." in out
    )
    rows = [line.split() for line in out.splitlines() if line.startswith(("fc1", "block1_conv1"))]
    assert [r[:2] for r in rows] == [
        ["block1_conv1", "output"],
        ["fc1", "output"],
        ["fc1", "grad_input"],
        ["block1_conv1", "grad_input"],
    ]
    assert all(r[-1] == "ok" for r in rows) and "Every layer agrees." in out
    assert "Keras: not compared (--no-keras)" in out

    broken = write(
        tmp_path / "broken" / "dense.py",
        DENSE.replace("{bias_grad}", "d2.sum(axis=0)").replace("axes=(-1, -1)) if", "axes=(-1, -1)) * 2 if"),
    )
    assert main(["run", "dense", str(broken), "--no-keras"]) == 1
    out = capsys.readouterr().out
    assert "predictions   grad_input" in out and "DIFFERS" in out
    assert "the first is predictions grad_input" in out

    assert main(["run", "adam_step", str(good)]) == 2
    assert "has no place in VGG16" in capsys.readouterr().err


@pytest.mark.keras
@pytest.mark.slow
def test_run_compares_with_keras_when_installed(tmp_path, capsys, keras):
    good = write(tmp_path / "dense.py", DENSE.replace("{bias_grad}", "d2.sum(axis=0)"))
    assert main(["run", "dense", str(good)]) == 0
    out = capsys.readouterr().out
    assert "vs Keras" in out and "Keras: its VGG16 with the same weights" in out
    assert "Every layer agrees." in out
