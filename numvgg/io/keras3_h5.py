"""Keras 3's ``.weights.h5`` layout: reading and writing.

Keras 3 saves a model as a tree that mirrors the model object::

    vars/                                  attrs: name = 'vgg16'   (the model's own variables: none)
    layers/conv2d/vars/                    attrs: name = 'block1_conv1'
    layers/conv2d/vars/0                   (3, 3, 3, 64)  kernel
    layers/conv2d/vars/1                   (64,)          bias
    layers/conv2d_1/vars/ ...                                     block1_conv2
    layers/max_pooling2d/vars/             attrs: name = 'block1_pool'  (no datasets)
    ...

A layer's group is not named after the layer but after its class, with a
counter per class and per model: ``conv2d``, ``conv2d_1``, ..., ``conv2d_12``,
then ``max_pooling2d``, ``max_pooling2d_1``, ... (Keras: the names the user
gave are not reproducible, the structure is). The ``name`` attribute keeps the
real name, for people reading the file. A nested model nests the same tree:
``layers/functional/layers/conv2d/vars/0``.

h5py lists groups alphabetically (``conv2d_10`` before ``conv2d_2``), so the
order of the layers of one class is rebuilt from the counter, and datasets are
read as ``vars/0``, ``vars/1``, ... by number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import h5py
import numpy as np

from ..errors import WeightFileError
from ..naming import to_snake_case
from .h5access import SavedWeight, file_label, get_group, saved_weight

_AUTO_NAME = re.compile(r"^(?P<prefix>.+?)(?:_(?P<counter>\d+))?$")


def auto_names(class_names: list[str]) -> list[str]:
    """The group names Keras gives a model's layers, in layer order.

    The first layer of a class gets the bare snake-case name, later ones a
    counter: ``['Conv2D', 'Conv2D', 'MaxPooling2D']`` -> ``['conv2d', 'conv2d_1', 'max_pooling2d']``.
    """
    seen: dict[str, int] = {}
    names = []
    for class_name in class_names:
        prefix = to_snake_case(class_name)
        count = seen.get(prefix, -1) + 1
        seen[prefix] = count
        names.append(prefix if count == 0 else f"{prefix}_{count}")
    return names


def auto_name_key(name: str) -> tuple[str, int]:
    """Sort key that undoes h5py's alphabetical order: ``'conv2d_10'`` -> ``('conv2d', 10)``."""
    if isinstance(name, bytes):  # h5py gives names that are not UTF-8 as bytes
        raise WeightFileError(f"Group name {name!r} is not UTF-8 text; the file is damaged.")
    match = _AUTO_NAME.match(name)
    return match["prefix"], int(match["counter"] or 0)


@dataclass
class Keras3Node:
    """One object of the saved tree (the model, a nested model or a layer).

    Attributes:
        path: its group in the file, e.g. ``'layers/functional/layers/conv2d'``
            (``''`` for the root).
        real_name: the ``name`` attribute Keras stores (``'block1_conv1'``), if any.
        weights: its own variables ``vars/0``, ``vars/1``, ... in order.
        children: the groups under its ``layers/``, keyed by auto name, in
            rebuilt order (per class, by counter).
    """

    path: str
    real_name: str | None
    weights: list[SavedWeight] = field(default_factory=list)
    children: dict[str, Keras3Node] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """``'layers/conv2d' (block1_conv1)``: how messages point at it."""
        shown = self.path or "<root>"
        return f"'{shown}' ({self.real_name})" if self.real_name else f"'{shown}'"

    def walk(self):
        """This node and every node below it, depth first."""
        yield self
        for child in self.children.values():
            yield from child.walk()


def is_keras3(f: h5py.File) -> bool:
    """True when ``f`` looks like a Keras 3 ``.weights.h5``: a ``layers`` or ``vars``
    group at the root and no legacy ``layer_names``."""
    return ("layers" in f or "vars" in f) and "layer_names" not in f.attrs


# A model nests models a few levels deep (VGG16 inside the transfer-learning
# Sequential is 2); a hostile file can nest thousands, or loop with hard links.
MAX_DEPTH = 64


def read_tree(f: h5py.File) -> Keras3Node:
    """The whole saved tree of ``f`` (shapes only; no data is read).

    Raises:
        WeightFileError: the tree is nested more than ``MAX_DEPTH`` models
            deep, or a group is reached twice (HDF5 hard links, possibly a
            cycle): no Keras file does either.
    """
    return _read_node(f, "", set(), 0)


def _object_address(group: h5py.Group) -> int:
    return h5py.h5o.get_info(group.id).addr


def _read_node(f: h5py.File, path: str, seen: set, depth: int) -> Keras3Node:
    group = get_group(f, path) if path else f
    if depth > MAX_DEPTH:
        raise WeightFileError(
            f"Weights file '{file_label(f)}': its layer tree is nested more than {MAX_DEPTH} "
            f"models deep (at '{path[:120]}...'); no Keras model is. The file is damaged or hostile."
        )
    address = _object_address(group)
    if address in seen:
        raise WeightFileError(
            f"Weights file '{file_label(f)}': group '{path or '/'}' is the same HDF5 object as "
            "a group already read (a hard link, possibly a cycle). Keras never writes those; the "
            "file is damaged or hostile."
        )
    seen.add(address)
    real_name = None
    weights: list[SavedWeight] = []
    if "vars" in group:
        vars_group = get_group(group, "vars")
        if "name" in vars_group.attrs:
            real_name = _as_str(vars_group.attrs["name"])
        weights = _read_vars(vars_group)
    children = {}
    if "layers" in group:
        layers_group = get_group(group, "layers")
        for name in sorted(layers_group, key=auto_name_key):
            child_path = f"{path}/layers/{name}" if path else f"layers/{name}"
            children[name] = _read_node(f, child_path, seen, depth + 1)
    return Keras3Node(path, real_name, weights, children)


def _read_vars(vars_group: h5py.Group) -> list[SavedWeight]:
    keys = [k.decode("utf8", "replace") if isinstance(k, bytes) else k for k in vars_group]
    if not all(k.isdigit() for k in keys) or sorted(map(int, keys)) != list(range(len(keys))):
        raise WeightFileError(
            f"Weights file '{file_label(vars_group)}': '{vars_group.name}' should hold datasets "
            f"named 0, 1, 2, ... but holds {sorted(keys)}."
        )
    return [saved_weight(vars_group, str(i)) for i in range(len(keys))]


def _as_str(value) -> str:
    # Only shown in messages: a damaged name must not stop the load.
    return value.decode("utf8", "replace") if isinstance(value, (bytes, np.bytes_)) else str(value)


# Groups Keras 3 writes beside the model's own tree; they hold no layer.
_NOT_LAYERS = ("optimizer", "metrics")


def read_named_layers(f: h5py.File) -> list[Keras3Node]:
    """Every group of ``f`` that holds weights, wherever it sits, with its ``name`` attribute.

    :func:`read_tree` follows the ``layers/`` groups of Functional and
    Sequential models. A subclassed Keras model stores its layers under their
    *attribute* names instead, e.g. HED's file::

        block1/layers/conv2d/vars/0    name 'block1_conv1', inside the Sequential 'block1'
        dsn1/vars/0                    name 'conv2d' (a 1x1 side-output conv)

    so matching by name walks every group. Shapes only; no data is read.
    """
    found: list[Keras3Node] = []
    _collect_named(f, "", found)
    return found


def _collect_named(f: h5py.File, path: str, found: list) -> None:
    group = get_group(f, path) if path else f
    if "vars" in group:
        vars_group = get_group(group, "vars")
        weights = _read_vars(vars_group)
        if weights:
            name = _as_str(vars_group.attrs["name"]) if "name" in vars_group.attrs else None
            found.append(Keras3Node(path, name, weights))
    for key in sorted(group, key=str):
        if isinstance(key, bytes):
            raise WeightFileError(
                f"Group name {key!r} under '{group.name}' is not UTF-8 text; the file is damaged."
            )
        if key == "vars" or (not path and key in _NOT_LAYERS):
            continue
        # A link is not followed: get_group refuses it with a clear message.
        is_link = not isinstance(group.get(key, getlink=True), h5py.HardLink)
        if is_link or group.get(key, getclass=True) is h5py.Group:
            _collect_named(f, f"{path}/{key}" if path else key, found)


@dataclass
class NodeToWrite:
    """What :func:`write_tree` writes for one object: its real name, its own
    arrays (``vars/0``, ``vars/1``, ...) and its children keyed by auto name."""

    real_name: str
    arrays: list[np.ndarray] = field(default_factory=list)
    children: dict[str, NodeToWrite] = field(default_factory=dict)


def write_tree(f: h5py.File, root: NodeToWrite) -> None:
    """Write ``root`` into the empty file ``f`` in Keras 3's layout.

    Every object gets a ``vars`` group carrying its ``name`` (Keras does this
    even for layers without weights); a model's layers go under ``layers/``.
    """
    _write_node(f, root)


def _write_node(group: h5py.Group, node: NodeToWrite) -> None:
    vars_group = group.create_group("vars")
    vars_group.attrs["name"] = node.real_name
    for i, array in enumerate(node.arrays):
        vars_group.create_dataset(str(i), data=np.asarray(array))
    if node.children:
        layers_group = group.create_group("layers")
        for auto_name, child in node.children.items():
            _write_node(layers_group.create_group(auto_name), child)
