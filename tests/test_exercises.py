"""numvgg.exercises: skeletons from the library's source, and the auto-checker.

What must hold:

* numvgg's own code passes every check of every exercise (``--reference``);
* an untouched skeleton fails every check with "not implemented", exit code 1,
  and no traceback;
* classic bugs (col2im with ``=``, max-pool splitting ties, softmax without
  the max shift, Adam without bias correction, in-place ``dout``, ``[pad:-pad]``,
  a missing ``1/(H*W)``) fail with a message that points at the cause;
* correct solutions written differently from the library pass;
* ``list`` / ``start`` / ``check`` behave as the command-line contract says.

Student files are written to ``tmp_path`` as short, self-contained strings.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import subprocess
import sys
import textwrap

import pytest

from numvgg.exercises import EXERCISES, check_file, check_reference, get_exercise, make_skeleton, names
from numvgg.exercises.cli import main, register
from numvgg.exercises.dotted import resolve
from numvgg.exercises.skeleton import blank_function

ALL = names()


def write(tmp_path, name, source):
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def result(report, title_part):
    """The one check result whose title contains ``title_part``."""
    matches = [r for r in report.results if title_part in r.title]
    assert len(matches) == 1, (title_part, [r.title for r in report.results])
    return matches[0]


# -- the catalog and the skeletons -------------------------------------------------------------------


def test_at_least_eight_exercises_with_texts():
    assert len(EXERCISES) >= 8
    assert len(set(ALL)) == len(ALL)
    for exercise in EXERCISES:
        text = exercise.text()
        assert text.startswith(f"# Exercise: {exercise.name}")
        for function in exercise.function_names:
            assert function in text, (exercise.name, function)
        assert f"check {exercise.name}" in text


@pytest.mark.parametrize("name", ALL)
def test_reference_passes_every_check(name):
    report = check_reference(name)
    assert report.passed, str(report)
    assert len(report.results) >= 5
    assert report.exit_code == 0


@pytest.mark.parametrize("name", ALL)
def test_skeleton_keeps_library_signatures_and_docstrings(name):
    exercise = get_exercise(name)
    source = make_skeleton(exercise)
    tree = ast.parse(source)
    defined = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert sorted(defined) == sorted(exercise.function_names)
    namespace = {}
    exec(compile(source, f"{name}.py", "exec"), namespace)  # the helper imports resolve
    for dotted in exercise.functions:
        reference = resolve(dotted)
        skeleton_fn = namespace[reference.__name__]
        assert str(inspect.signature(skeleton_fn)) == str(inspect.signature(reference))
        assert inspect.getdoc(skeleton_fn) == inspect.getdoc(reference)
        body = defined[reference.__name__].body
        assert len(body) == 2 and isinstance(body[1], ast.Raise), "body must be docstring + raise only"
        with pytest.raises(NotImplementedError, match=f"exercise: implement {reference.__name__}"):
            skeleton_fn(*[None] * len(inspect.signature(reference).parameters))


def test_blank_function_drops_the_body_and_keeps_the_signature():
    def sample(a, b=2):
        """Doc line.

        More doc.
        """
        secret = a + b  # the answer must not leak into the skeleton
        return secret

    blanked = blank_function(sample)
    assert "secret" not in blanked
    assert blanked.startswith("def sample(a, b=2):")
    assert '"""Doc line.' in blanked
    assert blanked.rstrip().endswith('raise NotImplementedError("exercise: implement sample")')


@pytest.mark.parametrize("name", ALL)
def test_untouched_skeleton_fails_cleanly(name, tmp_path, capsys):
    assert main(["start", name, str(tmp_path)]) == 0
    capsys.readouterr()
    code = main(["check", name, str(tmp_path / f"{name}.py")])
    out = capsys.readouterr().out
    assert code == 1
    assert "Traceback" not in out
    check_lines = [line for line in out.splitlines() if line.startswith("  ")]
    assert check_lines and all(
        line.startswith("  FAIL") and "not implemented" in line for line in check_lines
    ), out
    assert "0 of" in out


def test_untouched_skeleton_via_subprocess_has_no_traceback(tmp_path):
    run = [sys.executable, "-m", "numvgg.exercises"]
    started = subprocess.run(run + ["start", "col2im", str(tmp_path)], capture_output=True, text=True)
    assert started.returncode == 0, started.stderr
    checked = subprocess.run(
        run + ["check", "col2im", str(tmp_path / "col2im.py")], capture_output=True, text=True
    )
    assert checked.returncode == 1
    assert "not implemented" in checked.stdout
    assert "Traceback" not in checked.stdout + checked.stderr


# -- the command line -----------------------------------------------------------------------------------


def test_list_prints_one_exercise_per_line(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == ALL
    for line, exercise in zip(lines, EXERCISES):
        assert line.split(None, 1)[1] == exercise.summary


def test_list_via_python_dash_m():
    proc = subprocess.run([sys.executable, "-m", "numvgg.exercises", "list"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert [line.split()[0] for line in proc.stdout.strip().splitlines()] == ALL


def test_start_writes_importable_files_and_refuses_to_overwrite(tmp_path, capsys):
    target = tmp_path / "work"
    assert main(["start", "im2col", str(target)]) == 0
    skeleton, notes = target / "im2col.py", target / "im2col.md"
    assert notes.read_text() == get_exercise("im2col").text(hints="some")  # the default handout
    namespace = {}
    exec(compile(skeleton.read_text(), str(skeleton), "exec"), namespace)
    assert callable(namespace["im2col"])

    skeleton.write_text("# my work in progress\n")
    capsys.readouterr()
    assert main(["start", "im2col", str(target)]) == 1
    assert "--force" in capsys.readouterr().err
    assert skeleton.read_text() == "# my work in progress\n"
    assert main(["start", "im2col", str(target), "--force"]) == 0
    assert "def im2col(" in skeleton.read_text()


def test_bad_arguments(tmp_path, capsys):
    assert main(["check", "no_such_exercise", "--reference"]) == 2
    assert "im2col" in capsys.readouterr().err  # lists the valid names
    assert main(["check", "im2col"]) == 2  # neither FILE nor --reference
    path = write(tmp_path, "im2col", "")
    assert main(["check", "im2col", str(path), "--reference"]) == 2
    capsys.readouterr()
    assert main(["check", "im2col", str(tmp_path / "missing.py")]) == 1
    assert "does not exist" in capsys.readouterr().out


def test_register_adds_the_exercises_command(capsys):
    """How numvgg.cli wires it: ``register(subparsers)``, then ``args.func(args)``."""
    parser = argparse.ArgumentParser(prog="numvgg")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["exercises", "check", "dense", "--reference"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("Checking exercise dense in numvgg (reference)") and "checks passed." in out
    args = parser.parse_args(["exercises", "list"])
    assert args.func(args) == 0
    assert capsys.readouterr().out.startswith("im2col ")


# -- student files: errors, bugs and correct solutions ---------------------------------------------------


def test_syntax_error_and_missing_function(tmp_path):
    report = check_file("im2col", write(tmp_path, "im2col", "def im2col(x:\n"))
    assert not report.passed and report.exit_code == 1
    assert "SyntaxError at line 1" in str(report) and "Traceback" not in str(report)

    report = check_file("im2col", write(tmp_path, "im2col", "def other():\n    pass\n"))
    assert all("defines no function im2col()" in r.detail for r in report.results)


def test_exception_in_student_code_shows_its_line(tmp_path):
    path = write(
        tmp_path,
        "im2col",
        """\
        import numpy as np

        def im2col(x_padded, kh, kw, strides=(1, 1)):
            n = x_padded.shape[0]
            return x_padded.reshape(n, 7, 7, 7)
        """,
    )
    text = str(check_file("im2col", path))
    assert "im2col.py, line 5, in im2col: return x_padded.reshape(n, 7, 7, 7)" in text
    assert "ValueError" in text and "Traceback" not in text and "numvgg/" not in text


def test_col2im_assignment_instead_of_addition_hints_at_overlap(tmp_path):
    source = """\
        import numpy as np

        def col2im(cols, padded_shape, kh, kw, strides=(1, 1)):
            sh, sw = strides
            n, hp, wp, c = padded_shape
            oh, ow = (hp - kh) // sh + 1, (wp - kw) // sw + 1
            patches = cols.reshape(n, oh, ow, kh, kw, c)
            x = np.zeros(padded_shape, dtype=cols.dtype)
            for i in range(oh):
                for j in range(ow):
                    x[:, i * sh:i * sh + kh, j * sw:j * sw + kw, :] {op} patches[:, i, j]
            return x
        """
    buggy = check_file("col2im", write(tmp_path, "col2im", source.replace("{op}", "=")))
    assert buggy.exit_code == 1
    overlap = result(buggy, "overlapping patches")
    assert overlap.status == "FAIL"
    assert "OVERLAP" in overlap.detail and "+=" in overlap.detail
    assert result(buggy, "no overlap").status == "PASS"  # without overlap = and += agree
    assert result(buggy, "adjoint").status == "FAIL"

    fixed = check_file("col2im", write(tmp_path, "col2im", source.replace("{op}", "+=")))
    assert fixed.passed, str(fixed)


def test_maxpool_backward_splitting_ties_is_named(tmp_path):
    path = write(
        tmp_path,
        "maxpool2d",
        """\
        import numpy as np

        def maxpool2d_forward(x, pool_size=(2, 2), strides=None, padding="valid"):
            ph, pw = pool_size
            sh, sw = strides or pool_size
            n, h, w, c = x.shape
            oh, ow = (h - ph) // sh + 1, (w - pw) // sw + 1
            out = np.zeros((n, oh, ow, c), dtype=x.dtype)
            for i in range(oh):
                for j in range(ow):
                    out[:, i, j, :] = x[:, i * sh:i * sh + ph, j * sw:j * sw + pw, :].max(axis=(1, 2))
            return out, (x, (ph, pw), (sh, sw))

        def maxpool2d_backward(dout, cache):
            x, (ph, pw), (sh, sw) = cache
            dx = np.zeros_like(x)
            for i in range(dout.shape[1]):
                for j in range(dout.shape[2]):
                    win = x[:, i * sh:i * sh + ph, j * sw:j * sw + pw, :]
                    mask = win == win.max(axis=(1, 2), keepdims=True)
                    share = mask / mask.sum(axis=(1, 2), keepdims=True)    # splits ties
                    dx[:, i * sh:i * sh + ph, j * sw:j * sw + pw, :] += share * dout[:, i:i + 1, j:j + 1, :]
            return dx
        """,
    )
    report = check_file("maxpool2d", path)
    assert result(report, "gradient check (float64): x (2, 5, 7, 3)").status == "PASS"
    assert result(report, "overlapping windows add up").status == "PASS"
    for title in ("windows of four equal numbers", "ties anywhere"):
        tie = result(report, title)
        assert tie.status == "FAIL"
        assert "split it" in tie.detail and "FIRST maximum" in tie.detail
    assert result(report, "'same' padding").status == "FAIL"  # this version ignores padding


def test_softmax_without_max_shift_overflows(tmp_path):
    path = write(
        tmp_path,
        "softmax_cross_entropy",
        """\
        import numpy as np

        def softmax_cross_entropy_forward(logits, y_true):
            e = np.exp(logits)
            p = e / e.sum(axis=-1, keepdims=True)
            return -np.sum(y_true * np.log(p)) / logits.shape[0], (p, y_true)

        def softmax_cross_entropy_backward(dloss, cache):
            p, y_true = cache
            return dloss * (p - y_true) / p.shape[0]
        """,
    )
    report = check_file("softmax_cross_entropy", path)
    assert result(report, "forward, known answer").status == "PASS"
    assert result(report, "gradient check").status == "PASS"
    for title in ("forward, large logits", "backward, large logits"):
        large = result(report, title)
        assert large.status == "FAIL"
        assert "NaN or inf" in large.detail and "subtract each row's max" in large.detail
    assert report.exit_code == 1


def test_softmax_backward_without_mean_is_told_to_divide(tmp_path):
    path = write(
        tmp_path,
        "softmax_cross_entropy",
        """\
        import numpy as np

        def softmax_cross_entropy_forward(logits, y_true):
            z = logits - logits.max(axis=-1, keepdims=True)
            log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
            return -np.sum(y_true * log_p) / len(logits), (np.exp(log_p), y_true)

        def softmax_cross_entropy_backward(dloss, cache):
            p, y_true = cache
            return dloss * (p - y_true)
        """,
    )
    report = check_file("softmax_cross_entropy", path)
    assert result(report, "forward, large logits").status == "PASS"
    known = result(report, "backward, known answer")
    assert known.status == "FAIL" and "divide by 3" in known.detail
    assert "divide by 6" in result(report, "CategoricalCrossentropy").detail


def test_adam_without_bias_correction_is_named(tmp_path):
    path = write(
        tmp_path,
        "adam_step",
        """\
        import numpy as np

        def adam_update(variable, gradient, m, v, t, learning_rate=0.001, beta_1=0.9, beta_2=0.999,
                        epsilon=1e-7):
            m = beta_1 * m + (1 - beta_1) * gradient
            v = beta_2 * v + (1 - beta_2) * gradient ** 2
            return variable - learning_rate * m / (np.sqrt(v) + epsilon), m, v
        """,
    )
    report = check_file("adam_step", path)
    first = result(report, "first step moves each weight")
    assert first.status == "FAIL" and "bias correction" in first.detail and "3.16" in first.detail
    assert "WITHOUT bias correction" in result(report, "known answer").detail
    assert result(report, "pure function").status == "PASS"


def test_correct_adam_written_differently_passes(tmp_path):
    path = write(
        tmp_path,
        "adam_step",
        """\
        import numpy as np

        def adam_update(variable, gradient, m, v, t, learning_rate=0.001, beta_1=0.9, beta_2=0.999,
                        epsilon=1e-7):
            f = variable.dtype.type
            m = f(beta_1) * m + f(1 - beta_1) * gradient
            v = f(beta_2) * v + f(1 - beta_2) * gradient * gradient
            alpha = f(learning_rate) * np.sqrt(f(1) - f(beta_2) ** t) / (f(1) - f(beta_1) ** t)
            return variable - alpha * m / (np.sqrt(v) + f(epsilon)), m, v
        """,
    )
    report = check_file("adam_step", path)
    assert report.passed, str(report)


def test_relu_backward_changing_dout_in_place_fails(tmp_path):
    path = write(
        tmp_path,
        "relu_sigmoid_backward",
        """\
        def relu_backward(dout, mask):
            dout[~mask] = 0
            return dout

        def sigmoid_backward(dout, s):
            return dout * s * (1 - s)
        """,
    )
    report = check_file("relu_sigmoid_backward", path)
    in_place = result(report, "leaves dout unchanged")
    assert in_place.status == "FAIL" and "changed its argument `dout` in place" in in_place.detail
    assert result(report, "sigmoid_backward, gradient check").status == "PASS"


def test_conv_backward_pad_slice_fails_on_valid_padding(tmp_path):
    path = write(
        tmp_path,
        "conv2d_backward",
        """\
        import numpy as np
        from numvgg.ops.conv import col2im, im2col, pad_input

        def conv2d_backward(dout, cache, need_input_grad=True, need_weight_grads=True):
            x, kernel, strides, pads = cache
            kh, kw, c, f = kernel.shape
            pad = pads[0]
            xp = pad_input(x, pads)
            rows = dout.reshape(-1, f)
            w_mat = kernel.reshape(-1, f)
            dk = (im2col(xp, kh, kw, strides).T @ rows).reshape(kernel.shape)
            dxp = col2im(rows @ w_mat.T, xp.shape, kh, kw, strides)
            return dxp[:, pad:-pad, pad:-pad, :], dk, rows.sum(axis=0)
        """,
    )
    report = check_file("conv2d_backward", path)
    assert result(report, "kernel (3, 3, 3, 4), 'same', strides 1").status == "PASS"
    valid = result(report, "'valid' (no padding)")
    assert valid.status == "FAIL"
    assert "shape expected (2, 7, 6, 3)" in valid.detail and "[pad:-pad]" in valid.detail


def test_global_average_pooling_without_division(tmp_path):
    path = write(
        tmp_path,
        "global_average_pooling",
        """\
        import numpy as np

        def global_average_pooling2d_forward(x):
            return x.mean(axis=(1, 2)), x.shape

        def global_average_pooling2d_backward(dout, x_shape):
            return np.broadcast_to(dout[:, None, None, :], x_shape).copy()
        """,
    )
    report = check_file("global_average_pooling", path)
    assert result(report, "forward, known answer").status == "PASS"
    backward = result(report, "backward, known answer")
    assert backward.status == "FAIL" and "divide by 15" in backward.detail


def test_correct_loop_solutions_pass(tmp_path):
    """Solutions that do not copy the library (plain loops) pass: the checks test maths, not code."""
    dense = write(
        tmp_path,
        "dense",
        """\
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
            return dx, np.einsum("ni,nk->ik", x2, d2), d2.sum(axis=0)
        """,
    )
    report = check_file("dense", dense)
    assert report.passed, str(report)

    gap = write(
        tmp_path,
        "global_average_pooling",
        """\
        import numpy as np

        def global_average_pooling2d_forward(x):
            return x.sum(axis=(1, 2)) / (x.shape[1] * x.shape[2]), x.shape

        def global_average_pooling2d_backward(dout, x_shape):
            n, h, w, c = x_shape
            dx = np.zeros(x_shape, dtype=dout.dtype)
            for i in range(h):
                for j in range(w):
                    dx[:, i, j, :] = dout / (h * w)
            return dx
        """,
    )
    report = check_file("global_average_pooling", gap)
    assert report.passed, str(report)


def test_importing_the_library_function_is_not_a_solution(tmp_path):
    path = write(tmp_path, "col2im", "from numvgg.ops.conv import col2im\n")
    report = check_file("col2im", path)
    assert report.exit_code == 1
    assert "numvgg's own function" in str(report)


def test_numvgg_command_has_exercises():
    """``python -m numvgg exercises ...`` once numvgg.cli calls ``register`` (see numvgg/exercises/cli.py)."""
    proc = subprocess.run(
        [sys.executable, "-m", "numvgg", "exercises", "check", "relu_sigmoid_backward", "--reference"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, (
        "numvgg.cli.build_parser must call numvgg.exercises.cli.register(sub): " + proc.stderr[-500:]
    )
    assert "checks passed." in proc.stdout
