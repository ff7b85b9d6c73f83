"""The main job, `numvgg demo`, in its reduced CI size: run it and read what it prints."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from numvgg.demo import CLASSES, make_demo_images


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


@pytest.mark.slow
def test_demo_quick_runs_the_seed_recipe_end_to_end(tmp_path):
    out = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if k != "KERAS_HOME"}
    env["KERAS_HOME"] = str(tmp_path / "empty_keras_home")   # no cached ImageNet weights
    proc = subprocess.run([sys.executable, "-m", "numvgg", "demo", "--quick", "--out", str(out),
                           "--verbose", "2"], capture_output=True, text=True, env=env, timeout=600)
    text = proc.stdout
    assert proc.returncode == 0, proc.stderr[-3000:]
    # The data set, found the Keras way.
    assert "Found 24 files belonging to 2 classes." in text
    assert "Found 12 files belonging to 2 classes." in text
    assert "Classes: ['circles', 'stripes']" in text
    # One plain line saying the ImageNet weights were not there.
    assert len(re.findall(r"ImageNet weights not found.*random initialisation", text)) == 1
    # The seed's model and its frozen base, with Keras' figures.
    assert "vgg16 (Functional)" in text
    assert "Total params: 14,977,857" in text
    assert "Trainable params: 263,169" in text
    assert "Non-trainable params: 14,714,688" in text
    # Both phases trained and reported Keras-style (verbose=2: one line an epoch).
    phase1, phase2 = text.split("Phase 2")
    line = r"\d+/\d+ - \d+s - \S+/step - acc: [01]\.\d{4} - loss: \d+\.\d{4} - val_acc: [01]\.\d{4} - val_loss: \d+\.\d{4}"
    assert re.search(line, phase1) and re.search(line, phase2)
    assert "Epoch 2/2" in phase2          # phase 2 continues the epoch count
    acc = float(re.search(r"Validation accuracy after fine-tuning: ([01]\.\d{4})", text).group(1))
    assert 0.0 <= acc <= 1.0
    # What it saved can be used.
    weights = out / "seed_model.weights.h5"
    curves = out / "training_curves.png"
    assert weights.stat().st_size > 50_000_000     # 14,977,857 float32 weights
    png = np.asarray(Image.open(curves))
    assert png.shape[0] > 100 and png.std() > 0
    from numvgg.applications.vgg16 import VGG16
    from numvgg.layers import Dense, GlobalAveragePooling2D
    from numvgg.models import Sequential
    model = Sequential([VGG16(weights=None, include_top=False, input_shape=(32, 32, 3)),
                        GlobalAveragePooling2D(), Dense(512, activation="relu"),
                        Dense(1, activation="sigmoid")])
    model.load_weights(str(weights))


def test_demo_help_lists_its_options():
    proc = subprocess.run([sys.executable, "-m", "numvgg", "demo", "--help"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0
    for option in ("--quick", "--epochs", "--fine-tune-epochs", "--image-size", "--weights", "--out"):
        assert option in proc.stdout


@pytest.mark.slow
def test_train_runs_the_recipe_on_a_users_folder(tmp_path):
    make_demo_images(str(tmp_path / "mine"), n_train=6, n_val=3, size=32, seed=2)
    env = {**os.environ, "KERAS_HOME": str(tmp_path / "empty_keras_home")}
    cmd = [sys.executable, "-m", "numvgg", "train", str(tmp_path / "mine"), "--out",
           str(tmp_path / "out"), "--image-size", "32", "--epochs", "2", "--fine-tune-epochs", "1",
           "--verbose", "0"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Found 12 files belonging to 2 classes." in proc.stdout
    assert "Validation accuracy after fine-tuning:" in proc.stdout
    assert (tmp_path / "out" / "seed_model.weights.h5").exists()


def test_train_explains_a_folder_without_validation(tmp_path):
    (tmp_path / "only" / "train" / "a").mkdir(parents=True)
    proc = subprocess.run([sys.executable, "-m", "numvgg", "train", str(tmp_path / "only")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "validation" in proc.stderr and "train/<class>/" in proc.stderr
