"""numvgg.debug.trace: recording every layer's tensors, and stepping through layers.

Two models: the seed's transfer-learning stack at 32x32, ``Sequential([VGG16
(no top), GlobalAveragePooling2D, Dense(4, relu), Dense(1, sigmoid)])``, so
nested names (``vgg16/block3_conv2``) are exercised; and the same shape in
miniature (two conv blocks on 8x8 images) for the tests that run many
passes. Recorded values are checked against an independent layer-by-layer
run, and one test checks a recorded activation against Keras.
"""

import numpy as np
import pytest

from numvgg import initializers
from numvgg.applications.vgg16 import VGG16, preprocess_input
from numvgg.debug.trace import Trace, TraceKeyError, layer_output, step, step_backward, tensor_stats, trace
from numvgg.layers import Conv2D, Dense, GlobalAveragePooling2D, MaxPooling2D
from numvgg.models import Sequential, leaf_layers

CONV_BASE_NAMES = [
    f"block{b}_{kind}"
    for b, n in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3))
    for kind in [f"conv{i}" for i in range(1, n + 1)] + ["pool"]
]


@pytest.fixture(scope="module")
def stack():
    initializers.set_seed(7)
    base = VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    return Sequential(
        [
            base,
            GlobalAveragePooling2D(name="gap"),
            Dense(4, activation="relu", name="hidden"),
            Dense(1, activation="sigmoid", name="out"),
        ],
        name="transfer",
    )


@pytest.fixture(scope="module")
def x():
    rng = np.random.default_rng(3)
    return preprocess_input(rng.uniform(0, 255, (2, 32, 32, 3)).astype(np.float32))


@pytest.fixture(scope="module")
def mini():
    """The transfer-learning shape in miniature: a nested conv base, then a head."""
    initializers.set_seed(8)
    base = Sequential(
        [
            Conv2D(4, 3, padding="same", activation="relu", name="block1_conv1", input_shape=(8, 8, 3)),
            MaxPooling2D(name="block1_pool"),
            Conv2D(6, 3, padding="same", activation="relu", name="block2_conv1"),
            MaxPooling2D(name="block2_pool"),
        ],
        name="base",
    )
    return Sequential(
        [
            base,
            GlobalAveragePooling2D(name="gap"),
            Dense(5, activation="relu", name="hidden"),
            Dense(1, activation="sigmoid", name="out"),
        ],
        name="mini",
    )


@pytest.fixture(scope="module")
def xm():
    return np.random.default_rng(4).normal(0, 20, (3, 8, 8, 3)).astype(np.float32)


def manual_forward(model, x):
    """Outputs of every leaf, by running the leaves one after the other by hand."""
    outs = []
    for leaf in leaf_layers(model):
        x = leaf(x)
        leaf.clear_cache()
        outs.append(x)
    return outs


def no_instance_wrappers(model):
    return all(
        "forward" not in leaf.__dict__ and "backward" not in leaf.__dict__ for leaf in leaf_layers(model)
    )


def test_trace_names_every_leaf_with_its_nested_path(stack):
    t = trace(stack)
    assert t.names() == [f"vgg16/{n}" for n in CONV_BASE_NAMES] + ["gap", "hidden", "out"]
    assert t["block3_conv2"] is t["vgg16/block3_conv2"]
    assert t["block3_conv2"].layer is stack.get_layer("block3_conv2")
    assert t["block3_conv2"].index == CONV_BASE_NAMES.index("block3_conv2")
    assert "block3_conv2" in t and "block9_conv1" not in t


@pytest.fixture(scope="module")
def traced(stack, x):
    """One forward and backward of the stack, traced: ``(trace, dy, y, dx)``."""
    dy = np.random.default_rng(5).standard_normal((2, 1)).astype(np.float32)
    with trace(stack) as t:
        y = stack.forward(x)
        dx = stack.backward(dy)
    return t, dy, y, dx


def test_trace_records_forward_and_backward_tensors(stack, x, traced):
    t, dy, y, dx = traced
    expected_outs = manual_forward(stack, x)
    records = list(t)
    assert len(records) == len(expected_outs) == 21
    for rec, expected in zip(records, expected_outs):
        assert rec.n_forward == 1 and rec.n_backward == 1
        np.testing.assert_array_equal(rec.output, expected, err_msg=rec.name)
    np.testing.assert_array_equal(records[0].input, x)
    # Each layer's input is the previous layer's output; each upstream gradient is
    # the next layer's input gradient.
    for below, above in zip(records, records[1:]):
        assert above.input is below.output
        assert below.grad_output is above.grad_input
    np.testing.assert_array_equal(records[-1].output, y)
    np.testing.assert_array_equal(records[-1].grad_output, dy)
    assert records[0].grad_input is dx
    for rec in records:
        assert list(rec.weight_grads) == rec.layer.weight_names
        for g_recorded, g_layer in zip(rec.weight_grads.values(), rec.layer.grads):
            assert g_recorded is g_layer
    conv = t["block2_conv1"]
    assert conv.weight_grads["kernel"].shape == (3, 3, 64, 128)
    assert conv.weight_grads["bias"].shape == (128,)
    assert t["block1_pool"].weight_grads == {}


def test_stats_are_the_numpy_statistics(stack, x):
    with trace(stack, record="output") as t:
        stack.forward(x)
    stack.clear_cache()
    out = t["block2_conv2"].output
    s = t["block2_conv2"].stats["output"]
    assert s == tensor_stats(out)
    assert s.shape == (2, 16, 16, 128) and s.dtype == "float32"
    assert s.mean == pytest.approx(float(out.astype(np.float64).mean()), rel=1e-12)
    assert s.std == pytest.approx(float(out.astype(np.float64).std()), rel=1e-12)
    assert (s.min, s.max) == (float(out.min()), float(out.max()))
    assert s.zeros == pytest.approx(np.mean(out == 0))
    assert 0.2 < s.zeros < 0.8  # a ReLU layer: roughly half zeros
    empty = tensor_stats(np.zeros((0, 3)))
    assert empty.shape == (0, 3) and np.isnan(empty.mean)


def test_wrappers_are_removed_on_exit_even_after_an_error(stack, x):
    x = x[:1]
    assert no_instance_wrappers(stack)
    with pytest.raises(RuntimeError, match="boom"):
        with trace(stack) as t:
            assert "forward" in stack.get_layer("block1_conv1").__dict__
            raise RuntimeError("boom")
    assert not t.active and no_instance_wrappers(stack)
    # Nothing is recorded outside the block.
    stack(x)
    assert t["block1_conv1"].n_forward == 0 and t["block1_conv1"].output is None


def test_nested_traces_both_record_and_unwind(mini, xm):
    with trace(mini, record="output") as outer:
        with trace(mini, record="grads") as inner:
            mini.forward(xm)
            mini.backward(np.ones((3, 1), np.float32))
        assert outer.active and not inner.active
        mini(xm)  # outer still wraps the layers
    assert no_instance_wrappers(mini)
    assert outer["hidden"].n_forward == 2 and inner["hidden"].n_forward == 1
    assert outer["hidden"].grad_output is None and inner["hidden"].output is None
    assert inner["hidden"].grad_output is not None


def test_record_limits_what_is_kept(mini, xm):
    with trace(mini, record=("output",)) as t:
        mini.forward(xm)
        mini.backward(np.ones((3, 1), np.float32))
    rec = t["block2_conv1"]
    assert rec.output is not None
    assert rec.input is None and rec.grad_output is None and rec.grad_input is None
    assert rec.weight_grads == {} and set(rec.stats) == {"output"}

    with trace(mini, stats_only=True) as t:
        mini.forward(xm)
        mini.backward(np.ones((3, 1), np.float32))
    rec = t["block2_conv1"]
    assert rec.output is None and rec.weight_grads == {}
    assert set(rec.stats) == {
        "input",
        "pre_activation",
        "output",
        "grad_output",
        "grad_input",
        "grad kernel",
        "grad bias",
    }
    assert rec.stats["grad kernel"].shape == (3, 3, 4, 6)
    assert rec.stats["output"] == tensor_stats(manual_forward(mini, xm)[2])

    with pytest.raises(ValueError, match="'outputs'"):
        Trace(mini, record=("outputs",))


def test_lookup_errors_name_the_candidates():
    left = Sequential([Dense(3, name="fc", input_shape=(2,))], name="left")
    right = Sequential([Dense(2, name="fc", input_shape=(3,))], name="right")
    model = Sequential([left, right], name="two")
    t = trace(model)
    assert t.names() == ["left/fc", "right/fc"]
    assert t["right/fc"].layer is right.layers[0]
    with pytest.raises(TraceKeyError, match=r"ambiguous.*left/fc.*right/fc"):
        t["fc"]
    with pytest.raises(KeyError, match=r"No layer named 'fc9'.*left/fc"):
        t["fc9"]


def test_table_shows_every_tensor_once(stack, traced):
    t = traced[0]
    text = str(t)
    lines = text.splitlines()
    assert lines[0].split()[:4] == ["layer", "tensor", "shape", "mean"]
    for name in t.names():
        assert any(line.startswith(name + " ") for line in lines), name
    assert "(3, 3, 64, 128)" in text and "(128,)" in text and "dL/d kernel" in text
    full = t.table(compact=False)
    # Every recorded tensor in the full table: 21 layers x 4 + 2 weight grads per weighted
    # layer + a pre-activation per fused activation (all 15 weighted layers have one here).
    n_weighted = sum(bool(leaf.params) for leaf in leaf_layers(stack))
    n_fused = sum(getattr(leaf, "activation_name", "linear") != "linear" for leaf in leaf_layers(stack))
    assert n_fused == 15
    assert len(list(t.rows())) == 21 * 4 + 2 * n_weighted + n_fused
    assert len(full.splitlines()) == 2 + 21 * 4 + 2 * n_weighted + n_fused
    # The compact table drops exactly the repeated input / dL/d input rows of layers 2..21.
    assert len(list(t.rows(compact=True))) == len(list(t.rows())) - 2 * 20
    block1_conv2_rows = [r for r in t.rows(compact=True) if r[0] == "vgg16/block1_conv2"]
    assert [r[1] for r in block1_conv2_rows] == [
        "pre_activation",
        "output",
        "grad_output",
        "grad kernel",
        "grad bias",
    ]
    assert "nothing recorded yet" in str(trace(stack))


def test_trace_during_training_shows_the_fused_logit_gradient(mini, xm):
    """In fit/train_on_batch the sigmoid + cross-entropy is fused: the last layer
    receives dL/dz = (p - y) / N, and a frozen base gets no backward at all."""
    saved = mini.get_weights()
    mini.layers[0].trainable = False
    try:
        mini.compile(optimizer="sgd", loss="binary_crossentropy")
        y = np.array([[1.0], [0.0], [1.0]], np.float32)
        probs = mini.predict(xm, verbose=0)
        with trace(mini) as t:
            mini.train_on_batch(xm, y)
    finally:
        mini.layers[0].trainable = True
        mini.set_weights(saved)
    out = t["out"]
    assert out.from_logits
    np.testing.assert_allclose(out.grad_output, (probs - y) / 3, rtol=1e-5, atol=1e-7)
    assert t["block2_conv1"].n_forward == 1 and t["block2_conv1"].n_backward == 0
    assert t["hidden"].n_backward == 1
    assert "dL/d logits" in str(t)


def test_step_runs_one_layer_per_next_and_matches_forward(stack, x):
    x = x[:1]
    expected = manual_forward(stack, x)
    steps = step(stack, x)
    first = next(steps)
    assert (first.name, first.index) == ("vgg16/block1_conv1", 0)
    assert first.input is not None and first.output.shape == (1, 32, 32, 64)
    seen = [first]
    for s in steps:
        seen.append(s)
        if s.name.endswith("block3_conv2"):
            break  # where a student would stop
    assert seen[-1].layer is stack.get_layer("block3_conv2")
    np.testing.assert_array_equal(seen[-1].output, expected[seen[-1].index])
    assert seen[-1].input is seen[-2].output
    stack.clear_cache()

    gen = step(stack, x)
    all_steps = []
    with pytest.raises(StopIteration) as stop:
        while True:
            all_steps.append(next(gen))
    assert [s.index for s in all_steps] == list(range(21))
    np.testing.assert_array_equal(stop.value.value, expected[-1])
    stack.clear_cache()


@pytest.mark.parametrize("from_logits", [False, True])
def test_step_backward_matches_model_backward(mini, xm, from_logits):
    dy = np.random.default_rng(9).standard_normal((3, 1)).astype(np.float32)
    mini.forward(xm)
    dx_model = mini.backward(dy, from_logits=from_logits)
    grads_model = [g.copy() for g in mini.grads]

    for _ in step(mini, xm):
        pass
    back = step_backward(mini, dy, from_logits=from_logits)
    seen = []
    with pytest.raises(StopIteration) as stop:
        while True:
            seen.append(next(back))
    assert [b.index for b in seen] == list(range(6, -1, -1))
    assert seen[0].name == "out" and seen[-1].name == "base/block1_conv1"
    np.testing.assert_array_equal(seen[0].grad_output, dy)
    for upper, lower in zip(seen, seen[1:]):
        assert lower.grad_output is upper.grad_input
    np.testing.assert_allclose(stop.value.value, dx_model, rtol=1e-6, atol=1e-12)
    for g_step, g_model in zip(mini.grads, grads_model):
        np.testing.assert_allclose(g_step, g_model, rtol=1e-6, atol=1e-12)
    by_name = {b.name: b for b in seen}
    assert by_name["base/block2_conv1"].weight_grads["kernel"] is mini.get_layer("block2_conv1").grads[0]
    assert by_name["base/block2_pool"].weight_grads == {}
    if from_logits:  # the sigmoid's derivative was skipped: dL/dz of the last layer is dy itself
        assert not np.allclose(dx_model, _dx_through_sigmoid(mini, xm, dy))


def _dx_through_sigmoid(model, x, dy):
    model.forward(x)
    return model.backward(dy)


def test_layer_output_runs_only_up_to_the_layer_and_keeps_no_cache(mini, xm):
    got = layer_output(mini, xm, "block2_conv1")
    np.testing.assert_array_equal(got, manual_forward(mini, xm)[2])
    assert all(leaf._cache is None for leaf in leaf_layers(mini))
    with pytest.raises(TraceKeyError, match="block9_pool"):
        layer_output(mini, xm, "block9_pool")


def test_recorded_activation_matches_keras(keras, vgg16_pair):
    """A traced intermediate activation is what Keras computes for that layer."""
    x = preprocess_input(np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)))
    with trace(vgg16_pair.numvgg, record="output") as t:
        vgg16_pair.numvgg(x)
    theirs = vgg16_pair.keras
    probe = keras.Model(theirs.input, theirs.get_layer("block3_conv2").output)
    expected = np.asarray(probe(x))
    ours = t["block3_conv2"].output
    assert ours.shape == expected.shape
    assert np.max(np.abs(ours - expected)) <= 1e-5 * np.max(np.abs(expected))


# -- pre-activations of fused activations ---------------------------------------------------


def test_pre_activation_is_conv_plus_bias_before_the_relu(stack, x):
    """``record=('pre_activation',)`` keeps ``z`` of every layer with a fused activation;
    it equals the convolution (or matmul) plus bias computed separately, and the
    activation of it is the layer's output."""
    from numvgg.ops.conv import conv2d_forward
    from numvgg.ops.dense import dense_forward

    with trace(stack, record=("pre_activation", "output")) as t:
        stack.forward(x)
    conv = t["block1_conv1"]
    z, _ = conv2d_forward(
        x.astype(np.float32),
        conv.layer.params["kernel"],
        conv.layer.params["bias"],
        strides=(1, 1),
        padding="same",
    )
    np.testing.assert_allclose(conv.pre_activation, z, rtol=1e-6, atol=1e-5)
    assert conv.pre_activation.min() < 0  # kept before the ReLU wrote into it
    np.testing.assert_array_equal(np.maximum(conv.pre_activation, 0), conv.output)
    out = t["out"]  # Dense(1, sigmoid): the logits
    logits, _ = dense_forward(t["hidden"].output, out.layer.params["kernel"], out.layer.params["bias"])
    np.testing.assert_allclose(out.pre_activation, logits, rtol=1e-6)
    np.testing.assert_allclose(1 / (1 + np.exp(-out.pre_activation)), out.output, rtol=1e-6)
    assert t["block1_pool"].pre_activation is None and t["gap"].pre_activation is None
    assert "pre_activation" in conv.stats and t["block1_pool"].input is None


def test_pre_activation_in_all_and_in_the_table_but_not_for_linear(mini, xm):
    linear = Sequential([Dense(3, name="lin", input_shape=(4,)), Dense(2, activation="tanh", name="th")])
    with trace(linear, record="all") as t:
        linear.forward(np.ones((2, 4), np.float32))
    assert t["lin"].pre_activation is None and "pre_activation" not in t["lin"].stats
    assert t["th"].pre_activation.shape == (2, 2)
    assert "pre-activation" in str(t)
    with trace(mini, record="activations") as t:  # input and output only
        mini.forward(xm)
    assert t["block1_conv1"].pre_activation is None
    assert all("_activate" not in leaf.__dict__ for leaf in leaf_layers(mini))  # unwrapped on exit
