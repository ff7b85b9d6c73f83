"""Load and save a model's weights in Keras' files: ``load_weights`` and ``save_weights``.

The file's layout is detected from its content (see :mod:`numvgg.io.legacy_h5`
and :mod:`numvgg.io.keras3_h5`), then matched to the model the way Keras does:

* **legacy files** (the published VGG16 weights, ``.h5`` written by Keras'
  legacy writer), by default **by order**: the saved layers that have weights
  are paired, in order, with the model's layers that have weights, and the two
  counts must agree. With ``by_name=True`` a saved layer goes to the model
  layer of the same name, and saved layers without a match are ignored. A
  nested model (VGG16 inside the transfer-learning Sequential) is one layer
  whose weights are all of its layers' weights, trainable ones first.
* **Keras 3 files** (``.weights.h5``) by structure: the k-th ``Conv2D`` of a
  model goes to the group ``conv2d_k``, the first nested model to
  ``functional`` (or ``sequential``), and so on down the tree. With
  ``by_name=True`` (Keras refuses it for these files; numvgg accepts it) each
  layer of the model goes to the group whose ``name`` attribute is its name,
  wherever that group sits in the file (nested Sequentials, functional
  sub-models, a subclassed model's attributes as in HED's file).

:func:`load_vgg16_weights` is what ``VGG16(weights=path)`` needs: every layer
of VGG16 found by name anywhere in either layout, else Keras' own rule, else
an error naming the layers that are missing.

Loading is all or nothing: every count and shape is checked, then every array
is read, and only then is anything assigned. A file that does not fit leaves
the model exactly as it was. ``skip_mismatch=True`` skips (with a warning)
what does not fit, as Keras does, and loads the rest.

The model is duck-typed: a *container* has a ``layers`` list (``Sequential``),
a *leaf* layer has a ``params`` dict of ``name -> array`` (``'kernel'``,
``'bias'``) and ``set_weights``. Nothing here imports the model classes.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, NamedTuple

import h5py
import numpy as np

from ..errors import WeightFileError
from ..version import __version__
from . import keras3_h5, legacy_h5
from .atomic import atomic_path
from .h5access import SavedWeight, damaged_file_errors, open_for_reading

_MAX_LISTED_PROBLEMS = 5


# -- the model side ------------------------------------------------------------
def is_container(layer) -> bool:
    """True for a model (a numvgg layer with layers inside), False for a leaf layer."""
    return hasattr(layer, "_sublayers") and bool(layer._sublayers())


class Slot(NamedTuple):
    """One weight of one leaf layer: where a saved array will go."""

    layer: Any
    weight: str  # 'kernel' or 'bias'

    @property
    def path(self) -> str:
        """Keras 3's variable path, e.g. ``'block1_conv1/kernel'``."""
        return f"{self.layer.name}/{self.weight}"

    @property
    def shape(self) -> tuple:
        return tuple(self.layer.params[self.weight].shape)


def _leaves(layer):
    """``(leaf, effectively_trainable)`` for every leaf inside ``layer``, in model order."""
    return layer._leaves_trainable()


def layer_slots(layer) -> list[Slot]:
    """Every weight inside ``layer`` in model order (``get_weights()`` order)."""
    return [Slot(leaf, k) for leaf, _ in _leaves(layer) for k in leaf.params]


def legacy_slots(layer) -> list[Slot]:
    """``layer``'s weights in the order Keras' legacy writer uses: trainable weights
    first, then frozen ones (``trainable_weights + non_trainable_weights``).

    For VGG16 that is the model order unless only part of it is frozen; then
    e.g. block5 (trainable) comes before blocks 1-4 (frozen).
    """
    leaves = list(_leaves(layer))
    trainable = [Slot(leaf, k) for leaf, ok in leaves if ok for k in leaf.params]
    frozen = [Slot(leaf, k) for leaf, ok in leaves if not ok for k in leaf.params]
    return trainable + frozen


def keras_class_name(layer) -> str:
    """The Keras class a numvgg layer stands for; it names the layer's group in a
    ``.weights.h5`` file. A model built functional-style (it records the name of
    its input layer, as ``VGG16`` does) stands for Keras' ``Functional``."""
    explicit = getattr(layer, "keras_class_name", None)
    if explicit:
        return explicit
    return type(layer).__name__


def _check_model(model, action: str) -> None:
    if not is_container(model):
        raise TypeError(
            f"Can only {action} weights of a model with a `layers` list "
            f"(e.g. numvgg.models.Sequential), got {type(model).__name__}."
        )
    if not getattr(model, "built", True):
        raise WeightFileError(
            f"Model '{model.name}' is not built yet, so its layers have no weights to {action}. "
            "Give the first layer an input_shape, call model.build((None, H, W, C)) "
            "or run the model on data first."
        )


def _names(items, limit: int = 6) -> str:
    # h5py returns names that are not UTF-8 (a damaged file) as bytes.
    items = [i.decode("utf8", "replace") if isinstance(i, bytes) else str(i) for i in items]
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")


# -- a plan: every (slot, saved array) pair, checked before anything is read -----
class Assignment(NamedTuple):
    slot: Slot
    saved: SavedWeight


class _Plan:
    """Collects assignments, and problems that either fail the load or, with
    ``skip_mismatch``, become warnings."""

    def __init__(self, path: str, skip_mismatch: bool):
        self.path = path
        self.skip_mismatch = skip_mismatch
        self.assignments: list[Assignment] = []
        self.problems: list[str] = []
        self.warnings: list[str] = []

    def fail(self, message: str) -> None:
        """A problem that ``skip_mismatch`` cannot skip (Keras raises for it too)."""
        raise WeightFileError(f"Cannot load weights from '{self.path}': {message}")

    def mismatch(self, message: str) -> None:
        """A problem ``skip_mismatch=True`` turns into a warning."""
        if self.skip_mismatch:
            self.warnings.append(f"Skipping weights from '{self.path}': {message}")
        else:
            self.problems.append(message)

    def raise_problems(self) -> None:
        if not self.problems:
            return
        listed = self.problems[:_MAX_LISTED_PROBLEMS]
        more = len(self.problems) - len(listed)
        text = "\n  ".join(listed) + (f"\n  ... and {more} more." if more else "")
        raise WeightFileError(f"Cannot load weights from '{self.path}'; nothing was loaded:\n  {text}")


def _shape_text(shape) -> str:
    return str(tuple(shape))


def _pair_weights(plan: _Plan, where: str, slots: list[Slot], saved: list[SavedWeight]) -> None:
    """Check one layer's weights shape by shape (counts are already equal)."""
    for slot, weight in zip(slots, saved):
        if slot.shape != weight.shape:
            plan.mismatch(
                f"{where}, weight '{slot.path}' (saved as '{weight.name}'): the model expects "
                f"shape {_shape_text(slot.shape)} but the file holds shape {_shape_text(weight.shape)}."
            )
        else:
            plan.assignments.append(Assignment(slot, weight))


# -- legacy files ----------------------------------------------------------------------
def _plan_legacy_by_order(plan: _Plan, model, root: h5py.Group) -> None:
    model_layers = [layer for layer in model.layers if legacy_slots(layer)]
    saved_layers = [saved for saved in legacy_h5.read_layers(root) if saved.weights]
    if len(model_layers) != len(saved_layers):
        # Naming the layers found on one side only shows the usual mistakes at
        # once: a with-top file (fc1, fc2, predictions) or VGG19 (block3_conv4, ...).
        model_names = [layer.name for layer in model_layers]
        saved_names = [saved.name for saved in saved_layers]
        only_file = [n for n in saved_names if n not in model_names]
        only_model = [n for n in model_names if n not in saved_names]
        plan.fail(
            f"layer count mismatch. Model '{model.name}' has {len(model_layers)} layers with weights "
            f"({_names(model_names)}) but the file holds {len(saved_layers)} "
            f"({_names(saved_names)}). Only in the file: {_names(only_file) or 'none'}; only in "
            f"the model: {_names(only_model) or 'none'}. Layers are paired in order, as in Keras; "
            "pass by_name=True to match them by name instead."
        )
    for k, (layer, saved) in enumerate(zip(model_layers, saved_layers)):
        slots = legacy_slots(layer)
        where = f"layer #{k} (named '{layer.name}' in the model, '{saved.name}' in the file)"
        if len(slots) != len(saved.weights):
            plan.fail(
                f"weight count mismatch for {where}: the model layer has {len(slots)} "
                f"weight(s) but the file holds {len(saved.weights)}."
            )
        _pair_weights(plan, where, slots, saved.weights)
    _check_top_level(plan, model, root, by_name=False)


def _plan_legacy_by_name(plan: _Plan, model, root: h5py.Group) -> None:
    by_name = {layer.name: layer for layer in model.layers}
    saved_layers = legacy_h5.read_layers(root)
    matched = 0
    for k, saved in enumerate(saved_layers):
        layer = by_name.get(saved.name)
        if layer is None:
            continue
        slots = legacy_slots(layer)
        where = f"layer #{k} (named '{layer.name}')"
        if len(slots) != len(saved.weights):
            plan.mismatch(
                f"weight count mismatch for {where}: the model layer has {len(slots)} "
                f"weight(s) but the file holds {len(saved.weights)}."
            )
            continue
        matched += bool(slots)
        _pair_weights(plan, where, slots, saved.weights)
    with_weights = [s.name for s in saved_layers if s.weights]
    if with_weights and not matched and not plan.problems:
        # Keras silently loads nothing here; a student deserves to know why.
        plan.mismatch(
            f"none of the file's layers with weights ({_names(with_weights)}) is a layer of model "
            f"'{model.name}' ({_names(l.name for l in model.layers)}). by_name matches the model's "
            "own layers, as in Keras; to fill a nested model, load into it, e.g. "
            "model.get_layer('vgg16').load_weights(...)."
        )
    _check_top_level(plan, model, root, by_name=True)


def _check_top_level(plan: _Plan, model, root: h5py.Group, by_name: bool) -> None:
    # numvgg models hold no weights of their own: all weights live in layers.
    saved = legacy_h5.read_top_level_weights(root)
    if saved:
        message = (
            f"the file holds {len(saved)} top-level model weight(s) "
            f"({_names(w.name for w in saved)}) but model '{model.name}' holds none "
            "outside its layers."
        )
        if by_name:
            plan.mismatch(message)
        else:
            plan.fail(message)


# -- Keras 3 files ---------------------------------------------------------------------------
def _find_child(node: keras3_h5.Keras3Node, auto_name: str, layer):
    if auto_name in node.children:
        return node.children[auto_name]
    if is_container(layer):
        # A numvgg Sequential may stand for a Keras Functional model or the other way round.
        prefix, counter = keras3_h5.auto_name_key(auto_name)
        for other in ("functional", "sequential"):
            alias = other if counter == 0 else f"{other}_{counter}"
            if other != prefix and alias in node.children:
                return node.children[alias]
    return None


def _plan_keras3_node(plan: _Plan, layer, node, used: set, expected_path: str) -> None:
    """Match ``layer`` (leaf or model) with ``node``, its group in the file (None if missing)."""
    own = [] if is_container(layer) else [Slot(layer, k) for k in layer.params]
    if node is None:
        inside = layer_slots(layer)
        if inside:
            plan.mismatch(
                f"layer '{layer.name}' has {len(inside)} weight(s) "
                f"({_names(s.path for s in inside)}) but the file has no group "
                f"'{expected_path}' for it."
            )
        return
    used.add(node.path)
    where = f"layer '{layer.name}' (file group {node.label})"
    if len(own) != len(node.weights):
        plan.mismatch(
            f"{where} expects {len(own)} weight(s) ({_names(s.weight for s in own)}) "
            f"but the file holds {len(node.weights)}."
        )
    else:
        # Keras 3 loads a layer whole or not at all, so check it on the side first.
        layer_plan = _Plan(plan.path, skip_mismatch=False)
        _pair_weights(layer_plan, where, own, node.weights)
        for problem in layer_plan.problems:
            plan.mismatch(problem)
        if not layer_plan.problems:
            plan.assignments.extend(layer_plan.assignments)
    if is_container(layer):
        names = keras3_h5.auto_names([keras_class_name(sub) for sub in layer.layers])
        prefix = f"{node.path}/layers" if node.path else "layers"
        children = [
            (sub, _find_child(node, auto_name, sub), f"{prefix}/{auto_name}")
            for auto_name, sub in zip(names, layer.layers)
        ]
        weighted = [(sub, child, expected) for sub, child, expected in children if layer_slots(sub)]
        if len(weighted) > 1 and all(child is None for _, child, _ in weighted):
            # Nothing at this level fits: one clear message beats one per layer.
            held = [child.label for child in node.children.values()] or ["nothing"]
            plan.mismatch(
                f"the structure of model '{layer.name}' does not match the file: none of its "
                f"layers with weights ({_names(sub.name for sub, _, _ in weighted)}) has its group "
                f"in the file ({_names(repr(expected) for _, _, expected in weighted)}); there the "
                f"file holds {_names(held)}. Was it saved from another model (e.g. the "
                "transfer-learning model that nests VGG16)? by_name=True finds layers by name "
                "wherever they sit."
            )
            return
        for sub, child, expected in children:
            _plan_keras3_node(plan, sub, child, used, expected)


def _plan_keras3(plan: _Plan, model, f: h5py.File) -> None:
    tree = keras3_h5.read_tree(f)
    used: set = set()
    _plan_keras3_node(plan, model, tree, used, "")
    unused = [node.label for node in tree.walk() if node.weights and node.path not in used]
    if unused:
        # Keras ignores them silently; say so, it is usually a sign of the wrong file.
        plan.warnings.append(
            f"Weights file '{plan.path}' holds weights that model '{model.name}' "
            f"has no layer for; they were ignored: {_names(unused)}."
        )


# -- by name, anywhere in the file ------------------------------------------------------------------
class NamedLeaf(NamedTuple):
    """A saved leaf layer found by its name: ``where`` points at it for messages."""

    name: str
    where: str
    weights: list[SavedWeight]


def named_leaves(f: h5py.File) -> list[NamedLeaf]:
    """Every saved leaf layer of ``f`` with weights and a name, in either layout."""
    if detect_layout(f) == "legacy":
        return [NamedLeaf(*leaf) for leaf in legacy_h5.read_named_layers(legacy_h5.legacy_root(f))]
    return [
        NamedLeaf(node.real_name, f"file group {node.label}", node.weights)
        for node in keras3_h5.read_named_layers(f)
        if node.real_name
    ]


def _plan_by_name_anywhere(plan: _Plan, model, leaves: list[NamedLeaf], require_all: bool) -> list[str]:
    """Pair each leaf layer of ``model`` with the saved leaf of the same name; returns
    the names of the model's layers with weights that the file does not hold.

    ``require_all``: a missing layer is a problem (VGG16's trunk must be whole);
    otherwise missing layers keep their weights, as with Keras' ``by_name``, but
    a file that matches nothing at all is still an error.
    """
    by_name: dict[str, list[NamedLeaf]] = {}
    for leaf in leaves:
        by_name.setdefault(leaf.name, []).append(leaf)
    missing = []
    for layer, _ in _leaves(model):
        if not layer.params:
            continue
        found = by_name.get(layer.name, [])
        if not found:
            missing.append(layer.name)
            continue
        if len(found) > 1:
            plan.fail(
                f"layer '{layer.name}' is in the file {len(found)} times "
                f"({_names(leaf.where for leaf in found)}): by name, it is ambiguous."
            )
        saved = found[0]
        slots = [Slot(layer, k) for k in layer.params]
        where = f"layer '{layer.name}' ({saved.where})"
        if len(slots) != len(saved.weights):
            plan.mismatch(
                f"weight count mismatch for {where}: the model layer has {len(slots)} "
                f"weight(s) but the file holds {len(saved.weights)}."
            )
            continue
        _pair_weights(plan, where, slots, saved.weights)
    with_weights = [layer.name for layer, _ in _leaves(model) if layer.params]
    if missing and require_all:
        plan.mismatch(
            f"the file holds no layer named {_names(missing, limit=20)} "
            f"({len(missing)} of model '{model.name}''s {len(with_weights)} layers with "
            f"weights). It holds: {_names(sorted(by_name), limit=20) or 'no named layers'}."
        )
    elif len(missing) == len(with_weights) and with_weights:
        plan.mismatch(
            f"no layer of model '{model.name}' ({_names(with_weights)}) is in the file by "
            f"name; it holds {_names(sorted(by_name)) or 'no named layers'}."
        )
    return missing


# -- public API ---------------------------------------------------------------------------------
def detect_layout(f: h5py.File) -> str:
    """``'legacy'`` (published files and Keras' legacy writer) or ``'keras3'``
    (``.weights.h5``), from the content of the open file ``f``."""
    if legacy_h5.is_legacy(f):
        return "legacy"
    if keras3_h5.is_keras3(f):
        return "keras3"
    raise WeightFileError(
        f"'{f.filename}' is an HDF5 file but not a Keras weights file: it has neither the legacy "
        f"'layer_names' attribute nor Keras 3's 'layers'/'vars' groups (top-level keys: "
        f"{_names(f.keys()) or 'none'})."
    )


def load_weights(model, path, by_name: bool = False, skip_mismatch: bool = False) -> None:
    """Load a Keras weights file into ``model``, all or nothing.

    Args:
        model: a built numvgg model (e.g. ``VGG16(...)``, or the transfer-learning
            ``Sequential([conv_base, GlobalAveragePooling2D(), Dense(512), Dense(1)])``).
        path: a ``.h5`` file in either legacy layout (the published
            ``vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5`` is one), or a
            Keras 3 ``.weights.h5``. The layout is read from the content.
        by_name: match saved layers to the model's layers by name instead of by
            order (legacy) or structure (Keras 3). Legacy files: the model's own
            layers, as in Keras. Keras 3 files (Keras refuses ``by_name`` for
            them): every leaf layer of the model, found by the ``name``
            attribute wherever it sits in the file. Layers the file does not
            hold keep their weights.
        skip_mismatch: skip, with a warning, each weight (legacy) or layer
            (Keras 3) whose shape or count does not fit, and load the rest.

    Raises:
        WeightFileError: the file is missing, not HDF5, truncated or unsafe (links,
            external data), or does not fit the model; the message names the file,
            the layer, the weight, the expected and the saved shape. The model is
            then unchanged.
    """
    _check_model(model, "load")
    path = os.fspath(path)
    plan = _Plan(path, skip_mismatch)
    with open_for_reading(path) as f, damaged_file_errors(path):
        layout = detect_layout(f)
        if layout == "legacy":
            root = legacy_h5.legacy_root(f)
            (_plan_legacy_by_name if by_name else _plan_legacy_by_order)(plan, model, root)
        else:
            if by_name:
                # Keras raises here; numvgg finds each layer by its name attribute.
                _plan_by_name_anywhere(plan, model, named_leaves(f), require_all=False)
            else:
                _plan_keras3(plan, model, f)
        plan.raise_problems()
        values = [a.saved.read(a.slot.layer.name, a.slot.weight) for a in plan.assignments]
    _assign(plan.assignments, values)
    for message in plan.warnings:
        warnings.warn(message, stacklevel=2)


def load_vgg16_weights(model, path) -> str:
    """Load ``path`` into VGG16 (or any model): what ``VGG16(weights=path)`` does.

    1. **By name, anywhere**: if the file holds every layer of ``model`` that
       has weights (``block1_conv1`` ... and, with the top, ``fc1`` ...),
       wherever they sit (a legacy ``.h5``, a Keras 3 ``.weights.h5``, nested
       Sequentials or sub-models as in HED's file), they are loaded by name.
       Extra layers in the file (HED's side outputs) are ignored.
    2. Otherwise **Keras' own rule** (:func:`load_weights`: legacy by order,
       Keras 3 by structure), so a file of a VGG16 whose layers were renamed
       loads as it does in Keras.

    All or nothing: when neither fits, the model is unchanged and the error
    names the layers the file lacks and what Keras' rule found wrong.

    Returns:
        ``'by name'`` or ``'by structure'``: how the file was matched.
    """
    _check_model(model, "load")
    path = os.fspath(path)
    plan = _Plan(path, skip_mismatch=False)
    with open_for_reading(path) as f, damaged_file_errors(path):
        _plan_by_name_anywhere(plan, model, named_leaves(f), require_all=True)
        if not plan.problems:
            values = [assignment.saved.read() for assignment in plan.assignments]
    if not plan.problems:
        _assign(plan.assignments, values)
        return "by name"
    try:
        load_weights(model, path)
    except WeightFileError as e:
        by_name = "; ".join(plan.problems[:_MAX_LISTED_PROBLEMS])
        raise WeightFileError(
            f"Cannot load weights from '{path}' into model '{model.name}'; nothing "
            f"was loaded.\nBy name: {by_name}\nBy Keras' rule (order/structure): "
            f"{e}"
        ) from e
    return "by structure"


def _assign(assignments: list[Assignment], values: list[np.ndarray]) -> None:
    """Write the checked, already-read arrays, one ``set_weights`` call per layer."""
    per_layer: dict[int, tuple[Any, dict[str, np.ndarray]]] = {}
    for assignment, value in zip(assignments, values):
        layer = assignment.slot.layer
        per_layer.setdefault(id(layer), (layer, {}))[1][assignment.slot.weight] = value
    for layer, new in per_layer.values():
        layer.set_weights([new.get(k, layer.params[k]) for k in layer.params])


def save_weights(model, path) -> None:
    """Write ``model``'s weights in a layout Keras 3 loads.

    ``*.weights.h5`` gets Keras 3's layout; any other ``*.h5`` / ``*.hdf5`` gets
    Keras' legacy layout (the one of the published VGG16 files). The file is
    written under a temporary name in the same folder, flushed to disk and
    renamed into place at the end (:mod:`numvgg.io.atomic`), so a failure never
    leaves a half-written file where a good one was. A symlink is written
    through, and an existing file keeps its permissions.

    Raises:
        WeightFileError: unknown extension, missing folder, or a write error
            (the OS error is chained).
    """
    _check_model(model, "save")
    path = os.fspath(path)
    if path.endswith(".weights.h5"):
        write = _write_keras3
    elif path.endswith((".h5", ".hdf5")):
        write = _write_legacy
    else:
        raise WeightFileError(
            f"Cannot save weights to '{path}': the name must end in '.weights.h5' (Keras 3 "
            "layout) or '.h5' (Keras' legacy layout)."
        )
    with atomic_path(path, WeightFileError, "weights") as tmp, h5py.File(tmp, "w-") as f:
        write(f, model)


def _write_legacy(f: h5py.File, model) -> None:
    layers = []
    for layer in model.layers:  # a functional model's input layer too, with no weights (as Keras)
        layers.append(
            (layer.name, [(slot.path, slot.layer.params[slot.weight]) for slot in legacy_slots(layer)])
        )
    legacy_h5.write_legacy(f, layers, backend="numpy", keras_version=f"numvgg {__version__}")


def _node_to_write(layer) -> keras3_h5.NodeToWrite:
    if not is_container(layer):
        return keras3_h5.NodeToWrite(layer.name, list(layer.params.values()))
    members = [(keras_class_name(sub), _node_to_write(sub)) for sub in layer.layers]
    names = keras3_h5.auto_names([class_name for class_name, _ in members])
    return keras3_h5.NodeToWrite(layer.name, [], dict(zip(names, (node for _, node in members))))


def _write_keras3(f: h5py.File, model) -> None:
    keras3_h5.write_tree(f, _node_to_write(model))
