"""``Model``: a graph of layers, run forward and backward -- the one model class.

Keras' functional API builds it::

    inputs = Input((224, 224, 3))
    x = Conv2D(64, 3, padding="same", activation="relu")(inputs)
    outputs = Dense(1, activation="sigmoid")(GlobalAveragePooling2D()(x))
    model = Model(inputs, outputs)

``Model(inputs, outputs)`` walks the graph back from ``outputs`` and keeps its
nodes in an order in which each node's inputs are ready before it runs
(Keras' order: by depth from the inputs). To run, it opens that graph up into
one flat list of leaf-layer steps, nested models included
(:mod:`~numvgg.models.run_order`). Then, on arrays:

* **forward** is one loop over those steps: look up the step's input arrays,
  call its layer's ``forward``, store its outputs;
* **backward** is the same loop reversed: hand each layer the gradient of its
  outputs, get back the gradient of its inputs, and *add* it to what other
  layers already sent there (a tensor used by two layers receives two
  gradients: the chain rule sums them).

``Sequential`` is this class with a chain for a graph; ``VGG16`` returns one
(Keras calls it ``Functional``). A model is itself a layer, so it can be
called inside another model, and ``trainable``, weights and files reach every
layer inside it. The training API (``compile``, ``fit``, ``train_step``...)
comes from :class:`~numvgg.models.training.Trainer`.
"""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..io.checks import check_finite_weights
from ..layers.base import Layer, format_shape
from ..layers.symbolic import KerasTensor
from .run_order import (
    RunOrder,
    graph_state,
    open_graph,
    release,
    restore_call,
    stash_call,
    step_args,
    store,
    sum_grads,
)
from .training import Trainer


class Model(Trainer, Layer):
    """A graph of layers with Keras' model API.

    Args:
        inputs: an ``Input(...)`` tensor, or a list of them.
        outputs: the tensor(s) computed from them; a list gives a model with
            several outputs (``model(x)`` then returns a list).
        name: Keras' default is ``'functional'``, ``'functional_1'``...

    Shapes: in, the input tensors' shapes; out, the output tensors'.
    Backward caches nothing itself: each layer keeps its own cache, and the
    model remembers which forward filled them (see :meth:`backward`). A layer
    called at several steps (shared) has one cache per call, which the model
    keeps for it (:func:`~numvgg.models.run_order.stash_call`).
    """

    def __new__(cls, *args, **kwargs):
        # Keras: Model(inputs, outputs) *is* a Functional model.
        if cls is Model:
            return super().__new__(Functional)
        return super().__new__(cls)

    # True for Sequential, whose graph is built as layers are added.
    _graph_comes_later = False

    def __init__(self, inputs=None, outputs=None, name: str | None = None, trainable: bool = True, **kwargs):
        dtype = kwargs.pop("dtype", None)
        super().__init__(name=name or self._default_name(), trainable=trainable, dtype=dtype, **kwargs)
        self._nodes: list = []
        self._layers: list[Layer] = []
        self.inputs: list[KerasTensor] = []
        self.outputs: list[KerasTensor] = []
        self._forward_record: tuple | None = None  # (cache serials, graph versions); see backward
        # Per output, the pre-activation of the sigmoid/softmax layer that made it in the
        # last forward (else None): Keras' TF backend computes a cross-entropy from it.
        self.output_logits: list = []
        self._logits_of: list = []
        self._shared_calls: dict = {}  # step -> a shared layer's cache from that call (run_order.py)
        self._graph_version = 0  # counts _set_graph calls: a run order made before is stale
        self._run_order: RunOrder | None = None
        if inputs is None and outputs is None:
            if self._graph_comes_later:
                return  # Sequential fills its graph as layers come
            raise TypeError(
                f"{type(self).__name__}: numvgg models are graphs: build one with "
                f"{type(self).__name__}(inputs, outputs) from numvgg.layers.Input(...), or use "
                "Sequential([...]). (Subclassing with a custom call() is not supported: numvgg "
                "has no autodiff to find that call's backward.)"
            )
        if inputs is None or outputs is None:
            raise ValueError("Model(inputs, outputs) needs both `inputs` and `outputs`.")
        self._set_graph(inputs, outputs)

    def _default_name(self) -> str:
        from ..layers.base import unique_name

        return unique_name("functional")

    # -- building the graph ----------------------------------------------------
    def _set_graph(self, inputs, outputs) -> None:
        """Find the nodes between ``inputs`` and ``outputs``; order them to run."""
        self._single_input = not isinstance(inputs, (list, tuple))
        self._single_output = not isinstance(outputs, (list, tuple))
        self.inputs = [inputs] if self._single_input else list(inputs)
        self.outputs = [outputs] if self._single_output else list(outputs)
        for t in self.inputs + self.outputs:
            if not isinstance(t, KerasTensor):
                raise TypeError(
                    f"Model inputs and outputs must be symbolic tensors (from "
                    f"numvgg.layers.Input and layer calls); got {type(t).__name__}."
                )
        for t in self.inputs:
            if not t.node.layer.is_input_layer:
                raise ValueError(
                    f"Model inputs must come from Input(...); {t.name} was made by "
                    f"layer '{t.node.layer.name}'."
                )
        self._nodes, self._layers = _order_graph(self.inputs, self.outputs)
        self._graph_version += 1
        self._run_order = None  # opened up on the first forward (see the run_order property)
        self._check_names()
        shapes = [t.shape for t in self.inputs]
        self.input_shape = shapes[0] if self._single_input else shapes
        out_shapes = [t.shape for t in self.outputs]
        self.output_shape = out_shapes[0] if self._single_output else out_shapes
        self.built = True
        self._forward_record = None

    def _check_names(self) -> None:
        names = [layer.name for layer in self._layers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(
                f"The name(s) {dupes} are used by more than one layer of model "
                f"'{self.name}'. All layer names should be unique."
            )

    def compute_output_shape(self, input_shape):
        return self.output_shape

    def build_for(self, input_shape, received: str | None = None) -> None:
        if not self.built:
            raise ValueError(f"Model '{self.name}' has no input yet; build it first.")
        from ..layers.base import _shapes_compatible

        if not _shapes_compatible(self.input_shape, input_shape):
            raise ShapeError(
                f"Model '{self.name}' expects input of shape "
                f"{format_shape(self.input_shape)} but received input of shape "
                f"{format_shape(input_shape)}."
            )

    # -- the layers -----------------------------------------------------------
    @property
    def layers(self) -> list[Layer]:
        """The model's layers in Keras' order (a functional model's input layers first)."""
        return list(self._layers)

    def _sublayers(self) -> list:
        return self._layers

    @property
    def input(self):
        """The input tensor (a list for several inputs), as Keras' ``model.input``."""
        return self.inputs[0] if self._single_input else list(self.inputs)

    @property
    def output(self):
        return self.outputs[0] if self._single_output else list(self.outputs)

    @property
    def output_names(self) -> list[str]:
        """The names of the layers that make the outputs, as Keras' ``model.output_names``."""
        return [t.node.layer.name for t in self.outputs]

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """A layer by name or by index in :attr:`layers`, as Keras.

        numvgg also finds a name inside nested models (Keras looks only at
        the model's own layers), so ``model.get_layer('block5_conv1')`` works
        on the transfer-learning model that nests VGG16.
        """
        layers = self.layers
        if index is not None:
            if name is not None:
                raise ValueError("Provide only a layer name or a layer index; received both.")
            if not -len(layers) <= index < len(layers):
                raise ValueError(
                    f"Was asked to retrieve layer at index {index} but model "
                    f"'{self.name}' only has {len(layers)} layers."
                )
            return layers[index]
        if name is None:
            raise ValueError("Provide either a layer name or a layer index.")
        for layer in self._flatten_layers(include_self=False):
            if layer.name == name:
                return layer
        raise ValueError(f"No such layer: '{name}'. Existing layers are: {[l.name for l in layers]}.")

    # -- forward ------------------------------------------------------------
    @property
    def run_order(self) -> RunOrder:
        """The graph as one flat list of leaf-layer steps, nested models opened up
        (see :mod:`numvgg.models.run_order`); made again when a nested graph changes."""
        order = self._run_order
        if order is None or not order.is_current():
            order = self._run_order = open_graph(self)
        return order

    def forward(self, inputs, training: bool = False):
        """Run every leaf layer once, in graph order; returns the output array(s).

        One loop over :attr:`run_order`: a nested model's layers run in this
        loop too, so ``fit`` reaches a layer's ``forward`` through the same
        few frames however deep the model nests. Each layer keeps its cache
        when this call keeps caches (``model(x)`` does; ``predict`` does
        not), so :meth:`backward` can follow.
        """
        self._build_on_first_call(inputs)
        arrays = self._input_arrays(inputs)
        order = self.run_order
        values: list = [None] * order.n_slots  # slot -> array (see run_order.py)
        for s, x in zip(order.input_slots, arrays):
            values[s] = x
        start = 0
        features = self._frozen_features
        if features is not None:
            # compile(cache_frozen_features=True): the frozen bottom's output
            # comes from the cache (see feature_cache.py); only the rest runs.
            values[order.slot_of[features.output.id]] = features(arrays[0])
            start = order.first_step[features.n_nodes]
        keep = self._keep_cache
        serials = {}  # each layer's cache as its step left it (see _record_forward)
        calls: dict = {}  # step -> the cache a shared layer made there
        makes_output = {order.producer[s] for s in order.output_slots}
        logits: dict = {}  # step -> the pre-activation of a sigmoid/softmax output
        try:
            for i in range(start, len(order.steps)):
                step = order.steps[i]
                # The model calls forward itself (layer(x) would only check that
                # x is not symbolic); the flag says whether to keep the cache.
                step.layer._keep_cache = keep
                out = step.layer.forward(step_args(step, values), training=training)
                serials[id(step.layer)] = step.layer.cache_serial
                if i in makes_output:  # the loss may be computed from these logits
                    logits[i] = getattr(step.layer, "last_logits", None)
                if step.layer in order.shared:  # its next call would overwrite this cache
                    stash_call(i, step.layer, calls)
                store(step, values, out)
                release(order, i, values)
        finally:
            for step in order.steps:
                step.layer._keep_cache = True
        self._record_forward(serials, calls)
        results = [values[s] for s in order.output_slots]
        # One entry per output, also when one shared layer makes two outputs.
        self.output_logits = [logits.get(order.producer[s]) for s in order.output_slots]
        self._logits_of = results  # the outputs those logits belong to
        return results[0] if self._single_output else results

    def _build_on_first_call(self, inputs) -> None:
        """A functional model is built when it is made: an unbuilt one cannot run.
        (``Sequential`` overrides this: Keras builds it on its first call.)"""
        if not self.built:
            raise ValueError(f"Model '{self.name}' has no layers to run yet.")

    def _record_forward(self, serials: dict, calls: dict) -> None:
        """Remember which forward each layer's cache belongs to (see :meth:`backward`),
        and keep the caches of shared layers' calls (``calls``, by step) for it.

        ``serials`` holds each layer's ``cache_serial`` right after its step ran, so a
        layer run again *during* the forward (a student trying ``layer(x)`` at a
        breakpoint a few layers later) is caught too. Layers the forward skipped
        (cached frozen features) keep their current serial. Nested models get the
        record too: their layers ran in this forward."""
        order = self.run_order
        serials = {**{id(layer): layer.cache_serial for layer in order.leaves()}, **serials}
        # The graphs that ran: an add/pop on a nested model after this forward
        # leaves caches that belong to another graph than the one backward would walk.
        versions = {id(model): graph_state(model) for model, _ in order.models}
        versions[id(self)] = graph_state(self)
        record = (serials, versions)
        self._forward_record = record
        self._shared_calls = calls
        for model, _ in order.models:
            model._forward_record = record

    def _input_arrays(self, inputs) -> list:
        many = isinstance(inputs, (list, tuple)) and not self._single_input
        arrays = list(inputs) if many else [inputs]
        if len(arrays) != len(self.inputs):
            raise ValueError(
                f"Model '{self.name}' expects {len(self.inputs)} input(s), received {len(arrays)}."
            )
        arrays = [np.asarray(x) for x in arrays]
        for t, x in zip(self.inputs, arrays):
            expected = t.shape
            if x.ndim != len(expected) or any(
                e is not None and e != g for e, g in zip(expected[1:], x.shape[1:])
            ):
                from .checks import explain_input_shape

                why = explain_input_shape(self, x.shape)
                raise ShapeError(
                    f"Model '{self.name}' expects input of shape {format_shape(expected)} "
                    f"(batch first) but received an array of shape {tuple(x.shape)}"
                    + (f": {why}." if why else ".")
                )
        return arrays

    # -- backward -----------------------------------------------------------
    def backward(
        self,
        dout,
        need_input_grad: bool = True,
        need_weight_grads: bool = True,
        from_logits: bool = False,
        train_only: set | None = None,
    ):
        """Backpropagate ``dout = dL/d(output)``; returns ``dL/d(input)``.

        The forward's steps in reverse (:meth:`backward_steps`): each layer
        gets the gradient of its outputs and returns the gradient of its
        inputs, which is *added* to the gradient already sent to those
        tensors (fan-out). Afterwards each layer's ``grads`` holds its weight
        gradients (``get_weights()`` order). A layer called at several steps
        (shared) runs one backward per call, each from that call's own cache,
        and ends with the *sum* of its calls' weight gradients, as in Keras.

        Args:
            dout: an array shaped like the output (a list for several outputs;
                ``None`` for an output that gets no gradient).
            from_logits: ``dout`` is the gradient w.r.t. the *pre-activation*
                of the layer that made the output (the training loop's fused
                sigmoid/softmax + cross-entropy); a list gives one per output.
            train_only: ``None`` computes every gradient. A set of the layers
                being trained (the training step passes it) computes weight
                gradients only for those and sends no gradient to layers that
                lead to none of them. Returns ``None`` then unless
                ``need_input_grad``.

        Raises:
            RuntimeError: a layer's cache does not belong to this model's last
                forward (the layer ran again since, e.g. in ``step()``), or
                there was no complete forward; the message names the layer.
        """
        steps = self.backward_steps(dout, need_input_grad, need_weight_grads, from_logits, train_only)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value

    def backward_steps(
        self,
        dout,
        need_input_grad: bool = True,
        need_weight_grads: bool = True,
        from_logits: bool = False,
        train_only: set | None = None,
    ):
        """:meth:`backward` one leaf layer per ``next()``: yields ``(i, grad_output,
        grad_input)`` after the backward of ``run_order.steps[i]``'s layer; the
        generator returns what ``backward`` returns. ``numvgg.debug.step_backward``
        is this generator with names. At a yield, a shared layer's ``grads`` are
        that call's own; they are added to its other calls' when the generator resumes."""
        self._check_forward_record()
        order = self.run_order
        steps = order.steps
        douts = [dout] if self._single_output else list(dout)
        logits = from_logits if isinstance(from_logits, (list, tuple)) else [from_logits] * len(douts)
        grads: list = [None] * order.n_slots  # slot -> dL/d(that array)
        # dL/d(logits) of the fused outputs, kept apart: the same output may also get
        # an ordinary dL/d(output) (another output or layer reads it), which must
        # still go through the activation's derivative before the two are added.
        logit_grads: dict[int, np.ndarray] = {}
        for s, d, fl in zip(order.output_slots, douts, logits):
            if d is not None:
                if fl:
                    d = np.asarray(d)
                    logit_grads[s] = logit_grads[s] + d if s in logit_grads else d
                else:
                    _accumulate(grads, s, np.asarray(d))
        trains = [_trains(step.layer, train_only, need_weight_grads) for step in steps]
        # Gradient must flow *through* a step when something before it learns
        # (or the caller wants dL/d(input)).
        upstream, flows = [], []  # flows: a gradient is wanted at the step's output
        for i, step in enumerate(steps):
            if step.layer.is_input_layer:
                up = need_input_grad
            else:
                up = any(flows[order.producer[s]] for s in step.reads if order.producer[s] >= 0)
            upstream.append(up)
            flows.append(up or trains[i])
        dinputs = {}
        calls = self._shared_calls
        summed: dict = {}  # shared layer -> its weight gradients, summed over the calls so far
        for i in reversed(range(len(steps))):
            step = steps[i]
            layer = step.layer
            if layer.is_input_layer:
                dinputs[step.writes[0]] = grads[step.writes[0]]
                continue
            d_out = [grads[s] for s in step.writes]
            for s in step.writes:
                grads[s] = None
            kwargs = {}
            if step.writes[0] in logit_grads:  # a sigmoid/softmax output, fused with its loss
                dz = logit_grads[step.writes[0]]
                d_out = [dz if d_out[0] is None else dz + _logits_grad(layer, d_out[0])]
                kwargs["from_logits"] = True
            wants_dx = upstream[i]
            if all(d is None for d in d_out) or not (wants_dx or trains[i]):
                layer.clear_cache()  # nothing learns here or below: no work
                calls.pop(i, None)
                continue
            shared = layer in order.shared
            if shared:
                restore_call(i, layer, calls)  # this call's cache, not the last call's
            d_arg = d_out if step.many_outputs else d_out[0]
            dx = layer.backward(d_arg, need_input_grad=wants_dx, need_weight_grads=trains[i], **kwargs)
            if wants_dx and dx is not None:
                for s, g in zip(step.reads, dx if step.many_inputs else [dx]):
                    _accumulate(grads, s, g)
            yield i, d_arg, dx
            if shared:  # after the yield, so step_backward shows this call's own gradients
                layer.grads = summed[layer] = sum_grads(summed.get(layer), layer.grads)
        if not need_input_grad:
            return None
        result = [dinputs.get(s) for s in order.input_slots]
        return result[0] if self._single_input else result

    def _check_forward_record(self) -> None:
        record = self._forward_record
        if record is None:
            raise RuntimeError(
                f"Model '{self.name}': backward() needs a complete forward first "
                "(model(x) or model.forward(x))."
            )
        serials, versions = record
        order = self.run_order
        for model in (self, *(m for m, _ in order.models)):
            if versions.get(id(model)) != graph_state(model):
                raise RuntimeError(
                    f"Model '{self.name}': the layers of model '{model.name}' changed (add, pop "
                    "or a new graph) after the last forward, so the layers' caches belong to "
                    "another graph than the one backward would walk. Run the model forward "
                    "again before backward()."
                )
        for layer in order.leaves():  # input layers keep no cache
            if serials.get(id(layer)) != layer.cache_serial:
                raise RuntimeError(
                    f"Model '{self.name}': layer '{layer.name}' ran again after the model's last "
                    "forward (in step(), a direct layer(x) call, or another model sharing it), so "
                    "its cache belongs to another forward pass and the gradients would mix two "
                    "inputs. Run the model forward again before backward()."
                )

    def clear_cache(self) -> None:
        for layer in self._sublayers():
            layer.clear_cache()
        self._shared_calls = {}

    # -- weights ------------------------------------------------------------------
    @property
    def params(self):
        """All weights of all layers, keyed ``"layer_name/weight_name"`` (read only)."""
        return {f"{leaf.name}/{k}": v for leaf in self.leaf_layers() for k, v in leaf.params.items()}

    @params.setter
    def params(self, value):
        # Layer.__init__ assigns an empty dict; a model's weights live in its layers.
        if value:
            raise AttributeError("A model's weights live in its layers.")

    @property
    def grads(self):
        return [g for layer in self._sublayers() for g in layer.grads]

    @grads.setter
    def grads(self, value):
        if value:
            raise AttributeError("A model's gradients live in its layers.")

    @property
    def weights(self):
        return [w for layer in self._sublayers() for w in layer.weights]

    @property
    def weight_names(self):
        return [f"{leaf.name}/{k}" for leaf in self.leaf_layers() for k in leaf.params]

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        # As in Keras: setting it on a model sets it on every layer inside.
        self._trainable = bool(value)
        for layer in self._sublayers():
            layer.trainable = value

    @property
    def trainable_weights(self):
        if not self.trainable:
            return []
        return [w for layer in self._sublayers() for w in layer.trainable_weights]

    @property
    def non_trainable_weights(self):
        if not self.trainable:
            return self.weights
        return [w for layer in self._sublayers() for w in layer.non_trainable_weights]

    def trainable_leaves(self) -> list[Layer]:
        """The leaf layers an optimizer would update now (trainable, and every
        model around them trainable too)."""
        leaves = (leaf for leaf, ok in self._leaves_trainable() if ok and leaf.trainable_weights)
        return list(dict.fromkeys(leaves))

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights) -> None:
        """Assign all weights in ``get_weights()`` order; every count and shape is
        checked before anything is written, so a bad list changes nothing."""
        weights = list(weights)
        named = [(leaf, k) for leaf in self.leaf_layers() for k in leaf.params]
        if len(weights) != len(named):
            raise ShapeError(
                f"Model '{self.name}' has {len(named)} weight arrays but was given {len(weights)}."
            )
        for (leaf, k), new in zip(named, weights):
            if np.shape(new) != leaf.params[k].shape:
                raise ShapeError(
                    f"Layer '{leaf.name}', weight '{k}': expected shape "
                    f"{leaf.params[k].shape}, received {np.shape(new)}."
                )
            check_finite_weights(leaf.name, k, new, "set_weights()")  # NaN/inf, or past float32
        for (leaf, k), new in zip(named, weights):
            leaf.params[k][...] = new
        self._frozen_features = None  # cached features came from the old weights

    def count_params(self) -> int:
        return int(sum(w.size for w in self.weights))

    # -- summary, files ----------------------------------------------------------
    def summary(self, print_fn=print, line_length=None, show_trainable: bool = False):
        """Print Keras' table: layer (type), output shape, param # (and, for a
        graph that is not a chain, what each layer is connected to; with
        ``show_trainable=True``, Y/N/- per layer as Keras)."""
        from .summary import format_summary

        text = format_summary(self, line_length=line_length, show_trainable=show_trainable)
        if print_fn is None:
            return text
        print_fn(text)

    def load_weights(self, filepath, by_name: bool = False, skip_mismatch: bool = False):
        """Load a Keras weights file (any of the three layouts); all or nothing."""
        from ..io.weights import load_weights

        load_weights(self, filepath, by_name=by_name, skip_mismatch=skip_mismatch)
        self._frozen_features = None  # cached features came from the old weights

    def save_weights(self, filepath, overwrite: bool = True):
        """Write ``.weights.h5`` (Keras 3 layout) or another ``.h5`` (Keras' legacy layout)."""
        import os

        from ..io.weights import save_weights

        if not overwrite and os.path.exists(filepath):
            raise FileExistsError(f"{filepath} exists and overwrite=False")
        save_weights(self, filepath)

    def save(self, filepath, overwrite: bool = True) -> None:
        """Write the whole model (architecture, weights, compile config) to a
        Keras 3 ``.keras`` file, atomically; ``keras.models.load_model`` reads it
        (see :mod:`numvgg.saving.keras_file` for what is stored)."""
        from ..saving import save_model

        save_model(self, filepath, overwrite=overwrite)

    def get_config(self):
        """Keras' config of this model, the ``config`` part of ``config.json`` in a
        ``.keras`` file: every layer's config and, for a functional model, the
        calls that connect them (see :mod:`numvgg.saving.serialization`)."""
        from ..saving.serialization import serialize_layer

        return serialize_layer(self)["config"]

    @classmethod
    def from_config(cls, config: dict):
        """A new model with fresh weights from :meth:`get_config`'s dict (Keras' or numvgg's)."""
        from ..saving import serialization

        if cls._graph_comes_later:  # a Sequential
            return serialization.sequential_from_config(config)
        return serialization.functional_from_config(config)


class Functional(Model):
    """A model built from ``Input`` tensors and layer calls: what ``Model(inputs, outputs)``
    returns, as in Keras (``summary()`` shows nested ones as ``(Functional)``, and
    ``.weights.h5`` files name their group ``functional``)."""


def _trains(layer, train_only, need_weight_grads) -> bool:
    """Whether the leaf ``layer`` holds weights being trained now."""
    if not need_weight_grads or layer.is_input_layer:
        return False
    return bool(layer.params) if train_only is None else layer in train_only


def _logits_grad(layer, dout):
    """``dL/dz`` from ``dL/d(output)`` for a sigmoid/softmax output fused with its loss
    that something else reads too: the activation's derivative at the last forward's logits."""
    _, cache = layer._act_forward(layer.last_logits)
    return layer._act_backward(dout, cache)


def _accumulate(grads: list, slot: int, g) -> None:
    grads[slot] = g if grads[slot] is None else grads[slot] + g


def _order_graph(inputs, outputs):
    """The nodes from ``inputs`` to ``outputs`` in an order they can run, and the
    layers in Keras' order (by depth from the inputs, then by discovery).

    Depth-first from the outputs, a node is listed after the nodes that feed it
    (a topological order); depth counts steps back from the outputs.
    """
    order: list = []
    visiting: set = set()
    done: set = set()
    input_ids = {t.id for t in inputs}

    def visit(node):
        if id(node) in done:
            return
        if id(node) in visiting:
            raise ValueError(f"The graph has a cycle through layer '{node.layer.name}'.")
        visiting.add(id(node))
        for t in node.inputs:
            if t.node is None:
                raise ValueError(f"Tensor {t.name} does not come from an Input.")
            visit(t.node)
        visiting.discard(id(node))
        done.add(id(node))
        order.append(node)

    for t in outputs:
        visit(t.node)
    for node in order:
        if node.layer.is_input_layer and node.outputs[0].id not in input_ids:
            raise ValueError(
                f"Graph disconnected: cannot get the value of tensor {node.outputs[0].name} "
                f"(input layer '{node.layer.name}'), which the outputs need; it is not among the "
                f"model's inputs {[t.name for t in inputs]}."
            )
    depth = {id(node): 0 for node in order}
    for node in reversed(order):
        for parent in node.parents:
            depth[id(parent)] = max(depth[id(parent)], depth[id(node)] + 1)
    index = {id(node): i for i, node in enumerate(order)}
    nodes = sorted(order, key=lambda n: (-depth[id(n)], index[id(n)]))
    layer_depth: dict = {}
    layer_index: dict = {}
    for node in order:
        layer = node.layer
        layer_depth[layer] = max(layer_depth.get(layer, 0), depth[id(node)])
        layer_index.setdefault(layer, index[id(node)])
    layers = sorted(layer_depth, key=lambda l: (-layer_depth[l], layer_index[l]))
    return nodes, layers
