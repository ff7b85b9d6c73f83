# ruff: noqa: F811  (the hed_weights_path fixture is an argument of a test)
"""Review of the faster convolutions (chunked Winograd with fused bias and ReLU,
'auto' picking Winograd F(2x2, 3x3), the kernel gradient through Winograd):
the cases where a wrong number could appear without an error.

* NaN and inf. Winograd mixes the pixels of a tile before it multiplies, so
  one NaN would reach every output of its tile and an inf would meet
  ``inf - inf`` and turn into NaN; TensorFlow's direct sum keeps them to the
  outputs that read them. ``conv2d_forward`` / ``conv2d_backward`` therefore
  send a convolution with a non-finite input (or upstream gradient) down the
  kernel-row path; these tests compare which values are NaN and inf with
  TensorFlow's, under every path.
* Training through Winograd against Keras in float64 (no float32 kink can
  hide or fake a difference): a frozen base with one trainable conv, whose
  kernel gradient goes through Winograd, and stepping with
  ``numvgg.debug.step`` under 'winograd4'.
* A trace recording pre-activations while training unfuses the ReLU: the
  step must be the same, bit for bit.
"""

import numpy as np
import pytest
from hed_cache import hed_weights_path  # noqa: F401 (a fixture)

from numvgg import config, initializers
from numvgg.applications.vgg16 import VGG16
from numvgg.debug.trace import step, step_backward, trace
from numvgg.layers import Conv2D, Dense, GlobalAveragePooling2D
from numvgg.models import Sequential
from numvgg.ops import conv as conv_ops

WINOGRAD_PATHS = ["winograd2", "winograd4", "auto"]


def rel_to_max(ours, theirs) -> float:
    """``max |ours - theirs| / max |theirs|`` over the entries finite on both sides."""
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    both = np.isfinite(ours) & np.isfinite(theirs)
    diff = np.max(np.abs(ours[both] - theirs[both]), initial=0.0)
    return 0.0 if diff == 0.0 else diff / max(np.max(np.abs(theirs[both]), initial=0.0), 1e-30)


def assert_same_specials_and_values(name, ours, theirs, tol=1e-5):
    theirs = np.asarray(theirs)
    assert np.array_equal(np.isnan(ours), np.isnan(theirs)), (
        f"{name}: NaN at {np.isnan(ours).sum()} entries, TensorFlow at {np.isnan(theirs).sum()}"
    )
    assert np.array_equal(np.isposinf(ours), np.isposinf(theirs)), f"{name}: +inf elsewhere than TensorFlow's"
    assert np.array_equal(np.isneginf(ours), np.isneginf(theirs)), f"{name}: -inf elsewhere than TensorFlow's"
    assert rel_to_max(ours, theirs) <= tol, f"{name}: finite values differ by {rel_to_max(ours, theirs):.2e}"


def conv_pair(keras, x_shape, algorithm, activation="relu", filters=8, seed=0):
    initializers.set_seed(seed)
    ours = Conv2D(filters, 3, padding="same", activation=activation, algorithm=algorithm)
    ours.build(x_shape)
    rng = np.random.default_rng(seed)
    ours.params["bias"][...] = rng.standard_normal(filters).astype(np.float32) * 0.1
    theirs = keras.layers.Conv2D(filters, 3, padding="same", activation=activation)
    theirs.build(x_shape)
    theirs.set_weights([ours.params["kernel"], ours.params["bias"]])
    return ours, theirs


def tf_conv_grads(tf, layer, x, dout):
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = layer(xt)
        loss = tf.reduce_sum(y * dout)
    return (np.asarray(y), *[np.asarray(g) for g in tape.gradient(loss, [xt, *layer.trainable_weights])])


@pytest.mark.keras
@pytest.mark.parametrize("special", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("activation", ["relu", "linear"])
@pytest.mark.parametrize("algorithm", WINOGRAD_PATHS)
def test_nonfinite_input_goes_where_tensorflow_sends_it(algorithm, activation, special, keras, tf):
    """One bad pixel in image 0 (a corrupt photo): outputs, input and weight
    gradients NaN/inf exactly where TensorFlow's are, image 1 untouched.
    Before the fix F(2x2) made 128 outputs NaN where TensorFlow has 72, an inf
    became NaN, and the ReLU masks (hence the finite gradients) differed by 70%."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 9, 11, 32)).astype(np.float32)  # 'auto' takes Winograd F(2x2) here
    x[0, 4, 5, 3] = special
    ours, theirs = conv_pair(keras, x.shape, algorithm, activation)
    dout = rng.standard_normal((2, 9, 11, 8)).astype(np.float32)
    y, dx_tf, dk_tf, db_tf = tf_conv_grads(tf, theirs, x, dout)

    out = ours.forward(x, training=True)
    dx = ours.backward(dout)
    assert_same_specials_and_values("output", out, y)
    assert_same_specials_and_values("dx", dx, dx_tf)
    assert_same_specials_and_values("dkernel", ours.grads[0], dk_tf)
    assert_same_specials_and_values("dbias", ours.grads[1], db_tf)


@pytest.mark.keras
@pytest.mark.parametrize("algorithm", WINOGRAD_PATHS)
def test_nonfinite_upstream_gradient_goes_where_tensorflow_sends_it(algorithm, keras, tf):
    """A NaN and an inf in ``dout`` (a diverged loss upstream): the input and
    kernel gradients through Winograd would spread them over whole tiles."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 10, 12, 32)).astype(np.float32)
    ours, theirs = conv_pair(keras, x.shape, algorithm, activation="linear")
    dout = rng.standard_normal((2, 10, 12, 8)).astype(np.float32)
    dout[0, 3, 4, 2] = np.nan
    dout[1, 7, 1, 5] = np.inf
    _, dx_tf, dk_tf, db_tf = tf_conv_grads(tf, theirs, x, dout)

    ours.forward(x, training=True)
    dx = ours.backward(dout)
    assert_same_specials_and_values("dx", dx, dx_tf)
    assert_same_specials_and_values("dkernel", ours.grads[0], dk_tf)
    assert_same_specials_and_values("dbias", ours.grads[1], db_tf)


@pytest.mark.parametrize("m", ["winograd2", "winograd4"])
def test_nonfinite_convolution_runs_by_kernel_rows_and_equals_the_loops(m):
    """Without Keras: the path recorded in the cache, and the values against the naive loops."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 8, 8, 4))
    kernel = rng.standard_normal((3, 3, 4, 3))
    x[1, 0, 7, 2] = np.inf
    out, cache = conv_ops.conv2d_forward(x, kernel, None, (1, 1), "same", m)
    assert cache.algorithm == "kernel_rows"
    expected = conv_ops.conv2d_forward_naive(x, kernel, None, (1, 1), "same")
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)  # inf equals inf

    finite_x = np.nan_to_num(x, posinf=1.0)
    _, cache = conv_ops.conv2d_forward(finite_x, kernel, None, (1, 1), "same", m)
    assert cache.algorithm == m  # finite input: Winograd, as asked
    dout = rng.standard_normal(out.shape)
    dout[0, 2, 2, 1] = np.nan
    dx, dk, db = conv_ops.conv2d_backward(dout, cache)
    dx_ref, dk_ref, db_ref = conv_ops.conv2d_backward_naive(dout, finite_x, kernel, (1, 1), "same")
    for got, ref in ((dx, dx_ref), (dk, dk_ref), (db, db_ref)):
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


# -- training through Winograd, float64 against Keras float64 ------------------------------


@pytest.fixture
def float64_both(keras):
    """numvgg and Keras in float64 for one test (Keras' dtype policy included)."""
    previous = keras.config.floatx(), keras.config.dtype_policy()
    config.set_floatx("float64")
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    yield
    config.set_floatx("float32")
    keras.config.set_floatx(previous[0])
    keras.config.set_dtype_policy(previous[1])


def recipe_pair(keras, size, units=16, seed=11):
    """The recipe (VGG16 base + GAP + Dense(relu) + Dense(1, sigmoid)) on both sides, same weights."""
    initializers.set_seed(seed)
    base = VGG16(weights=None, include_top=False, input_shape=(*size, 3))
    ours = Sequential(
        [base, GlobalAveragePooling2D(), Dense(units, activation="relu"), Dense(1, activation="sigmoid")]
    )
    kbase = keras.applications.VGG16(weights=None, include_top=False, input_shape=(*size, 3))
    theirs = keras.Sequential(
        [
            kbase,
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(units, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    theirs.build((None, *size, 3))
    theirs.set_weights(ours.get_weights())
    return ours, base, theirs, kbase


@pytest.mark.keras
@pytest.mark.parametrize("algorithm", ["winograd2", "winograd4", "auto"])
def test_one_unfrozen_conv_trains_through_winograd_like_keras(algorithm, keras, tf, float64_both):
    """Frozen base but block3_conv2 (8x11 maps at 33x47, 256 channels: 'auto'
    takes Winograd F(2x2) for it), one Adam train_on_batch of binary
    cross-entropy: loss, the conv's kernel and bias gradients and every weight
    after the step as Keras' (measured: gradients ~1e-14 in float64)."""
    ours, base, theirs, kbase = recipe_pair(keras, (33, 47))
    for model in (base, kbase):
        model.trainable = True
        for layer in model.layers:
            layer.trainable = layer.name == "block3_conv2"
    rng = np.random.default_rng(2)
    x = rng.uniform(-60, 60, (3, 33, 47, 3))
    y = np.array([[1.0], [0.0], [1.0]])

    with tf.GradientTape() as tape:
        loss_tf = tf.reduce_mean(keras.losses.binary_crossentropy(y, theirs(x, training=True)))
    grads_tf = tape.gradient(loss_tf, theirs.trainable_weights)
    theirs.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    theirs.train_on_batch(x, y)

    ours.compile(optimizer="adam", loss="binary_crossentropy")
    with config.using_conv_algorithm(algorithm):
        loss = ours.train_on_batch(x, y)
    conv = base.get_layer("block3_conv2")
    expected_path = "winograd2" if algorithm == "auto" else algorithm
    assert conv_ops.conv_path(algorithm, (3, 8, 11, 256), (3, 3, 256, 256), (1, 1)) == expected_path
    assert abs(loss - float(loss_tf)) <= 1e-12 * max(abs(float(loss_tf)), 1.0)
    ours_grads = list(conv.grads) + [g for layer in ours.layers[2:] for g in layer.grads]
    assert len(ours_grads) == len(grads_tf)
    for g, g_tf in zip(ours_grads, grads_tf):
        assert rel_to_max(g, g_tf) <= 1e-10, rel_to_max(g, g_tf)
    for w, w_tf in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(w, w_tf, rtol=0, atol=1e-12)


@pytest.mark.keras
def test_debug_step_under_winograd4_gives_keras_gradients(keras, tf, float64_both):
    """Stepping forward and backward one layer at a time with 'winograd4' (every
    conv of a 32x32 VGG16 through F(4x4)): the output and every weight gradient
    as Keras' tape (float64: ~1e-14), and the same as ``model.backward``."""
    ours, base, theirs, _ = recipe_pair(keras, (32, 32), seed=12)
    rng = np.random.default_rng(6)
    x = rng.uniform(-60, 60, (2, 32, 32, 3))
    dout = rng.standard_normal((2, 1))

    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        out_tf = theirs(xt)
        loss = tf.reduce_sum(out_tf * dout)
    grads_tf = tape.gradient(loss, [xt, *theirs.trainable_weights])

    with config.using_conv_algorithm("winograd4"):
        forward = step(ours, x)
        steps = []
        while True:
            try:
                steps.append(next(forward))
            except StopIteration as done:
                out = done.value
                break
        convs = [s.layer for s in steps if isinstance(s.layer, Conv2D)]
        assert {c._cache[0].algorithm for c in convs} == {"winograd4"}
        backward = step_backward(ours, dout)
        weight_grads = {}
        while True:
            try:
                s = next(backward)
            except StopIteration as done:
                dx = done.value
                break
            weight_grads[s.layer.name] = s.weight_grads
    assert rel_to_max(out, out_tf) <= 1e-12
    assert rel_to_max(dx, grads_tf[0]) <= 1e-12
    ours_grads = [weight_grads[l.name][k] for l in _leaves_with_weights(ours) for k in ("kernel", "bias")]
    for g, g_tf in zip(ours_grads, grads_tf[1:]):
        assert rel_to_max(g, g_tf) <= 1e-12


def _leaves_with_weights(model):
    from numvgg.models import leaf_layers

    return [layer for layer in leaf_layers(model) if layer.params]


def test_trace_of_pre_activations_while_training_changes_nothing():
    """A trace recording pre-activations unfuses the ReLU of every Conv2D (the
    wrapper must see ``z``): the training step stays bit-identical, under the
    fused Winograd path of 'auto', and the recorded ``z`` is the conv before
    its ReLU."""
    x = np.random.default_rng(8).uniform(-60, 60, (2, 32, 40, 3)).astype(np.float32)
    y = np.array([[1.0], [0.0]], np.float32)
    weights = {}
    for traced in (False, True):
        initializers.set_seed(13)
        base = VGG16(weights=None, include_top=False, input_shape=(32, 40, 3))
        model = Sequential(
            [base, GlobalAveragePooling2D(), Dense(8, activation="relu"), Dense(1, activation="sigmoid")]
        )
        model.compile(optimizer="adam", loss="binary_crossentropy")
        with config.using_conv_algorithm("auto"):
            if traced:
                with trace(model, record=("pre_activation", "output")) as t:
                    model.train_on_batch(x, y)
            else:
                model.train_on_batch(x, y)
        weights[traced] = model.get_weights()
    for a, b in zip(weights[False], weights[True]):
        np.testing.assert_array_equal(a, b)
    rec = t["block2_conv2"]  # 16x20 maps, 128 channels: Winograd F(2x2) under 'auto'
    assert rec.pre_activation is not None and (rec.pre_activation < 0).any()
    np.testing.assert_array_equal(np.maximum(rec.pre_activation, 0), rec.output)


# -- max-pool with NaN and -inf in its input ------------------------------------------------


@pytest.mark.keras
@pytest.mark.parametrize(
    "pool, strides, padding",
    [((2, 2), None, "valid"), ((2, 2), None, "same"), ((3, 3), (2, 2), "valid"), ((2, 2), (1, 1), "valid")],
)
def test_maxpool_with_nan_and_inf_inputs_matches_keras(pool, strides, padding, keras, tf):
    """TensorFlow's max-pool skips NaN (a window of only NaN and -inf gives the
    lowest finite float) while its gradient goes to a NaN that comes first in
    its window; numvgg used to return NaN for any window holding one, so one
    bad pixel turned a whole VGG16 output NaN where Keras' stays finite."""
    from numvgg.layers import MaxPooling2D

    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 9, 11, 3)).astype(np.float32)
    x[0, 0, 0, 0] = np.nan  # first in its window
    x[0, 1, 3, 1] = np.nan  # last in its window
    x[0, 4:6, 4:6, 2] = np.nan  # a whole window
    x[1, 2:4, 6:8, 0] = -np.inf  # a whole window
    x[1, 2, 2, 1], x[1, 3, 3, 1] = np.nan, -np.inf
    x[1, 6, 8, 2] = np.inf
    ours = MaxPooling2D(pool, strides, padding)
    out = ours.forward(x, training=True)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    dx = ours.backward(dout)

    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = keras.layers.MaxPooling2D(pool, strides, padding)(xt)
        loss = tf.reduce_sum(y * dout)
    np.testing.assert_array_equal(out, y.numpy())
    # (overlapping windows add up in another order: equal up to rounding)
    np.testing.assert_allclose(dx, tape.gradient(loss, xt).numpy(), rtol=1e-6)
    out_inference = ours.forward(x, training=False)  # no winners needed: the same values
    np.testing.assert_array_equal(out_inference, y.numpy())


@pytest.mark.keras
def test_vgg16_with_one_bad_pixel_matches_keras(keras, tf, vgg16_pair):
    """One NaN pixel in image 0 of a 32x32 batch of 2: Keras' output stays
    finite (its max-pools drop the NaN), and so must numvgg's, with the input
    gradient and block1's weight gradients NaN exactly where Keras' are,
    under every path; deeper weight gradients agree where both are finite."""
    rng = np.random.default_rng(10)
    x = rng.uniform(-60, 60, (2, 32, 32, 3)).astype(np.float32)
    x[0, 5, 6, 1] = np.nan
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = vgg16_pair.keras(xt)
        dout = rng.standard_normal(y.shape).astype(np.float32)
        loss = tf.reduce_sum(y * dout)
    grads_tf = tape.gradient(loss, [xt, *vgg16_pair.keras.trainable_weights])
    assert np.isfinite(y.numpy()).all()
    for algorithm in ("auto", "im2col", "winograd4"):
        with config.using_conv_algorithm(algorithm):
            out = vgg16_pair.numvgg(x)
            dx = vgg16_pair.numvgg.backward(dout)
        assert_same_specials_and_values(f"{algorithm} output", out, y, tol=1e-4)
        assert_same_specials_and_values(f"{algorithm} dx", dx, grads_tf[0], tol=1e-3)
        names = [w.path for w in vgg16_pair.keras.trainable_weights]
        for name, g, g_tf in zip(names, vgg16_pair.numvgg.grads, grads_tf[1:]):
            if name.startswith("block1"):
                assert_same_specials_and_values(f"{algorithm} {name}", g, g_tf, tol=1e-3)
            else:
                # A window of only NaN gives the lowest float (-3.4e38) to block2; the
                # sums then overflow to inf, and where depends on the summation order.
                assert rel_to_max(g, g_tf) <= 1e-3, (name, rel_to_max(g, g_tf))


@pytest.mark.keras
@pytest.mark.xfail(
    strict=True,
    reason="TensorFlow leaves out the taps that read 'same' padding, so a NaN kernel tap spares "
    "the border outputs it would multiply with padding; every numvgg path multiplies the padding's "
    "zeros (0 * NaN = NaN). Fix: when the kernel is not finite, sum per tap (i, j) the product "
    "of the shifted input slice with kernel[i, j] over only the outputs that read real pixels "
    "(and the same restriction in the input and kernel gradients).",
)
@pytest.mark.parametrize("algorithm", ["im2col", "kernel_rows", "winograd2"])
def test_nan_kernel_tap_spares_the_border_like_tensorflow(algorithm, tf):
    rng = np.random.default_rng(12)
    x = rng.standard_normal((1, 6, 6, 4)).astype(np.float32)
    kernel = rng.standard_normal((3, 3, 4, 2)).astype(np.float32)
    kernel[0, 0, 1, 0] = np.nan  # top-left tap: reads padding for the top row and left column
    out, _ = conv_ops.conv2d_forward(x, kernel, None, (1, 1), "same", algorithm)
    theirs = tf.nn.conv2d(x, kernel, 1, "SAME").numpy()
    np.testing.assert_array_equal(np.isnan(out), np.isnan(theirs))  # TF: 25 NaN, numvgg: 36


@pytest.mark.keras
@pytest.mark.parametrize("algorithm", ["winograd2", "winograd4"])
def test_hed_trunk_through_winograd_matches_keras(algorithm, hed_weights_path, keras, tf):
    """Real trained weights (HED's VGG16 trunk) on a real photo at an odd size
    (57x61: every block ends on an odd map), all 13 convs through Winograd:
    every layer's output and every gradient as Keras' (measured: forward
    <= 1.7e-6, gradients <= 4.3e-6; no crossed ReLU or pool kink)."""
    from test_hed_trunk import photo_batch
    from test_keras_parity import crossed_kinks, keras_leaves

    from numvgg.applications.vgg16 import preprocess_input
    from numvgg.io.weights import load_vgg16_weights
    from numvgg.models import leaf_layers

    x = np.ascontiguousarray(preprocess_input(photo_batch(64))[:, :57, :61])
    ours = VGG16(weights=None, include_top=False, input_shape=(57, 61, 3))
    load_vgg16_weights(ours, hed_weights_path)
    theirs = keras.applications.VGG16(weights=None, include_top=False, input_shape=(57, 61, 3))
    theirs.set_weights(ours.get_weights())
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        k_outs = [xt]
        for layer in keras_leaves(theirs):
            k_outs.append(layer(k_outs[-1]))
        dout = np.random.default_rng(0).standard_normal(k_outs[-1].shape).astype(np.float32)
        loss = tf.reduce_sum(k_outs[-1] * dout)
    grads_tf = tape.gradient(loss, [xt, *theirs.trainable_weights])
    k_outs = [np.asarray(o) for o in k_outs]

    with config.using_conv_algorithm(algorithm):
        with trace(ours, record="output") as t:
            ours(x)
        dx = ours.backward(dout)
    outs = [x] + [rec.output for rec in t.records.values()]
    assert crossed_kinks(list(leaf_layers(ours)), outs, k_outs) == []
    for out, k_out in zip(outs[1:], k_outs[1:]):
        assert rel_to_max(out, k_out) <= 1e-5
    assert rel_to_max(dx, grads_tf[0]) <= 1e-4
    for g, g_tf in zip(ours.grads, grads_tf[1:]):
        assert rel_to_max(g, g_tf) <= 1e-4
