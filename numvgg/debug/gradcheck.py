"""Gradient checking: compare a hand-written backward with finite differences.

The idea (CS231n's ``gradient_check.py``): for a scalar loss
``L = sum(out * dout)`` with a *random* upstream gradient ``dout``, the exact
gradient of ``L`` with respect to an input ``x`` is what ``backward(dout)``
returns. Nudge one element of ``x`` by ``+h`` and ``-h`` and

    dL/dx[i]  ~  (L(x + h e_i) - L(x - h e_i)) / (2 h)

with an error of order ``h**2`` (central differences). Doing this for every
element gives a numerical gradient to compare with the analytic one.

Two details make the check trustworthy:

* **float64.** With ``h = 1e-5`` the difference ``L(x+h) - L(x-h)`` is about
  ``1e-5 * |dL/dx|``; float32 keeps only ~7 digits, which would leave ~2
  correct digits. In float64 the two gradients agree to ~1e-9.
* **A random dout.** With ``dout = 1`` a backward that forgets to multiply by
  ``dout`` (or mixes up two output positions) still passes.

The error measure is the largest elementwise *relative* error,
``max |a - b| / max(1e-8, |a| + |b|)``: below ~1e-7 the backward is right,
around 1e-2 or more it is wrong. A kink (ReLU at 0, two equal maxima in a
pooling window) inside ``[x-h, x+h]`` breaks the approximation itself, so the
checks below use random inputs where that almost never happens.

Public functions:

* :func:`rel_error` and :func:`numerical_gradient_array`: the two tools;
* :func:`check_op`: check a pure op pair from :mod:`numvgg.ops`;
* :func:`check_layer`: check a layer (input and every weight) in float64;
  on a big layer (VGG16's ``block5_conv3``: 2.4M weights) it checks a seeded
  sample of :data:`SAMPLES` entries per tensor, always including the largest
  gradients, with a progress bar, instead of running for minutes;
* :func:`check_all_layers`: every layer type on small, asymmetric shapes,
  as a :class:`GradCheckReport` (``print(report)`` shows a table).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Largest relative error :func:`check_all_layers` accepts in float64.
TOLERANCE = 1e-6

#: Entries :func:`check_layer` checks per tensor by default. A tensor this size
#: or smaller is checked whole; a bigger one (a real VGG16 layer) is sampled.
SAMPLES = 256

#: Share of a sample taken from the largest analytic gradients, the entries
#: a wrong scale or a wrong term shows in first; the rest are drawn at random.
LARGEST_SHARE = 0.25


def rel_error(a, b) -> float:
    """Largest elementwise relative error ``max |a-b| / max(1e-8, |a|+|b|)``.

    Args:
        a, b: arrays of the same shape (compared in float64).
    Returns:
        A float; 0.0 when the arrays are equal (or empty).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error: shapes differ, {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    # The 1e-8 floor keeps two near-zero numbers from giving 0/0.
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def numerical_gradient_array(f, x: np.ndarray, dout: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central-difference gradient of ``L = sum(f(x) * dout)`` with respect to ``x``.

    Args:
        f: a function of ``x`` returning an array shaped like ``dout``. It may
            read ``x`` by reference: ``x`` is changed in place, one element at
            a time, and restored afterwards (so ``f`` can also close over a
            layer's weight array and ignore its argument).
        x: float64 array, any shape.
        dout: float64 array, the shape of ``f(x)``.
        h: the step.
    Returns:
        ``dx``, shaped like ``x``: ``dx[i] = (L(x + h e_i) - L(x - h e_i)) / 2h``.
    """
    if x.dtype != np.float64:
        raise TypeError(
            f"numerical_gradient_array needs float64 (got {x.dtype}): "
            "float32 leaves only ~2 correct digits in the difference quotient"
        )
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        loss_plus = np.sum(f(x) * dout)
        x[i] = old - h
        loss_minus = np.sum(f(x) * dout)
        x[i] = old  # restore before the next element
        grad[i] = (loss_plus - loss_minus) / (2 * h)
    return grad


def numerical_gradient_entries(
    f, x: np.ndarray, dout: np.ndarray, flat_indices, h: float = 1e-5, progress=None
) -> np.ndarray:
    """:func:`numerical_gradient_array` for some entries only.

    Args:
        f, x, dout, h: as in :func:`numerical_gradient_array`.
        flat_indices: which entries of ``x`` (indices into ``x.ravel()``).
        progress: a :class:`~numvgg.progbar.Progbar` advanced by one per
            entry (or ``None``).
    Returns:
        float64 array, one central difference per index.
    """
    if x.dtype != np.float64:
        raise TypeError(f"numerical_gradient_entries needs float64 (got {x.dtype})")
    values = np.empty(len(flat_indices))
    for k, flat in enumerate(flat_indices):
        i = np.unravel_index(flat, x.shape)
        old = x[i]
        x[i] = old + h
        loss_plus = np.sum(f(x) * dout)
        x[i] = old - h
        loss_minus = np.sum(f(x) * dout)
        x[i] = old
        values[k] = (loss_plus - loss_minus) / (2 * h)
        if progress is not None:
            progress.add(1)
    return values


def sample_indices(analytic: np.ndarray, samples: int | None, rng) -> np.ndarray:
    """Which entries of a gradient to check: all of them when there are at most
    ``samples`` (or ``samples`` is ``None``), else ``samples`` flat indices:
    the ``LARGEST_SHARE`` with the largest ``|analytic|`` plus a random draw
    from ``rng`` of the others, sorted.

    The largest gradients are always in: a wrong scale or a missing term
    shows most there, and a random sample alone could miss a bug confined to
    a few big entries (one filter, one border pixel).
    """
    size = analytic.size
    if samples is None or size <= samples:
        return np.arange(size)
    magnitude = np.abs(analytic).ravel()
    n_largest = max(1, int(samples * LARGEST_SHARE))
    largest = np.argpartition(magnitude, size - n_largest)[size - n_largest :]
    rest = np.setdiff1d(np.arange(size), largest, assume_unique=True)
    drawn = rng.choice(rest, size=samples - n_largest, replace=False)
    return np.sort(np.concatenate([largest, drawn]))


def _is_float_array(a) -> bool:
    return isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.floating)


def check_op(
    forward, backward, *inputs, seed: int = 0, h: float = 1e-5, names=None, **op_kwargs
) -> dict[str, float]:
    """Check a pure op pair ``forward(*inputs, **op_kwargs) -> (out, cache)``,
    ``backward(dout, cache) -> grads``.

    ``backward`` returns one gradient (one input) or a tuple with one entry per
    input, in the order of ``inputs`` (``conv2d_backward`` returns
    ``(dx, dkernel, dbias)`` for ``(x, kernel, bias)``). Inputs that are not
    float arrays (``None``, ints) are passed through and not checked.

    Example::

        errors = check_op(conv2d_forward, conv2d_backward, x, kernel, bias,
                          names=("x", "kernel", "bias"), strides=(2, 2), padding="same")

    Args:
        inputs: the op's array arguments; copied to float64 (yours are untouched).
        seed: seeds the random upstream gradient ``dout``.
        names: one name per input for the result (default ``input0``, ``input1``, ...).
        op_kwargs: extra keyword arguments for ``forward`` (strides, padding, ...).
    Returns:
        ``{name: rel_error(analytic, numerical)}`` for every float input.
    """
    names = list(names) if names is not None else [f"input{i}" for i in range(len(inputs))]
    if len(names) != len(inputs):
        raise ValueError(f"check_op: {len(inputs)} inputs but {len(names)} names")
    args = [np.array(a, dtype=np.float64) if _is_float_array(a) else a for a in inputs]

    out, cache = forward(*args, **op_kwargs)
    dout = np.random.default_rng(seed).standard_normal(out.shape)
    analytic = backward(dout.copy(), cache)
    if len(args) == 1 and not isinstance(analytic, tuple):
        analytic = (analytic,)
    if len(analytic) < len(args):
        raise ValueError(f"check_op: backward returned {len(analytic)} gradients for {len(args)} inputs")

    errors = {}
    for k, (name, arg) in enumerate(zip(names, args)):
        if not _is_float_array(arg):
            continue

        def f(_):
            # numerical_gradient_array nudges args[k] in place, so forward sees it.
            return forward(*args, **op_kwargs)[0]

        numerical = numerical_gradient_array(f, arg, dout, h)
        errors[name] = rel_error(analytic[k], numerical)
    return errors


def _float64_copy(layer, input_shape, rng):
    """A float64 twin of ``layer`` built for ``(None, *input_shape[1:])``.

    The twin gets the layer's own weights when the layer is built for an input
    this shape fits (``None`` axes fit any size: a VGG16 built for any image
    size), else random ``N(0, 0.5**2)`` weights drawn from ``rng`` (a zero
    bias, the default, would test less)."""
    build_shape = (None, *input_shape[1:])
    if layer._sublayers():  # a model: rebuilt from its config, every layer in float64
        twin = type(layer).from_config(_in_float64(layer.get_config()))
        if not twin.built:
            twin.build(build_shape)
    else:
        twin = type(layer)(**{**layer.get_config(), "dtype": "float64"})
        twin.build(build_shape)
    built_for = tuple(layer.input_shape[1:]) if layer.built else None
    if (
        built_for is not None
        and len(built_for) == len(build_shape) - 1
        and all(b is None or b == s for b, s in zip(built_for, build_shape[1:]))
    ):
        twin.set_weights([w.astype(np.float64) for w in layer.get_weights()])
    else:
        twin.set_weights([rng.normal(0.0, 0.5, w.shape) for w in twin.weights])
    return twin


def _in_float64(config):
    """A model's config with every layer's dtype (a name or Keras' ``DTypePolicy``) float64."""
    if isinstance(config, list):
        return [_in_float64(c) for c in config]
    if not isinstance(config, dict):
        return config
    out = {k: _in_float64(v) for k, v in config.items()}
    dtype = out.get("dtype")
    if isinstance(dtype, str):
        out["dtype"] = "float64"
    elif isinstance(dtype, dict) and dtype.get("class_name") == "DTypePolicy":
        out["dtype"] = {**dtype, "config": {**dtype["config"], "name": "float64"}}
    return out


def check_layer(
    layer,
    input_shape,
    seed: int = 0,
    training: bool = False,
    h: float = 1e-5,
    samples: int | None = SAMPLES,
    verbose=None,
) -> dict[str, float]:
    """Check a layer's ``backward`` against finite differences, in float64.

    A float64 copy of ``layer`` is checked (the layer itself is not touched):
    forward a random ``x`` of ``input_shape``, backward a random ``dout``, and
    compare ``dL/dx`` and every weight gradient with the numerical ones.

    Each checked entry costs two forwards, so a tensor with more than
    ``samples`` entries is sampled (:func:`sample_indices`: the largest
    gradients plus a seeded random draw). VGG16's ``block5_conv3`` on a
    ``(1, 2, 2, 512)`` input checks 3 x 256 entries in seconds instead of
    5M forwards::

        check_layer(vgg.get_layer("block5_conv3"), (1, 2, 2, 512))

    Args:
        layer: any numvgg layer (``Conv2D(4, 3, padding='same')``, ...) or a
            whole model (its weights are then named ``'layer/kernel'``). A
            built layer whose input fits ``input_shape`` is checked with its
            own weights (cast to float64).
        input_shape: full input shape with the batch, e.g. ``(2, 5, 7, 3)``.
        seed: seeds ``x``, ``dout``, the sample and (for an unbuilt layer) the weights.
        training: forward in training mode (``Dropout``); a layer that draws
            random numbers is re-seeded before every forward so each call
            draws the same mask.
        samples: entries checked per tensor (default :data:`SAMPLES`);
            ``None`` checks every entry.
        verbose: 1 shows a progress bar (one step per checked entry), 0
            nothing; ``None`` shows it when some tensor is sampled.
    Returns:
        ``{'x': err, 'kernel': err, 'bias': err}``: one entry for the input
        and one per weight, in ``get_weights()`` order; each the
        :func:`rel_error` over the checked entries.
    """
    rng = np.random.default_rng(seed)
    twin = _float64_copy(layer, input_shape, rng)
    x = rng.standard_normal(input_shape)

    def run(_):
        for leaf in twin.leaf_layers():
            if hasattr(leaf, "rng"):
                # Same random mask on every call, or the difference quotient
                # would measure a change of mask, not a slope.
                leaf.rng = np.random.default_rng(seed)
        return twin.forward(x, training=training)

    out = run(x)
    dout = rng.standard_normal(out.shape)
    dx = twin.backward(dout.copy())
    grads = dict(zip(twin.weight_names, twin.grads))

    # (name, the array numerical_gradient_entries perturbs, the analytic gradient)
    # BatchNormalization's moving statistics get no gradient: they are not checked.
    tensors = [("x", x, dx)] + [
        (name, w, grads[name])
        for name, w in twin.params.items()
        if name not in twin.non_trainable_param_names and grads.get(name) is not None
    ]
    chosen = [sample_indices(analytic, samples, rng) for _, _, analytic in tensors]
    if verbose is None:
        verbose = int(any(len(c) < analytic.size for c, (_, _, analytic) in zip(chosen, tensors)))
    progress = None
    if verbose:
        from ..progbar import Progbar

        progress = Progbar(sum(len(c) for c in chosen), unit_name="entry")

    errors = {}
    for (name, array, analytic), flat in zip(tensors, chosen):
        # ``run`` ignores its argument: forward reads the array (x or a weight)
        # that numerical_gradient_entries perturbs in place.
        numerical = numerical_gradient_entries(run, array, dout, flat, h, progress)
        errors[name] = rel_error(analytic.ravel()[flat], numerical)
    twin.clear_cache()
    return errors


@dataclass
class GradCheckReport:
    """Results of several gradient checks, printable as a table.

    ``rows`` holds ``(case, tensor, error)``; ``print(report)`` shows each
    with PASS / FAIL against ``tolerance``.
    """

    tolerance: float = TOLERANCE
    rows: list[tuple[str, str, float]] = field(default_factory=list)

    def add(self, case: str, errors: dict[str, float]) -> None:
        """Record the result of one :func:`check_layer` / :func:`check_op` call."""
        for tensor, err in errors.items():
            self.rows.append((case, tensor, err))

    @property
    def passed(self) -> bool:
        return all(err <= self.tolerance for _, _, err in self.rows)

    @property
    def failures(self) -> list[tuple[str, str, float]]:
        return [row for row in self.rows if row[2] > self.tolerance]

    @property
    def max_error(self) -> float:
        return max((err for _, _, err in self.rows), default=0.0)

    def __str__(self) -> str:
        case_w = max([len("case")] + [len(c) for c, _, _ in self.rows])
        tensor_w = max([len("tensor")] + [len(t) for _, t, _ in self.rows])
        header = f"{'case':<{case_w}}  {'tensor':<{tensor_w}}  {'rel. error':>10}  result"
        lines = [header, "-" * len(header)]
        for case, tensor, err in self.rows:
            verdict = "PASS" if err <= self.tolerance else "FAIL"
            lines.append(f"{case:<{case_w}}  {tensor:<{tensor_w}}  {err:>10.2e}  {verdict}")
        lines.append("-" * len(header))
        summary = "all passed" if self.passed else f"{len(self.failures)} FAILED"
        lines.append(
            f"{len(self.rows)} tensors checked in float64, tolerance {self.tolerance:.0e}: "
            f"{summary} (max error {self.max_error:.2e})"
        )
        return "\n".join(lines)


def _layer_cases():
    """(description, layer, input shape, training) for every layer type.

    Shapes are small and asymmetric (N != H != W != C, C_in != C_out, odd
    sizes) so a transposed axis or a dropped border pixel cannot hide."""
    from ..layers import (
        Activation,
        AveragePooling2D,
        Conv2D,
        Dense,
        Dropout,
        Flatten,
        GlobalAveragePooling2D,
        GlobalMaxPooling2D,
        MaxPooling2D,
    )

    return [
        (
            "Conv2D 3x3 same s1 relu",
            Conv2D(4, (3, 3), padding="same", activation="relu"),
            (2, 5, 7, 3),
            False,
        ),
        ("Conv2D 3x3 valid s2", Conv2D(4, (3, 3), strides=2, padding="valid"), (2, 7, 6, 3), False),
        (
            "Conv2D 1x2 same s2 tanh",
            Conv2D(3, (1, 2), strides=2, padding="same", activation="tanh"),
            (2, 5, 7, 2),
            False,
        ),
        ("Dense relu", Dense(5, activation="relu"), (3, 7), False),
        ("Dense sigmoid", Dense(4, activation="sigmoid"), (3, 6), False),
        ("Dense softmax", Dense(4, activation="softmax"), (3, 6), False),
        ("Flatten", Flatten(), (2, 3, 4, 5), False),
        ("Dropout 0.4 training", Dropout(0.4, seed=1), (3, 4, 5), True),
        ("Activation relu", Activation("relu"), (2, 3, 5), False),
        ("Activation sigmoid", Activation("sigmoid"), (2, 3, 5), False),
        ("Activation tanh", Activation("tanh"), (2, 3, 5), False),
        ("Activation softmax", Activation("softmax"), (2, 3, 5), False),
        ("MaxPooling2D 2x2 (odd size)", MaxPooling2D(), (2, 7, 5, 3), False),
        ("MaxPooling2D 3x3 s2 same", MaxPooling2D(3, strides=2, padding="same"), (2, 6, 5, 3), False),
        ("AveragePooling2D 2x2 (odd size)", AveragePooling2D(), (2, 7, 5, 3), False),
        ("AveragePooling2D 3x3 s2 same", AveragePooling2D(3, strides=2, padding="same"), (2, 6, 5, 3), False),
        ("GlobalAveragePooling2D", GlobalAveragePooling2D(), (2, 5, 7, 3), False),
        ("GlobalMaxPooling2D", GlobalMaxPooling2D(), (2, 5, 7, 3), False),
        *_augmentation_and_normalization_cases(),
    ]


def _augmentation_and_normalization_cases():
    """Preprocessing layers (random ones in training mode, with their seeded draws) and
    BatchNormalization with batch statistics (training) and moving statistics (inference)."""
    from ..layers import (
        BatchNormalization,
        CenterCrop,
        RandomBrightness,
        RandomContrast,
        RandomFlip,
        RandomRotation,
        RandomTranslation,
        RandomZoom,
        Rescaling,
        Resizing,
    )

    frozen_stats = BatchNormalization()
    frozen_stats.build((None, 5, 7, 3))
    frozen_stats.set_weights([np.full(3, 1.5), np.full(3, -0.5), np.full(3, 0.3), np.full(3, 2.0)])
    return [
        ("Rescaling", Rescaling(1 / 127.5, offset=-1), (2, 5, 7, 3), False),
        ("Resizing bilinear up", Resizing(7, 9), (2, 5, 6, 3), False),
        ("CenterCrop", CenterCrop(3, 4), (2, 5, 7, 3), False),
        ("RandomFlip training", RandomFlip(seed=1), (3, 5, 7, 2), True),
        ("RandomRotation training", RandomRotation(0.2, seed=2), (2, 5, 7, 2), True),
        ("RandomZoom training", RandomZoom(0.3, seed=3), (2, 5, 7, 2), True),
        ("RandomTranslation training", RandomTranslation(0.2, 0.3, seed=4), (2, 5, 7, 2), True),
        (
            "RandomContrast training",
            RandomContrast((0.3, 0.3), value_range=(-5, 5), seed=5),
            (2, 5, 7, 2),
            True,
        ),
        ("RandomBrightness training", RandomBrightness(0.1, value_range=(-5, 5), seed=6), (2, 5, 7, 2), True),
        ("BatchNormalization training", BatchNormalization(), (4, 3, 5, 2), True),
        ("BatchNormalization inference", frozen_stats, (2, 5, 7, 3), False),
    ]


def check_all_layers(seed: int = 0, tolerance: float = TOLERANCE) -> GradCheckReport:
    """Run :func:`check_layer` on every layer type (the ``numvgg gradcheck`` command).

    Returns:
        A :class:`GradCheckReport`; ``report.passed`` tells whether every
        input and weight gradient is within ``tolerance``.
    """
    report = GradCheckReport(tolerance=tolerance)
    for description, layer, shape, training in _layer_cases():
        shape_text = "x".join(map(str, shape))
        report.add(f"{description} on {shape_text}", check_layer(layer, shape, seed=seed, training=training))
    return report
