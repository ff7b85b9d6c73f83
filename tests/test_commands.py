"""numvgg.commands: the predict / inspect / plots / parity / gradcheck / weights handlers.

Each test builds a parser with ``register`` (as cli.py does), parses a command
line and calls the handler, checking its exit code and what it prints. No
test touches the network: the download folders are temporary ones and
``urlopen`` is replaced by one that fails as an offline machine does.
"""

import argparse
import hashlib
import json
import os
import urllib.error

import numpy as np
import pytest
from PIL import Image

from numvgg import commands, initializers
from numvgg.applications import imagenet_utils
from numvgg.applications.vgg16 import VGG16, preprocess_input
from numvgg.data.images import img_to_array, load_img
from numvgg.debug.trace import layer_output
from numvgg.io import download
from numvgg.ops import pooling as pool_ops

SUBCOMMANDS = ("predict", "inspect", "plots", "parity", "gradcheck", "weights")


def run(argv, capsys):
    """Parse ``argv`` with a parser that only has our subcommands; return (code, out, err)."""
    parser = argparse.ArgumentParser(prog="numvgg")
    commands.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def folders(tmp_path, monkeypatch):
    """Empty, private download folders: nothing from the real machine is found."""
    home = tmp_path / "keras_home"
    monkeypatch.setenv("KERAS_HOME", str(home))
    monkeypatch.setattr(download, "CHECKOUT_WEIGHTS_DIR", str(tmp_path / "checkout_weights"))
    monkeypatch.setattr(download, "_tmp_keras_home", lambda: str(tmp_path / "tmp_keras"))
    return home / "models"


@pytest.fixture
def offline(monkeypatch):
    tried = []

    def no_network(url, *args, **kwargs):
        tried.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(download, "urlopen", no_network)
    return tried


@pytest.fixture
def photo(tmp_path):
    """A 50x40 RGB PNG with some structure (a bright disc on a gradient)."""
    yy, xx = np.mgrid[0:40, 0:50]
    pixels = np.stack([xx * 5, yy * 6, ((xx - 25) ** 2 + (yy - 20) ** 2 < 150) * 255], axis=-1)
    path = tmp_path / "photo.png"
    Image.fromarray(pixels.astype(np.uint8)).save(path)
    return str(path)


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_subcommand_has_help(name, capsys):
    with pytest.raises(SystemExit) as info:
        run([name, "--help"], capsys)
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: numvgg {name}")
    assert len(out.splitlines()) > 8  # a description, not only the usage line


# -- gradcheck -----------------------------------------------------------------------------------
def test_gradcheck_passes_and_prints_the_table(capsys):
    code, out, _ = run(["gradcheck"], capsys)
    assert code == 0
    assert "Conv2D 3x3 same s1 relu" in out and "kernel" in out
    assert "all passed" in out.splitlines()[-1]


def test_gradcheck_exits_1_when_a_backward_is_wrong(capsys, monkeypatch):
    right = pool_ops.global_average_pooling2d_backward
    monkeypatch.setattr(
        pool_ops, "global_average_pooling2d_backward", lambda dout, x_shape: 2.0 * right(dout, x_shape)
    )
    code, out, _ = run(["gradcheck"], capsys)
    assert code == 1
    failing = [line for line in out.splitlines() if line.endswith("FAIL")]
    assert len(failing) == 1 and failing[0].startswith("GlobalAveragePooling2D")
    assert "1 FAILED" in out


# -- parity --------------------------------------------------------------------------------------
def test_parity_prints_the_table_and_exits_0(keras, capsys):
    code, out, _ = run(["parity", "--input-size", "32", "--batch", "1", "--seed", "4"], capsys)
    assert code == 0
    assert "block5_conv3" in out and "dL/d kernel" in out and "input (1, 32, 32, 3)" in out
    assert out.splitlines()[-1].startswith("OK.")


def test_parity_exits_1_above_tolerance(capsys, monkeypatch):
    """The exit code follows ``report.ok``; the report's own detection of a wrong
    gradient is tested in test_parity_report.py, so here a report is built
    from one row that is 5% off instead of running both models again."""
    from numvgg.debug import parity

    calls = []

    def one_bad_row(**kwargs):
        calls.append(kwargs)
        report = parity.Report(description="two tensors")
        report.rows.append(parity.compare("block1_conv1", "output", "forward", np.ones(4), np.ones(4), 1e-4))
        report.rows.append(
            parity.compare("block1_conv1", "dL/d kernel", "backward", np.full(3, 1.05), np.ones(3), 1e-3)
        )
        return report

    monkeypatch.setattr(parity, "parity_report", one_bad_row)
    code, out, _ = run(["parity", "--batch", "1", "--pooling", "max", "--top", "--weights", "w.h5"], capsys)
    assert code == 1
    assert calls == [
        dict(weights_path="w.h5", input_size=32, include_top=True, pooling="max", batch=1, seed=0)
    ]
    assert "FAIL (> 1e-03)" in out and out.splitlines()[-1].startswith("FAILED: 1 tensor(s)")


def test_parity_names_a_missing_weights_file(keras, capsys, tmp_path):
    code, _, err = run(["parity", "--weights", str(tmp_path / "missing.h5")], capsys)
    assert code == 1
    assert err.startswith("numvgg parity: error:") and "missing.h5" in err


# -- predict -------------------------------------------------------------------------------------
def test_predict_offline_explains_how_to_get_the_weights(folders, offline, photo, capsys):
    code, out, err = run(["predict", photo], capsys)
    assert code == 1 and out == ""
    assert "numvgg predict: error: Cannot get 'vgg16_weights_tf_dim_ordering_tf_kernels.h5'" in err
    assert str(folders) in err and "numvgg weights --fetch" in err
    assert offline == [download.VGG16_WEIGHTS.origin]  # one attempt, then a clear stop


def test_predict_names_a_missing_image(capsys, tmp_path):
    code, _, err = run(["predict", str(tmp_path / "nope.jpg"), "--weights", "none"], capsys)
    assert code == 1 and "nope.jpg" in err


def test_predict_prints_the_top_classes_in_order(photo, tmp_path, capsys, monkeypatch):
    index_path = tmp_path / "class_index.json"
    index_path.write_text(json.dumps({str(i): [f"n{i:08d}", f"class_{i:03d}"] for i in range(1000)}))
    monkeypatch.setattr(imagenet_utils, "class_index_path", lambda: str(index_path))
    built = []
    real_build = commands._build_vgg16
    monkeypatch.setattr(
        commands, "_build_vgg16", lambda *a, **k: built.append(real_build(*a, **k)) or built[-1]
    )
    initializers.set_seed(11)

    code, out, _ = run(["predict", photo, "--weights", "none", "--input-size", "32", "--top", "3"], capsys)
    assert code == 0
    x = preprocess_input(img_to_array(load_img(photo, target_size=(32, 32)))[None])
    probs = built[0](x)[0]  # (1000,)
    expected = np.argsort(probs)[::-1][:3]
    lines = out.splitlines()
    assert lines[0].startswith("(random weights") and lines[1] == photo
    for rank, (line, k) in enumerate(zip(lines[2:], expected), start=1):
        assert line.split()[:3] == [f"{rank}.", f"class_{k:03d}", f"n{k:08d}"]
        assert line.endswith(f"{probs[k]:.2%}")
    assert len(lines) == 5


# -- inspect and plots -----------------------------------------------------------------------------
def test_inspect_saves_feature_maps_and_prints_their_stats(photo, tmp_path, capsys):
    initializers.set_seed(12)
    model = VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    weights = str(tmp_path / "base.weights.h5")
    model.save_weights(weights)
    out_png = tmp_path / "maps" / "b2.png"

    code, out, _ = run(
        [
            "inspect",
            photo,
            "--layer",
            "block2_conv1",
            "--weights",
            weights,
            "--input-size",
            "32",
            "--out",
            str(out_png),
        ],
        capsys,
    )
    assert code == 0
    x = preprocess_input(img_to_array(load_img(photo, target_size=(32, 32)))[None])
    act = layer_output(model, x, "block2_conv1")
    first = out.splitlines()[0]
    assert first.startswith("block2_conv1: output (1, 16, 16, 128), ")
    assert f"mean {act.astype(np.float64).mean():.4g}" in first
    assert f"{np.mean(act == 0):.1%} zeros" in first
    assert out_png.stat().st_size > 5000 and str(out_png) in out
    with Image.open(out_png) as img:
        assert img.format == "PNG"


def test_inspect_unknown_layer_lists_the_layers(photo, capsys):
    code, _, err = run(
        ["inspect", photo, "--layer", "block9_conv1", "--weights", "none", "--input-size", "32"], capsys
    )
    assert code == 1
    assert "No layer named 'block9_conv1'" in err and "block5_conv3" in err


def test_plots_writes_three_pngs(photo, tmp_path, capsys):
    out_dir = tmp_path / "plots"
    code, out, _ = run(
        [
            "plots",
            photo,
            "--no-top",
            "--weights",
            "none",
            "--input-size",
            "32",
            "--layer",
            "block1_conv1",
            "--out",
            str(out_dir),
        ],
        capsys,
    )
    assert code == 0
    names = ["feature_maps_block1_conv1.png", "filters.png", "saliency.png"]
    assert sorted(os.listdir(out_dir)) == sorted(names + [n[:-4] + ".svg" for n in names])  # + SVGs
    for name in names:
        assert (out_dir / name).stat().st_size > 5000 and name in out
    assert "random (untrained)" in (out_dir / "filters.svg").read_text()  # the weights, named


# -- weights ---------------------------------------------------------------------------------------
def test_weights_lists_folders_and_md5_status(folders, capsys):
    folders.mkdir(parents=True)
    (folders / download.VGG16_WEIGHTS_NOTOP.fname).write_bytes(b"half a download")
    code, out, _ = run(["weights"], capsys)
    assert code == 0
    assert str(folders) in out and str(download.CHECKOUT_WEIGHTS_DIR) in out
    lines = out.splitlines()
    notop = lines.index(next(l for l in lines if l.startswith(download.VGG16_WEIGHTS_NOTOP.fname)))
    assert "md5 MISMATCH" in lines[notop + 1] and str(folders) in lines[notop + 1]
    assert "not available" in lines[notop + 2]
    top = lines.index(next(l for l in lines if l.startswith(download.VGG16_WEIGHTS.fname + " ")))
    assert "not available" in lines[top + 1]


def test_weights_fetch_offline_exits_1(folders, offline, capsys):
    code, _, err = run(["weights", "--fetch"], capsys)
    assert code == 1
    assert "Cannot get 'vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5'" in err
    assert offline == [download.VGG16_WEIGHTS_NOTOP.origin]  # the 528 MB file only with --top


def test_weights_fetch_downloads_into_the_keras_cache(folders, tmp_path, capsys, monkeypatch):
    served = {}
    for attr in ("VGG16_WEIGHTS", "VGG16_WEIGHTS_NOTOP", "IMAGENET_CLASS_INDEX"):
        published = getattr(download, attr)
        source = tmp_path / "server" / published.fname
        source.parent.mkdir(exist_ok=True)
        content = f"pretend contents of {published.fname}".encode()
        source.write_bytes(content)
        served[published.fname] = content
        monkeypatch.setattr(
            download,
            attr,
            download.PublishedFile(published.fname, source.as_uri(), hashlib.md5(content).hexdigest()),
        )

    code, out, _ = run(["weights", "--fetch"], capsys)
    assert code == 0
    fetched = sorted(os.listdir(folders))
    assert fetched == sorted([download.VGG16_WEIGHTS_NOTOP.fname, download.IMAGENET_CLASS_INDEX.fname])
    for name in fetched:
        assert (folders / name).read_bytes() == served[name]

    code, out, _ = run(["weights", "--top"], capsys)  # listing only: nothing new
    assert code == 0 and sorted(os.listdir(folders)) == fetched
    assert out.count("md5 ok") == 2

    code, out, _ = run(["weights", "--fetch", "--top"], capsys)
    assert code == 0 and len(os.listdir(folders)) == 3
    assert f"{download.VGG16_WEIGHTS.fname}: {folders / download.VGG16_WEIGHTS.fname}" in out
