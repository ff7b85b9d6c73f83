"""Keras' legacy HDF5 weight layout: reading and writing.

One reader covers two generations of files:

* the published VGG16 files (Keras 2 era)::

      attrs: layer_names = [b'input_1', b'block1_conv1', ..., b'block5_pool']
      block1_conv1/                       attrs: weight_names = [b'block1_conv1_W_1:0', b'block1_conv1_b_1:0']
      block1_conv1/block1_conv1_W_1:0     (3, 3, 3, 64)   the kernel, HWIO
      block1_conv1/block1_conv1_b_1:0     (64,)           the bias

* what Keras' legacy writer produces today (``model.save('m.h5')`` puts the
  same tree under a ``model_weights`` group)::

      attrs: layer_names, backend, keras_version
      block1_conv1/                       attrs: weight_names = ['block1_conv1/kernel', 'block1_conv1/bias']
      block1_conv1/block1_conv1/kernel    (3, 3, 3, 64)
      top_level_model_weights/            attrs: weight_names = []

Each ``weight_names`` entry is a path relative to its layer's group, so
following those paths makes both generations one format. A nested model
(VGG16 inside the transfer-learning Sequential) is one entry of ``layer_names``
whose group lists all the nested weights (``vgg16/block1_conv1/kernel``, ...).

The order of ``layer_names`` is the model's layer order; h5py's own key order
is alphabetical and must never be used.
"""

from __future__ import annotations

from dataclasses import dataclass

import h5py
import numpy as np

from ..errors import WeightFileError
from .h5access import SavedWeight, file_label, get_group, read_name_list, saved_weight, write_name_list

TOP_LEVEL_GROUP = "top_level_model_weights"


@dataclass
class LegacyLayer:
    """One entry of ``layer_names``: a layer's name and its saved weights, in file order."""

    name: str
    weights: list[SavedWeight]


def is_legacy(f: h5py.File) -> bool:
    """True when ``f`` holds the legacy layout (at its root or under ``model_weights``)."""
    return legacy_root(f) is not None


def legacy_root(f: h5py.File) -> h5py.Group | None:
    """The group holding ``layer_names``: the root for weight files, ``model_weights``
    for a whole model saved with ``model.save('m.h5')``; ``None`` if neither."""
    if _has_name_list(f, "layer_names"):
        return f
    if "model_weights" in f:
        group = get_group(f, "model_weights")
        if _has_name_list(group, "layer_names"):
            return group
    return None


def _has_name_list(group, attr: str) -> bool:
    return attr in group.attrs or f"{attr}0" in group.attrs


def read_layer(root: h5py.Group, name: str) -> LegacyLayer:
    """The weights of layer ``name``, located through its ``weight_names``."""
    group = get_group(root, name)
    weights = [saved_weight(group, path) for path in read_name_list(group, "weight_names")]
    return LegacyLayer(name, weights)


def read_layers(root: h5py.Group) -> list[LegacyLayer]:
    """Every layer listed in ``layer_names``, in that order (the model's order)."""
    names = read_name_list(root, "layer_names")
    seen = set()
    for name in names:
        if name in seen:
            raise WeightFileError(
                f"Weights file '{file_label(root)}' lists layer '{name}' twice in layer_names."
            )
        seen.add(name)
    return [read_layer(root, name) for name in names]


def read_named_layers(root: h5py.Group) -> list[tuple[str, str, list[SavedWeight]]]:
    """``(leaf_name, where, weights)`` for every leaf layer the file holds weights of,
    including the layers of a nested model, in file order.

    A nested model is one entry of ``layer_names`` whose ``weight_names`` are
    paths like ``block1_conv1/kernel`` (``vgg16`` inside the transfer-learning
    model) or ``sequential/dense/kernel``; the leaf is the path component just
    before the weight's own name. A weight stored without a path (the
    published files' ``block1_conv1_W_1:0``) belongs to its entry's layer.
    """
    leaves: dict[str, tuple[str, str, list[SavedWeight]]] = {}
    for layer in read_layers(root):
        for weight in layer.weights:
            parts = weight.name.split("/")
            leaf = parts[-2] if len(parts) >= 2 else layer.name
            key = f"{layer.name}/{leaf}"
            if key not in leaves:
                leaves[key] = (
                    leaf,
                    f"layer '{layer.name}'" + (f", '{leaf}'" if leaf != layer.name else ""),
                    [],
                )
            leaves[key][2].append(weight)
    return list(leaves.values())


def read_top_level_weights(root: h5py.Group) -> list[SavedWeight]:
    """The weights a model holds itself (not through a layer); numvgg models have none."""
    if TOP_LEVEL_GROUP not in root:
        return []
    return read_layer(root, TOP_LEVEL_GROUP).weights


def write_legacy(
    f: h5py.File,
    layers: list[tuple[str, list[tuple[str, np.ndarray]]]],
    backend: str = "numpy",
    keras_version: str = "3",
) -> None:
    """Write the legacy layout into the empty file ``f``, as Keras' legacy writer does.

    Args:
        layers: ``[(layer_name, [(weight_path, array), ...]), ...]`` in model
            order; ``weight_path`` is like ``'block1_conv1/kernel'`` and becomes
            the dataset ``<layer_name>/<weight_path>``. Layers without weights
            keep their place with an empty list.
        backend, keras_version: stored as root attributes, as Keras does.
    """
    names = [name for name, _ in layers]
    if len(set(names)) != len(names):
        raise WeightFileError(f"Layer names must be unique to save in the legacy layout: {names}")
    write_name_list(f, "layer_names", names)
    f.attrs["backend"] = backend.encode("utf8")
    f.attrs["keras_version"] = keras_version.encode("utf8")
    # Keras creates the groups sorted by name; the order that counts is layer_names.
    for name, weights in sorted(layers, key=lambda item: item[0]):
        _write_weights(f.create_group(name), weights)
    _write_weights(f.create_group(TOP_LEVEL_GROUP), [])


def _write_weights(group: h5py.Group, weights: list[tuple[str, np.ndarray]]) -> None:
    paths = [path for path, _ in weights]
    if len(set(paths)) != len(paths):
        raise WeightFileError(f"Two weights of layer '{group.name[1:]}' share a name: {paths}")
    write_name_list(group, "weight_names", paths)
    for path, array in weights:
        group.create_dataset(path, data=np.asarray(array))
