"""`numvgg train DIR --augment`: Chollet's augmentation layers in front of the conv base."""

import re

import pytest

from numvgg.cli import main
from numvgg.demo import make_demo_images


@pytest.mark.slow
def test_train_augment_puts_flip_rotation_zoom_in_front_of_the_base(tmp_path, capsys):
    make_demo_images(str(tmp_path / "mine"), n_train=4, n_val=2, size=32, seed=3)
    code = main(
        [
            "train",
            str(tmp_path / "mine"),
            "--augment",
            "--out",
            str(tmp_path / "out"),
            "--image-size",
            "32",
            "--epochs",
            "1",
            "--fine-tune-epochs",
            "1",
            "--weights",
            "none",
            "--verbose",
            "0",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    layers = re.findall(r"\((RandomFlip|RandomRotation|RandomZoom|Functional)\)", out)
    assert layers == ["RandomFlip", "RandomRotation", "RandomZoom", "Functional"]
    assert "Validation accuracy after fine-tuning:" in out
    assert (tmp_path / "out" / "recipe_model.weights.h5").exists()
