"""The order a model runs its leaf layers in: its graph with nested models opened up.

A model's graph (``model._nodes``) may hold other models: the transfer-learning
recipe puts VGG16, itself a model of 19 layers, inside a ``Sequential``. Running
the graph node by node would call the nested model, which would run its own
nodes: two more Python frames per level of nesting between ``fit`` and a
layer's op, and a student stepping through passes through each model's loop.

Instead a model opens its graph up once into a flat list of :class:`Step`
s, one per call of a *leaf* layer (a layer that computes: not a model). The
arrays a forward produces live in numbered *slots*; each step reads some slots
and writes others. A nested model's input tensors take the slots of what the
outer graph feeds it, and the outer node's outputs take the slots of the
nested model's outputs, so values pass through a nested model without a copy
and without its loop.

Three things walk this one list: ``Model.forward`` (in order),
``Model.backward`` (reversed) and ``numvgg.debug.step`` (one step per
``next()``), so the three can never disagree about what runs when.
"""

from __future__ import annotations

import itertools
from typing import Any, NamedTuple


class Step(NamedTuple):
    """One call of a leaf layer in the forward pass.

    Attributes:
        layer: the leaf layer (an ``InputLayer`` for the model's own inputs:
            it reads and writes its input's slot, casting it to its dtype).
        reads: the slots of its inputs, in order.
        writes: the slots of its outputs, in order.
        many_inputs: it takes a list (a merge layer such as ``Concatenate``).
        many_outputs: it returns a list.
        path: ``'vgg16/block1_conv1'``: the names of the nested models on the
            way, then the layer's (the root model's own name left out).
        node: the index, in the root model's ``_nodes``, of the node this step
            belongs to (a nested model's steps all belong to its one node).
    """

    layer: Any
    reads: tuple
    writes: tuple
    many_inputs: bool
    many_outputs: bool
    path: str
    node: int


class RunOrder(NamedTuple):
    """A model's graph as a flat list of leaf-layer steps (see the module docstring).

    Attributes:
        steps: every leaf call, in an order where each step's inputs are ready.
        n_slots: how many slots a forward needs.
        input_slots / output_slots: the slots of the model's inputs and outputs.
        frees: per step, the slots no later step reads (let go after it runs,
            so memory holds only the activations still needed).
        producer: the step that writes each slot (``-1`` for none).
        first_step: per node of the root graph, the index of its first step
            (one more entry at the end: ``len(steps)``).
        slot_of: the slot of each tensor of the root graph, by tensor id.
        models: the nested models (an empty one too), with the :func:`graph_state` used
            (a change to one of them makes the model open its graph again).
        shared: leaf layers called at more than one step (their one cache
            cannot serve two backward passes: the model keeps each call's
            cache apart, see :func:`stash_call`).
    """

    steps: list
    n_slots: int
    input_slots: list
    output_slots: list
    frees: list
    producer: list
    first_step: list
    slot_of: dict
    models: tuple
    shared: frozenset

    def is_current(self) -> bool:
        """False once a nested model's graph was set again (``add``, ``pop``, ``build``)."""
        return all(graph_state(model) == state for model, state in self.models)

    def leaves(self) -> list:
        """The distinct leaf layers, in the order they first run."""
        return list(dict.fromkeys(step.layer for step in self.steps if not step.layer.is_input_layer))


def graph_state(model) -> tuple:
    """What a run order made from ``model``'s graph depends on: the graph's version,
    and whether there is a graph at all (popping a ``Sequential``'s last layer
    leaves it unbuilt without setting a new graph)."""
    return (model._graph_version, model.built)


def _is_model(layer) -> bool:
    return hasattr(layer, "_nodes") and bool(layer._sublayers())


def open_graph(model) -> RunOrder:
    """``model``'s graph with every nested model opened up (see the module docstring)."""
    steps: list[Step] = []
    new_slot = itertools.count()
    models: list = []
    root_slots: dict = {}

    def visit(container, feed: list, prefix: str, root_node: int | None) -> list:
        """Add ``container``'s steps; ``feed`` holds the slots of its inputs.
        Returns the slots of its outputs."""
        slot_of = {t.id: s for t, s in zip(container.inputs, feed)}
        for index, node in enumerate(container._nodes):
            layer = node.layer
            at = index if root_node is None else root_node
            if layer.is_input_layer:
                if root_node is None:  # the root's own input: cast it to the input's dtype
                    s = slot_of[node.outputs[0].id]
                    steps.append(Step(layer, (s,), (s,), False, False, prefix + layer.name, at))
                continue  # a nested model's input is the slot fed to it
            reads = [slot_of[t.id] for t in node.inputs]
            if hasattr(layer, "_nodes"):  # a model, even one left empty by pop(): watch its graph
                models.append((layer, graph_state(layer)))
            if _is_model(layer):
                outs = visit(layer, reads, f"{prefix}{layer.name}/", at)
            else:
                outs = [next(new_slot) for _ in node.outputs]
                steps.append(
                    Step(
                        layer,
                        tuple(reads),
                        tuple(outs),
                        node.many_inputs,
                        node.many_outputs,
                        prefix + layer.name,
                        at,
                    )
                )
            slot_of.update((t.id, s) for t, s in zip(node.outputs, outs))
        if root_node is None:
            root_slots.update(slot_of)
        return [slot_of[t.id] for t in container.outputs]

    input_slots = [next(new_slot) for _ in model.inputs]
    output_slots = visit(model, input_slots, "", None)
    n_slots = next(new_slot)

    producer = [-1] * n_slots
    last_read = [-1] * n_slots
    for i, step in enumerate(steps):
        for s in step.reads:
            last_read[s] = i
        for s in step.writes:
            producer[s] = i
    kept = set(output_slots)
    frees: list[list[int]] = [[] for _ in steps]
    for s, i in enumerate(last_read):
        if i >= 0 and s not in kept and producer[s] != i:  # an InputLayer reads what it writes
            frees[i].append(s)

    first_step = [len(steps)] * (len(model._nodes) + 1)
    for i in reversed(range(len(steps))):
        first_step[steps[i].node] = i
    for n in reversed(range(len(model._nodes))):  # a node without steps starts where the next does
        first_step[n] = min(first_step[n], first_step[n + 1])

    counts: dict = {}
    for step in steps:
        counts[step.layer] = counts.get(step.layer, 0) + 1
    shared = frozenset(layer for layer, c in counts.items() if c > 1)
    return RunOrder(
        steps,
        n_slots,
        input_slots,
        output_slots,
        [tuple(f) for f in frees],
        producer,
        first_step,
        root_slots,
        tuple(models),
        shared,
    )


def step_args(step: Step, values: list):
    """What ``step.layer.forward`` receives: an array, or a list for a merge layer."""
    if step.many_inputs:
        return [values[s] for s in step.reads]
    return values[step.reads[0]]


def store(step: Step, values: list, out) -> None:
    """Put what the step's layer returned into its slots."""
    if step.many_outputs:
        for s, value in zip(step.writes, out):
            values[s] = value
    else:
        values[step.writes[0]] = out


def release(order: RunOrder, i: int, values: list) -> None:
    """Let go of the slots no step after step ``i`` reads (memory then holds the
    activations still needed, and the caches asked for, not every one of the forward)."""
    for s in order.frees[i]:
        values[s] = None


# -- a layer called at several steps ---------------------------------------------------------
# A layer holds one cache, which its next call overwrites. For a layer in
# ``RunOrder.shared`` (a siamese tower's layers, a Dense applied twice) the forward
# moves each call's cache out of the layer into ``calls``, keyed by step index, and
# the backward puts it back just before that step's backward: each call is then
# differentiated at its own input (and its own dropout mask or augmentation).
# Only shared layers' caches move, so memory is the same as for separate layers.


def stash_call(i: int, layer, calls: dict) -> None:
    """Move the cache the shared ``layer`` just made at step ``i`` into ``calls[i]``.

    The pre-activation a sigmoid/softmax layer keeps (``last_logits``) moves too:
    left in the layer it would be the last call's, and the training loop would
    compute every call's loss from it."""
    cache = layer._cache_value
    if cache is not None:  # None: this forward keeps no cache (predict, evaluate)
        calls[i] = (cache, getattr(layer, "last_logits", None))
        layer._cache_value = None
    if getattr(layer, "last_logits", None) is not None:
        layer.last_logits = None


def restore_call(i: int, layer, calls: dict) -> None:
    """Put back the cache step ``i`` made (see :func:`stash_call`), for its backward.
    A missing one (no forward kept it, or this forward's backward ran already)
    leaves the layer without a cache, and its backward raises as for any layer."""
    cache, logits = calls.pop(i, (None, None))
    layer._cache_value = cache
    if logits is not None:
        layer.last_logits = logits


def sum_grads(total: list | None, grads: list) -> list:
    """The weight gradients of a shared layer, summed over its calls (the chain
    rule: a weight used twice gets both gradients). ``[]`` is a backward that
    computed none; a ``None`` entry stays ``None`` only if no call computed it."""
    if not total:
        return list(grads)
    if not grads:
        return total
    return [t if g is None else g if t is None else t + g for t, g in zip(total, grads)]
