"""numvgg.optimizers against keras.optimizers: same weights after a few steps,
same learning rates, same state layout; plus the API's errors and warnings."""

import warnings

import numpy as np
import pytest

from numvgg import optimizers
from numvgg.errors import ShapeError
from numvgg.optimizers import schedules

SHAPES = [(3, 4), (5,), (2, 3, 3, 2)]
STEPS = 5


def make_problem(seed=0):
    """Float32 weights and STEPS lists of gradients whose scales vary from
    1e-3 to 10, so every term of every rule matters."""
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    grads = [
        [(rng.standard_normal(s) * 10 ** rng.uniform(-3, 1)).astype(np.float32) for s in SHAPES]
        for _ in range(STEPS)
    ]
    return weights, grads


def run_numvgg(opt, weights0, grads_seq):
    weights = [w.copy() for w in weights0]
    for grads in grads_seq:
        opt.apply(grads, weights)
    return weights


def run_keras(keras, tf, opt, weights0, grads_seq):
    variables = [keras.Variable(w) for w in weights0]
    for grads in grads_seq:
        opt.apply_gradients(zip([tf.constant(g) for g in grads], variables))
    return [v.numpy() for v in variables]


def assert_same_weights(ours, theirs, start):
    for a, b, w0 in zip(ours, theirs, start):
        assert a.dtype == np.float32
        assert not np.array_equal(b, w0), "the reference did not move: the test would prove nothing"
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


CONFIGS = [
    ("SGD", {}),
    ("SGD", {"momentum": 0.9}),
    ("SGD", {"momentum": 0.9, "nesterov": True}),
    ("Adam", {}),
    ("Adam", {"amsgrad": True, "beta_1": 0.8, "epsilon": 1e-3}),
    ("RMSprop", {}),
    ("RMSprop", {"momentum": 0.5}),
    ("RMSprop", {"centered": True}),
    ("RMSprop", {"momentum": 0.5, "centered": True, "rho": 0.8}),
    ("Adagrad", {}),
    ("Adagrad", {"initial_accumulator_value": 0.0, "learning_rate": 0.05}),
    ("Adadelta", {"learning_rate": 1.0}),
    ("Adam", {"clipnorm": 0.5}),
    ("Adam", {"global_clipnorm": 0.5}),
    ("SGD", {"clipvalue": 0.1, "momentum": 0.9}),
    ("Adam", {"weight_decay": 0.1}),
]


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=[f"{n}-{k}" for n, k in CONFIGS])
def test_update_rules_match_keras(keras, tf, name, kwargs):
    weights0, grads = make_problem()
    ours = run_numvgg(getattr(optimizers, name)(**kwargs), weights0, grads)
    theirs = run_keras(keras, tf, getattr(keras.optimizers, name)(**kwargs), weights0, grads)
    assert_same_weights(ours, theirs, weights0)


@pytest.mark.parametrize("schedule", ["ExponentialDecay", "InverseTimeDecay"])
@pytest.mark.parametrize("staircase", [False, True])
def test_schedules_match_keras(keras, tf, schedule, staircase):
    args = dict(initial_learning_rate=0.1, decay_steps=2, decay_rate=0.5, staircase=staircase)
    ours_schedule = getattr(schedules, schedule)(**args)
    keras_schedule = getattr(keras.optimizers.schedules, schedule)(**args)
    for step in range(7):
        assert ours_schedule(step) == pytest.approx(float(keras_schedule(step)), rel=1e-6)
    weights0, grads = make_problem(1)
    ours_opt = optimizers.SGD(learning_rate=ours_schedule, momentum=0.9)
    keras_opt = keras.optimizers.SGD(learning_rate=keras_schedule, momentum=0.9)
    assert_same_weights(
        run_numvgg(ours_opt, weights0, grads), run_keras(keras, tf, keras_opt, weights0, grads), weights0
    )
    # The schedule is read at `iterations`, the number of updates already applied.
    assert ours_opt.iterations == STEPS
    assert ours_opt.learning_rate == pytest.approx(float(keras_opt.learning_rate), rel=1e-6)
    assert ours_opt.learning_rate == pytest.approx(float(ours_schedule(STEPS)))


def test_learning_rate_set_between_steps_matches_keras(keras, tf):
    """ReduceLROnPlateau assigns `optimizer.learning_rate` mid-training."""
    weights0, grads = make_problem(2)
    ours, theirs = optimizers.Adam(), keras.optimizers.Adam()
    w_ours = run_numvgg(ours, weights0, grads[:2])
    variables = [keras.Variable(w) for w in weights0]
    for g in grads[:2]:
        theirs.apply_gradients(zip([tf.constant(x) for x in g], variables))
    ours.learning_rate = ours.learning_rate * 0.1
    theirs.learning_rate = float(theirs.learning_rate) * 0.1
    assert ours.learning_rate == float(theirs.learning_rate.numpy())
    for g in grads[2:]:
        ours.apply(g, w_ours)
        theirs.apply_gradients(zip([tf.constant(x) for x in g], variables))
    assert_same_weights(w_ours, [v.numpy() for v in variables], weights0)


def test_learning_rate_is_float32_and_schedule_not_settable():
    opt = optimizers.SGD(learning_rate=0.1)
    assert opt.learning_rate == float(np.float32(0.1))
    opt.learning_rate = 0.5
    assert opt.learning_rate == 0.5
    scheduled = optimizers.SGD(learning_rate=schedules.ExponentialDecay(0.1, 10, 0.5))
    with pytest.raises(TypeError, match="not settable"):
        scheduled.learning_rate = 0.01
    with pytest.raises(ValueError, match="learning_rate"):
        optimizers.Adam(learning_rate="fast")


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("Adam", {"amsgrad": True}),
        ("RMSprop", {"momentum": 0.5, "centered": True}),
        ("Adadelta", {}),
        ("SGD", {"momentum": 0.9}),
        ("Adagrad", {}),
    ],
)
def test_state_is_in_keras_variable_order(keras, tf, name, kwargs):
    weights0, grads = make_problem(3)
    ours = getattr(optimizers, name)(**kwargs)
    theirs = getattr(keras.optimizers, name)(**kwargs)
    run_numvgg(ours, weights0, grads[:3])
    run_keras(keras, tf, theirs, weights0, grads[:3])
    state = ours.get_state()
    keras_values = [v.numpy() for v in theirs.variables]
    assert len(state) == len(keras_values)
    for (key, ours_value), keras_value in zip(state.items(), keras_values):
        assert ours_value.shape == keras_value.shape, key
        np.testing.assert_allclose(ours_value, keras_value, rtol=1e-6, atol=1e-7, err_msg=key)
    assert list(state)[:3] == [
        "iterations",
        "learning_rate",
        {
            "Adam": "momentum/0",
            "RMSprop": "velocity/0",
            "Adadelta": "accumulated_grad/0",
            "SGD": "momentum/0",
            "Adagrad": "accumulator/0",
        }[name],
    ]


def test_set_state_resumes_exactly():
    weights0, grads = make_problem(4)
    straight = run_numvgg(optimizers.Adam(amsgrad=True), weights0, grads)

    first = optimizers.Adam(amsgrad=True)
    weights = run_numvgg(first, weights0, grads[:2])
    state = first.get_state()
    resumed = optimizers.Adam(amsgrad=True)
    resumed.build(weights)
    resumed.set_state(state)
    assert resumed.iterations == 2
    for g in grads[2:]:
        resumed.apply(g, weights)
    for a, b in zip(weights, straight):
        np.testing.assert_array_equal(a, b)


def test_set_state_checks_everything_first():
    weights0, grads = make_problem(5)
    opt = optimizers.SGD(momentum=0.9)
    with pytest.raises(ValueError, match="not built"):
        opt.set_state({})
    run_numvgg(opt, weights0, grads[:1])
    good = opt.get_state()
    with pytest.raises(ValueError, match="missing keys \\['momentum/2'\\]"):
        opt.set_state({k: v for k, v in good.items() if k != "momentum/2"})
    bad = dict(good, **{"momentum/1": np.zeros(7, np.float32), "iterations": np.array(99)})
    with pytest.raises(ShapeError, match="'momentum/1' has shape \\(7,\\), expected \\(5,\\)"):
        opt.set_state(bad)
    assert opt.iterations == 1, "a rejected state must leave the optimizer untouched"


def test_updates_in_place_and_leaves_gradients_alone():
    weights0, grads = make_problem(6)
    weights = [w.copy() for w in weights0]
    ids = [id(w) for w in weights]
    grads_before = [g.copy() for g in grads[0]]
    opt = optimizers.RMSprop(momentum=0.5, clipnorm=1.0)
    opt.apply_gradients(zip(grads[0], weights))
    assert [id(w) for w in weights] == ids
    assert not np.array_equal(weights[0], weights0[0])
    for g, before in zip(grads[0], grads_before):
        np.testing.assert_array_equal(g, before)
    assert opt.iterations == 1


def test_apply_without_variables_after_build():
    weights0, grads = make_problem(7)
    a = [w.copy() for w in weights0]
    b = [w.copy() for w in weights0]
    opt_a, opt_b = optimizers.Adam(), optimizers.Adam()
    opt_b.build(b)
    for g in grads:
        opt_a.apply(g, a)
        opt_b.apply(g)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match="build"):
        optimizers.Adam().apply(grads[0])


def test_foreign_variables_and_bad_gradients_are_rejected():
    weights0, grads = make_problem(8)
    weights = [w.copy() for w in weights0]
    opt = optimizers.Adam()
    opt.apply(grads[0], weights)
    with pytest.raises(ValueError, match="not one of the 3 arrays"):
        opt.apply(grads[0], [w.copy() for w in weights])
    with pytest.raises(
        ShapeError, match="Gradient #1 has shape \\(4,\\) but its variable has shape \\(5,\\)"
    ):
        opt.apply([grads[0][0], np.zeros(4, np.float32), grads[0][2]], weights)
    with pytest.raises(ValueError, match="No gradients"):
        opt.apply([None, None, None], weights)
    with pytest.raises(TypeError, match="float numpy array"):
        optimizers.SGD().apply([np.ones(3)], [np.zeros(3, dtype=np.int32)])
    with pytest.raises(ValueError, match="appear once"):
        optimizers.SGD().build([weights[0], weights[0]])


def test_none_gradient_leaves_weight_and_slots_alone(keras, tf):
    weights0, grads = make_problem(9)
    grads = [[g[0], None, g[2]] for g in grads]
    opt = optimizers.Adam()
    with pytest.warns(UserWarning, match="Gradients do not exist"):
        ours = run_numvgg(opt, weights0, grads)
    np.testing.assert_array_equal(ours[1], weights0[1])
    assert not opt.get_state()["momentum/1"].any()
    variables = [keras.Variable(w) for w in weights0]
    kopt = keras.optimizers.Adam()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for g in grads:
            kopt.apply_gradients(zip([None if x is None else tf.constant(x) for x in g], variables))
    np.testing.assert_allclose(ours[0], variables[0].numpy(), rtol=1e-6, atol=1e-7)


def test_legacy_lr_alias_warns_and_is_used(keras):
    with pytest.warns(DeprecationWarning, match="learning_rate=0.005"):
        opt = optimizers.Adam(lr=0.005)
    assert opt.learning_rate == float(np.float32(0.005))
    with pytest.warns(DeprecationWarning):
        assert optimizers.SGD(lr=0.2, momentum=0.9).get_config()["learning_rate"] == float(np.float32(0.2))
    with pytest.raises(ValueError, match="both"):
        optimizers.Adam(learning_rate=0.01, lr=0.005)
    # Keras 3 itself rejects `lr`: numvgg is more forgiving on purpose.
    with pytest.raises(ValueError, match="Argument\\(s\\) not recognized"):
        keras.optimizers.Adam(lr=0.001)


def test_unknown_and_ignored_arguments(keras):
    with pytest.raises(ValueError) as ours:
        optimizers.Adam(bogus=1)
    with pytest.raises(ValueError) as theirs:
        keras.optimizers.Adam(bogus=1)
    assert str(ours.value) == str(theirs.value) == "Argument(s) not recognized: {'bogus': 1}"
    with pytest.warns(UserWarning, match="`decay` is no longer supported"):
        opt = optimizers.SGD(decay=1e-4)
    assert opt.learning_rate == float(np.float32(0.01))
    with pytest.raises(ValueError, match="Only one of"):
        optimizers.SGD(clipnorm=1.0, clipvalue=1.0)
    with pytest.raises(ValueError, match="momentum"):
        optimizers.SGD(momentum=1.5)


def test_get_resolves_keras_names():
    for name, cls in [
        ("sgd", optimizers.SGD),
        ("adam", optimizers.Adam),
        ("rmsprop", optimizers.RMSprop),
        ("adagrad", optimizers.Adagrad),
        ("adadelta", optimizers.Adadelta),
        ("RMSprop", optimizers.RMSprop),
        ("Adam", optimizers.Adam),
    ]:
        assert type(optimizers.get(name)) is cls
    opt = optimizers.SGD(momentum=0.5)
    assert optimizers.get(opt) is opt
    rebuilt = optimizers.get({"class_name": "SGD", "config": opt.get_config()})
    assert rebuilt.get_config() == opt.get_config()
    with pytest.raises(ValueError, match="adadelta, adagrad, adam, rmsprop, sgd"):
        optimizers.get("adamw")


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("SGD", {"momentum": 0.9, "nesterov": True}),
        ("Adam", {"amsgrad": True}),
        ("RMSprop", {"centered": True}),
        ("Adagrad", {}),
        ("Adadelta", {}),
        ("Adam", {"clipnorm": 1.0, "weight_decay": 0.01}),
    ],
)
def test_config_matches_keras(keras, name, kwargs):
    ours = getattr(optimizers, name)(**kwargs).get_config()
    theirs = getattr(keras.optimizers, name)(**kwargs).get_config()
    for key, value in ours.items():
        if key != "name":
            assert theirs[key] == value, key


def test_schedule_config_round_trip():
    opt = optimizers.Adam(learning_rate=schedules.InverseTimeDecay(0.01, 1, 1e-3))
    config = opt.get_config()
    assert config["learning_rate"] == {
        "class_name": "InverseTimeDecay",
        "config": {
            "initial_learning_rate": 0.01,
            "decay_steps": 1,
            "decay_rate": 1e-3,
            "staircase": False,
            "name": "InverseTimeDecay",
        },
    }
    again = optimizers.Adam.from_config(config)
    assert again.get_config() == config
    assert "learning_rate" not in again.get_state()
    with pytest.raises(ValueError, match="decay_steps"):
        schedules.ExponentialDecay(0.1, 0, 0.5)
