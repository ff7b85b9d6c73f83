"""Look inside a model while it runs: record every layer's tensors, or step one layer at a time.

Two ways in, for two kinds of question.

**"What did every layer see?"** -- :func:`trace` records, by Keras layer
name, what each leaf layer received and returned, and after ``backward`` the
gradients that passed through it::

    from numvgg.debug.trace import trace
    with trace(model) as t:
        y = model.forward(x)
        model.backward(dy)
    print(t)                                # one table row per tensor: shape, mean, std, ...
    t["block3_conv2"].output                # (N, H/4, W/4, 256)
    t["block3_conv2"].weight_grads["kernel"]
    t["block3_conv2"].pre_activation        # conv + bias before the fused ReLU
    t["vgg16/block3_conv2"]                 # the full path inside a nested model

While the ``with`` block runs, each leaf layer's ``forward`` and ``backward``
are replaced by recording wrappers, set as *instance* attributes; on exit the
originals come back (even after an exception). Outside a ``with`` block
nothing is wrapped, so tracing costs nothing unless it is asked for.

**"Let me stop at block3_conv2."** -- :func:`step` is a generator that runs one
leaf layer per ``next()``, so a student can put a breakpoint in the loop (or
in the layer's op) and look at every local::

    for s in step(model, x):
        if s.name == "block3_conv2":
            breakpoint()                    # s.input, s.output, s.layer are all here
    for b in step_backward(model, dy):      # after a full forward, in reverse order
        print(b.name, b.grad_input.shape)

Names: a leaf is named by its path below the model it was traced from,
``"block1_conv1"`` for VGG16 itself, ``"vgg16/block1_conv1"`` when VGG16 is
nested in the transfer-learning ``Sequential``. Lookups accept the plain
layer name as long as it is unique.

Only *leaf* layers are recorded (the ones that compute); a nested model's
input and output are its first leaf's input and its last leaf's output.

A layer called at several places (a siamese tower's layers, a ``Dense``
applied twice) has one record, holding its *last* call's tensors: forward,
the last call made; backward, which runs in reverse, the *first* forward
call. Its ``weight_grads`` there are that call's share; ``layer.grads`` holds
the sum over the calls, which the optimizer applies. :func:`step` and
:func:`step_backward` show every call, one step each.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ..errors import NumvggError
from ..layers.base import format_shape
from ..models.run_order import release, stash_call, step_args, store

#: Everything a trace can record about one layer.
TENSORS = ("input", "pre_activation", "output", "grad_output", "grad_input", "weight_grads")
#: Shorthands accepted in ``record=``.
GROUPS = {
    "all": TENSORS,
    "activations": ("input", "output"),
    "grads": ("grad_output", "grad_input", "weight_grads"),
}


class TraceKeyError(NumvggError, KeyError):
    """A layer name that is not in the trace, or that matches several layers."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""


# -- statistics -----------------------------------------------------------------------
class TensorStats(NamedTuple):
    """Summary of one tensor: what a student looks at first to spot a problem
    (dead ReLUs: ``zeros`` near 1; exploding values: ``max``; vanishing
    gradients: ``std`` shrinking layer after layer)."""

    shape: tuple
    dtype: str
    mean: float
    std: float
    min: float
    max: float
    zeros: float  # fraction of elements exactly 0, in [0, 1]


def tensor_stats(a) -> TensorStats:
    """Shape, dtype, mean, standard deviation, min, max and fraction of zeros of ``a``.

    Sums run in float64 so the mean of a large float32 activation is exact
    to float32 precision. An empty array gives NaN statistics.
    """
    a = np.asarray(a)
    if a.size == 0:
        nan = float("nan")
        return TensorStats(tuple(a.shape), a.dtype.name, nan, nan, nan, nan, nan)
    return TensorStats(
        shape=tuple(a.shape),
        dtype=a.dtype.name,
        mean=float(np.mean(a, dtype=np.float64)),
        std=float(np.std(a, dtype=np.float64)),
        min=float(np.min(a)),
        max=float(np.max(a)),
        zeros=float(np.count_nonzero(a == 0) / a.size),
    )


# -- one layer's record -----------------------------------------------------------------
@dataclass
class LayerRecord:
    """What one leaf layer saw during a trace (the *last* call, if it ran several times).

    Attributes:
        name: the path of the layer, e.g. ``'vgg16/block3_conv2'``.
        layer: the layer object itself.
        index: position among the model's leaf layers (0 = first layer).
        input: ``x`` given to ``forward``, e.g. ``(N, H, W, C)``; a list of
            arrays for a merge layer (``Concatenate``, ``Add``...), whose
            ``grad_input`` is a list too. The table then shows one row per
            array: ``input[0]``, ``input[1]``...
        pre_activation: for a layer with a fused activation (``Conv2D`` or
            ``Dense`` with ``activation='relu'``, ...; and ``Activation``
            itself), the tensor ``z`` the activation received, e.g. the conv
            plus bias before the ReLU. A copy: a fused ReLU overwrites ``z``
            in place. ``None`` for layers whose activation is linear or that
            have none (their output is already the pre-activation).
        output: what ``forward`` returned.
        grad_output: ``dL/d(output)`` given to ``backward`` (the upstream
            gradient). When ``from_logits`` is True it is ``dL/dz`` for the
            *pre-activation* ``z`` instead (the fused softmax/sigmoid + cross
            entropy of the training loop).
        grad_input: ``dL/d(input)`` returned by ``backward`` (``None`` when the
            caller did not need it, e.g. the first layer during training).
        weight_grads: ``{'kernel': dL/dkernel, 'bias': dL/dbias}`` after
            ``backward`` (empty for layers without weights, or when the caller
            skipped weight gradients).
        n_forward / n_backward: how many times each ran inside the trace.
        stats: :class:`TensorStats` of each recorded tensor, keyed like the
            table (``'output'``, ``'grad kernel'``, ...). With
            ``stats_only=True`` the arrays are dropped and only these remain.
    """

    name: str
    layer: Any
    index: int
    input: np.ndarray | list | None = None
    pre_activation: np.ndarray | None = None
    output: np.ndarray | None = None
    grad_output: np.ndarray | None = None
    grad_input: np.ndarray | list | None = None
    weight_grads: dict = field(default_factory=dict)
    from_logits: bool = False
    n_forward: int = 0
    n_backward: int = 0
    stats: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        kept = ", ".join(f"{k}={v.shape}" for k, v in self.stats.items())
        return (
            f"<LayerRecord {self.name!r} #{self.index} {type(self.layer).__name__}: {kept or 'nothing yet'}>"
        )


def _is_container(layer) -> bool:
    return bool(layer._sublayers())


def _leaf_paths(model):
    """``(path, leaf)`` for every leaf layer under ``model``, in forward order.

    The model passed in is the root: its own name is not part of the paths.
    A single layer passed instead of a model is its own only leaf. Input
    layers are left out (they compute nothing); a layer called twice is listed once.
    """
    if not _is_container(model):
        yield model.name, model
        return
    seen = set()
    for s in model.run_order.steps:
        if not s.layer.is_input_layer and id(s.layer) not in seen:
            seen.add(id(s.layer))
            yield s.path, s.layer


def resolve_name(names, wanted: str) -> str:
    """The one path among ``names`` that ``wanted`` designates.

    ``wanted`` may be a full path (``'vgg16/block3_conv2'``), the plain layer
    name (``'block3_conv2'``) or any trailing part of a path; it must match
    exactly one layer.

    Raises:
        TraceKeyError: no layer or several layers match; the message lists them.
    """
    names = list(names)
    if wanted in names:
        return wanted
    matches = [n for n in names if n.endswith("/" + wanted)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise TraceKeyError(f"No layer named '{wanted}'. Layers are: {names}")
    raise TraceKeyError(f"'{wanted}' is ambiguous: it names {matches}. Use the full path.")


# -- the trace ------------------------------------------------------------------------------
class Trace:
    """Records the tensors of every leaf layer of ``model`` while active.

    Use it through :func:`trace` as a context manager (or call ``start()`` and
    ``stop()``). After the block, the records stay readable:
    ``t['block1_conv1']`` is a :class:`LayerRecord`, ``str(t)`` a table.

    Args:
        model: a ``Sequential`` (nested models are walked) or a single layer.
        record: which tensors to keep, any of ``'input'``, ``'pre_activation'``,
            ``'output'``, ``'grad_output'``, ``'grad_input'``, ``'weight_grads'``,
            or the groups ``'activations'`` (input and output), ``'grads'``,
            ``'all'`` (the default: everything, ``'pre_activation'`` included).
        stats_only: keep only :class:`TensorStats`, not the arrays: the
            table still works and memory stays flat, even at 224x224.

    Arrays are kept by reference, not copied: numvgg layers never change an
    array in place, so a recorded output is exactly what the next layer got.
    (Do not modify the input array you pass in while you still need the trace.)
    """

    def __init__(self, model, record=("all",), stats_only: bool = False):
        if isinstance(record, str):
            record = (record,)
        wanted = []
        for item in record:
            if item in GROUPS:
                wanted.extend(GROUPS[item])
            elif item in TENSORS:
                wanted.append(item)
            else:
                raise ValueError(
                    f"Unknown item {item!r} in record=; choose from {list(TENSORS) + list(GROUPS)}"
                )
        self.model = model
        self.record = frozenset(wanted)
        self.stats_only = bool(stats_only)
        self.records: dict[str, LayerRecord] = {}
        for index, (path, leaf) in enumerate(_leaf_paths(model)):
            self.records[path] = LayerRecord(path, leaf, index)
        self._saved: list[tuple[Any, str, Any]] | None = None

    # -- installing and removing the wrappers -----------------------------------------
    def start(self) -> Trace:
        """Wrap every leaf's ``forward`` and ``backward`` (instance attributes)."""
        if self._saved is not None:
            raise RuntimeError("This trace is already active.")
        self._saved = []
        for rec in self.records.values():
            methods = ("forward", "backward")
            if "pre_activation" in self.record and hasattr(rec.layer, "_activate"):
                methods += ("_activate",)
            for method in methods:
                # An instance attribute may already be there (another trace): keep it to restore.
                previous = rec.layer.__dict__.get(method, _MISSING)
                self._saved.append((rec.layer, method, previous))
                wrapper = {
                    "forward": self._wrap_forward,
                    "backward": self._wrap_backward,
                    "_activate": self._wrap_activate,
                }[method]
                setattr(rec.layer, method, wrapper(rec, getattr(rec.layer, method)))
        return self

    def stop(self) -> None:
        """Put the layers' own methods back. Safe to call twice."""
        if self._saved is None:
            return
        for layer, method, previous in reversed(self._saved):
            if previous is _MISSING:
                layer.__dict__.pop(method, None)
            else:
                setattr(layer, method, previous)
        self._saved = None

    @property
    def active(self) -> bool:
        return self._saved is not None

    def __enter__(self) -> Trace:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _keep(self, rec: LayerRecord, key: str, stat_key: str, value) -> None:
        for k in [k for k in rec.stats if k == stat_key or k.startswith(stat_key + "[")]:
            del rec.stats[k]  # last call only
        if value is None:
            setattr(rec, key, None)
            return
        if isinstance(value, (list, tuple)):  # a merge layer's inputs: one entry per array
            value = [np.asarray(v) for v in value]
            for i, v in enumerate(value):
                rec.stats[f"{stat_key}[{i}]"] = tensor_stats(v)
        else:
            rec.stats[stat_key] = tensor_stats(value)
        if not self.stats_only:
            setattr(rec, key, value)

    def _wrap_forward(self, rec: LayerRecord, forward):
        def traced_forward(x, *args, **kwargs):
            out = forward(x, *args, **kwargs)
            rec.n_forward += 1
            if "input" in self.record:
                self._keep(rec, "input", "input", x)
            if "output" in self.record:
                self._keep(rec, "output", "output", out)
            return out

        traced_forward.__wrapped__ = forward
        return traced_forward

    def _wrap_activate(self, rec: LayerRecord, activate):
        """Keep ``z`` as the fused activation receives it (copied first: a fused
        ReLU writes its output into ``z``)."""

        def traced_activate(z, *args, **kwargs):
            if rec.layer.activation_name == "linear":
                self._keep(rec, "pre_activation", "pre_activation", None)
            else:
                # stats_only: the statistics are taken right here, before the ReLU runs.
                kept = z if self.stats_only else np.array(z, copy=True)
                self._keep(rec, "pre_activation", "pre_activation", kept)
            return activate(z, *args, **kwargs)

        traced_activate.__wrapped__ = activate
        return traced_activate

    def _wrap_backward(self, rec: LayerRecord, backward):
        def traced_backward(dout, *args, **kwargs):
            dx = backward(dout, *args, **kwargs)
            rec.n_backward += 1
            rec.from_logits = bool(kwargs.get("from_logits", False))
            if "grad_output" in self.record:
                self._keep(rec, "grad_output", "grad_output", dout)
            if "grad_input" in self.record:
                self._keep(rec, "grad_input", "grad_input", dx)
            if "weight_grads" in self.record:
                for key in [k for k in rec.stats if k.startswith("grad ")]:
                    del rec.stats[key]  # last call only
                grads = {name: g for name, g in zip(rec.layer.weight_names, rec.layer.grads) if g is not None}
                for name, g in grads.items():
                    rec.stats[f"grad {name}"] = tensor_stats(g)
                if not self.stats_only:
                    rec.weight_grads = grads
            return dx

        traced_backward.__wrapped__ = backward
        return traced_backward

    # -- reading the records ----------------------------------------------------------
    def names(self) -> list[str]:
        """Every leaf path, in forward order."""
        return list(self.records)

    def __getitem__(self, name: str) -> LayerRecord:
        """The record of a layer by path or plain name (``'block3_conv2'``)."""
        return self.records[resolve_name(self.records, name)]

    def __contains__(self, name: str) -> bool:
        try:
            resolve_name(self.records, name)
        except TraceKeyError:
            return False
        return True

    def __iter__(self) -> Iterator[LayerRecord]:
        return iter(self.records.values())

    def __len__(self) -> int:
        return len(self.records)

    def rows(self, compact: bool = False):
        """``(layer path, tensor, TensorStats)`` for every recorded tensor.

        Layers in forward order; within a layer: input, pre-activation, output, upstream
        gradient, input gradient, then weight gradients in ``get_weights()``
        order (a merge layer has ``input[0]``, ``input[1]``... and
        ``grad_input[0]``..., one per array). ``compact=True`` leaves out an ``input`` equal to the previous
        layer's ``output`` and a ``grad_input`` equal to the previous layer's
        ``grad_output`` (the same array, seen from the other side).
        """
        previous = None
        for rec in self.records.values():
            keys = [
                k
                for base in ("input", "pre_activation", "output", "grad_output", "grad_input")
                for k in rec.stats
                if k == base or k.startswith(base + "[")  # input[0], input[1]: a merge layer's
            ]
            keys += [f"grad {w}" for w in rec.layer.weight_names if f"grad {w}" in rec.stats]
            for key in keys:
                if compact and previous is not None:
                    twin = {"input": "output", "grad_input": "grad_output"}.get(key)
                    if twin and previous.stats.get(twin) == rec.stats[key]:
                        continue
                yield rec.name, key, rec.stats[key]
            previous = rec

    def table(self, compact: bool = True) -> str:
        """The readable table ``str(trace)`` prints: one row per tensor with its
        shape, mean, std, min, max and fraction of zeros. See :meth:`rows` for
        ``compact``."""
        rows = list(self.rows(compact=compact))
        if not rows:
            return (
                f"Trace of '{getattr(self.model, 'name', self.model)}': nothing recorded yet "
                "(run model.forward / model.backward inside the `with` block)."
            )
        labels = {
            "input": "input",
            "pre_activation": "pre-activation",
            "output": "output",
            "grad_output": "dL/d output",
            "grad_input": "dL/d input",
        }
        shown = []
        for path, key, s in rows:
            base, _, part = key.partition("[")  # input[1] -> input, 1]
            label = labels.get(base, f"dL/d {key[5:]}" if key.startswith("grad ") else base)
            label += f"[{part}" if part else ""
            if key == "grad_output" and self.records[path].from_logits:
                label = "dL/d logits"
            shown.append((path, label, format_shape(s.shape), s))
        name_w = max(len("layer"), *(len(p) for p, *_ in shown))
        label_w = max(len("tensor"), *(len(l) for _, l, *_ in shown))
        shape_w = max(len("shape"), *(len(sh) for _, _, sh, _ in shown))
        header = (
            f"{'layer':<{name_w}}  {'tensor':<{label_w}}  {'shape':<{shape_w}}  "
            f"{'mean':>10}  {'std':>10}  {'min':>10}  {'max':>10}  {'zeros':>6}"
        )
        lines = [header, "-" * len(header)]
        previous = None
        for path, label, shape, s in shown:
            # The layer name once per block of rows, so the eye can follow the layers.
            name = path if path != previous else ""
            previous = path
            lines.append(
                f"{name:<{name_w}}  {label:<{label_w}}  {shape:<{shape_w}}  "
                f"{s.mean:>10.3g}  {s.std:>10.3g}  {s.min:>10.3g}  {s.max:>10.3g}  "
                f"{s.zeros:>6.1%}"
            )
        if compact:
            lines.append(
                "(an input equal to the previous layer's output, and a dL/d input equal to "
                "the previous layer's dL/d output, are not repeated; table(compact=False) "
                "shows them)"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        state = "active" if self.active else "inactive"
        return (
            f"<Trace of {getattr(self.model, 'name', '?')!r}: {len(self.records)} layers, "
            f"recording {sorted(self.record)}, {state}>"
        )


_MISSING = object()


def trace(model, record=("all",), stats_only: bool = False) -> Trace:
    """Record every leaf layer's tensors while a ``with`` block runs.

    Example::

        with trace(model, record=("output", "grads")) as t:
            model.forward(x)
            model.backward(dy)
        print(t)
        t["block3_conv2"].grad_output      # dL/d(output of block3_conv2)

    See :class:`Trace` for ``record`` and ``stats_only``.
    """
    return Trace(model, record=record, stats_only=stats_only)


# -- stepping ---------------------------------------------------------------------------------
class Step(NamedTuple):
    """One leaf layer's forward, as :func:`step` yields it."""

    name: str  # path, e.g. 'block3_conv2' or 'vgg16/block3_conv2'
    layer: Any
    input: np.ndarray  # what the layer received
    output: np.ndarray  # what it returned
    index: int  # 0 for the first leaf layer


class BackwardStep(NamedTuple):
    """One leaf layer's backward, as :func:`step_backward` yields it."""

    name: str
    layer: Any
    grad_output: np.ndarray  # dL/d(output) the layer received (dL/d logits with from_logits)
    grad_input: np.ndarray  # dL/d(input) it returned
    weight_grads: dict  # {'kernel': ..., 'bias': ...}; {} for layers without weights
    # (a shared layer's: this call's share; layer.grads ends with the sum over calls)
    index: int  # same numbering as Step.index


def step(model, x, training: bool = False) -> Iterator[Step]:
    """Run ``model`` forward one leaf layer per ``next()``.

    The same computation as ``model(x, training=training)`` -- each layer is
    called exactly as the model's forward calls it and keeps its cache -- so
    once every step has run, :func:`step_backward` (or ``model.backward``)
    can follow. Broken off early, the model knows its caches are incomplete
    and a ``backward`` raises instead of mixing two forwards. The generator's
    return value (in ``StopIteration.value``) is the model's output.

    Args:
        model: a model (nested models are walked, branches followed) or a single layer.
        x: the model input, e.g. ``(N, H, W, 3)`` after ``preprocess_input``.
        training: passed to every layer (Dropout is active only then).
    Yields:
        :class:`Step` ``(name, layer, input, output, index)``.
    """
    if not _is_container(model):
        out = model(x, training=training)
        yield Step(model.name, model, np.asarray(x), out, 0)
        return out
    model._build_on_first_call(x)
    order = model.run_order  # the steps Model.forward runs (numvgg/models/run_order.py)
    values: list = [None] * order.n_slots
    for s, a in zip(order.input_slots, model._input_arrays(x)):
        values[s] = a
    index = 0
    serials = {}  # each layer's cache as its step left it: a layer run again later is caught
    calls: dict = {}  # a shared layer's cache per call, as Model.forward keeps them
    for i, s in enumerate(order.steps):
        args = step_args(s, values)
        out = s.layer.forward(args, training=training)  # keeps its cache, as model(x)
        serials[id(s.layer)] = s.layer.cache_serial
        if s.layer in order.shared:
            stash_call(i, s.layer, calls)
        store(s, values, out)
        release(order, i, values)
        if not s.layer.is_input_layer:
            yield Step(s.path, s.layer, args, out, index)
            index += 1
    model._record_forward(serials, calls)
    results = [values[s] for s in order.output_slots]
    return results[0] if model._single_output else results


def step_backward(model, dout, from_logits: bool = False) -> Iterator[BackwardStep]:
    """Backpropagate ``dout`` one leaf layer per ``next()``, last layer first.

    Call it after a complete forward (``model(x)`` or :func:`step` run to
    the end); it computes what ``model.backward(dout, from_logits=...)``
    computes (gradients of tensors used twice are summed), and the generator
    returns ``dL/d(model input)``. A layer called at several places yields one
    step per call, each with that call's own gradients; once the generator is
    done, the layer's ``grads`` hold their sum.

    Args:
        dout: ``dL/d(model output)``, shaped like the output.
        from_logits: ``dout`` is the gradient w.r.t. the pre-activation of the
            layer that made the output (see ``Model.backward``).
    Yields:
        :class:`BackwardStep` ``(name, layer, grad_output, grad_input, weight_grads, index)``.
    """
    if not _is_container(model):
        kwargs = {"from_logits": True} if from_logits else {}
        dx = model.backward(np.asarray(dout), **kwargs)
        yield BackwardStep(
            model.name, model, np.asarray(dout), dx, dict(zip(model.weight_names, model.grads)), 0
        )
        return dx
    steps = model.run_order.steps
    numbers, n = {}, 0  # Step.index of each step, as step() counts them
    for i, s in enumerate(steps):
        if not s.layer.is_input_layer:
            numbers[i], n = n, n + 1
    backward = model.backward_steps(dout, from_logits=from_logits)  # Model.backward, one layer a time
    while True:
        try:
            i, grad_output, grad_input = next(backward)
        except StopIteration as done:
            return done.value
        layer = steps[i].layer
        yield BackwardStep(
            steps[i].path,
            layer,
            grad_output,
            grad_input,
            dict(zip(layer.weight_names, layer.grads)),
            numbers[i],
        )


def layer_output(model, x, name: str, training: bool = False) -> np.ndarray:
    """The output of one layer (by path or plain name) for input ``x``.

    Runs only the layers up to and including it, and drops every cache on
    the way, so memory holds one activation at a time (like ``model(x)``).

    Raises:
        TraceKeyError: no such layer (the message lists the layers).
    """
    target = resolve_name([path for path, _ in _leaf_paths(model)], name)
    for s in step(model, x, training=training):
        s.layer.clear_cache()
        if s.name == target:
            return s.output
    raise AssertionError("unreachable: resolve_name found the layer")  # pragma: no cover
