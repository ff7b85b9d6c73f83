"""Issue 15, the command line: one clear line and a non-zero exit for a user's
mistake, a traceback only for a bug (``--debug`` shows it), quiet on a closed pipe."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from numvgg import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_main(capsys, *argv):
    try:
        status = cli.main(list(argv))
    except SystemExit as exit_:  # argparse's own errors
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def one_class(tmp_path):
    for part in ("train", "validation"):
        folder = tmp_path / "data" / part / "cats"
        folder.mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / f"{i}.png")
    return tmp_path / "data"


def test_a_one_class_folder_is_one_line_and_exit_1(capsys, one_class, tmp_path):
    status, _, err = run_main(
        capsys,
        "train",
        str(one_class),
        "--weights",
        "none",
        "--out",
        str(tmp_path / "out"),
        "--image-size",
        "32",
    )
    assert status == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("numvgg train: error: ")
    assert "needs exactly 2 classes" in lines[0] and "Traceback" not in err


def test_debug_shows_the_traceback(capsys, one_class, tmp_path):
    with pytest.raises(ValueError, match="exactly 2 classes"):
        cli.main(
            [
                "train",
                str(one_class),
                "--weights",
                "none",
                "--out",
                str(tmp_path / "o"),
                "--image-size",
                "32",
                "--debug",
            ]
        )


@pytest.mark.parametrize(
    "argv, match",
    [
        (["demo", "--batch-size", "0"], "--batch-size: must be at least 1, got 0"),
        (["demo", "--fine-tune-epochs", "0"], "--fine-tune-epochs: must be at least 1, got 0"),
        (["train", "somewhere", "--epochs", "-1"], "--epochs: must be at least 1, got -1"),
        (["summary", "--input-size", "16"], "--input-size: must be at least 32, got 16"),
        (["tour", "--input-size", "abc"], "expected a whole number, got 'abc'"),
    ],
)
def test_bad_option_values_are_refused_before_any_work(capsys, argv, match):
    status, out, err = run_main(capsys, *argv)
    assert status == 2 and match in err and "Traceback" not in err and out == ""


def test_out_of_memory_is_one_line(capsys):
    status, _, err = run_main(capsys, "tour", "--input-size", "4000000")
    assert status == 1 and err.count("\n") == 1 and "Unable to allocate" in err


def test_a_bug_keeps_its_traceback(monkeypatch):
    def buggy(args):
        return np.zeros(3) + np.zeros(4)  # numpy's ValueError, not a message for users

    monkeypatch.setattr(cli, "_cmd_summary", buggy)
    with pytest.raises(ValueError, match="broadcast"):
        cli.main(["summary"])


def test_piping_into_head_ends_quietly():
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    pipeline = f"'{sys.executable}' -m numvgg summary | head -1"
    done = subprocess.run(
        ["bash", "-c", pipeline], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.stdout.startswith("Model:")
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
