"""Careful HDF5 access shared by the legacy and the Keras 3 weight layouts.

A weights file comes from the internet, so it is read the way Keras reads it:

* every group and dataset is reached one path component at a time, and soft
  or external links are refused (they could point outside the file);
* external and virtual datasets are refused for the same reason;
* a dataset that declares far more bytes than it stores (a "shape bomb") is
  refused before anything is allocated;
* arrays are copied out as C-contiguous ``float32``, numvgg's dtype.

Nothing here knows about models: :mod:`numvgg.io.weights` does the matching.
"""

from __future__ import annotations

import contextlib
import math
import os
import zipfile
from dataclasses import dataclass, field

import h5py
import numpy as np

from ..errors import WeightFileError
from .checks import check_finite_weights

# HDF5 refuses attributes bigger than an object header (64 KiB); Keras splits
# long name lists into ``name0``, ``name1``, ... attributes below this size.
HDF5_OBJECT_HEADER_LIMIT = 64512

# Same idea as Keras' guard: a big dataset must store at least 1/1000 of the
# bytes it declares, or reading it would allocate memory out of nothing.
_BOMB_FLOOR_BYTES = 1 << 32
_BOMB_MAX_EXPANSION = 1000


def file_label(node) -> str:
    """The file name of an h5py object, for error messages."""
    try:
        return node.file.filename
    except (ValueError, AttributeError):  # closed file, or a plain dict
        return "<closed file>"


def open_for_reading(path) -> h5py.File:
    """Open ``path`` read-only, turning h5py's errors into a clear :class:`WeightFileError`.

    The h5py error stays chained as ``__cause__`` so nothing is lost.
    """
    path = os.fspath(path)
    try:
        return h5py.File(path, "r")
    except OSError as e:
        text = str(e)
        if not os.path.exists(path):
            raise WeightFileError(f"Weights file not found: '{path}'.") from e
        if os.path.isdir(path):
            raise WeightFileError(f"'{path}' is a folder, not a weights file.") from e
        if "truncated" in text:
            why = (
                "it is truncated (shorter than its header says), e.g. an interrupted "
                "download or copy. Delete it and fetch it again"
            )
        elif "signature" in text and zipfile.is_zipfile(path):
            why = (
                "it is a zip archive, not HDF5. A whole-model .keras file is a zip that holds "
                "'model.weights.h5': extract that file and load it"
            )
        elif "signature" in text:
            why = "it is not an HDF5 file (Keras weight files are HDF5: .h5 or .weights.h5)"
        else:
            why = "h5py cannot open it as an HDF5 file"
        raise WeightFileError(f"Cannot read weights file '{path}': {why}. (h5py: {text})") from e


def _check_not_a_link(parent: h5py.Group, name: str) -> None:
    link = parent.get(name, getlink=True)
    if isinstance(link, (h5py.SoftLink, h5py.ExternalLink)):
        raise WeightFileError(
            f"Refusing to read '{file_label(parent)}': '{parent.name.rstrip('/')}/{name}' is an "
            f"HDF5 {type(link).__name__}. Weight files never need links, and a link can point "
            "outside the file (Keras refuses them too)."
        )


def get_group(parent: h5py.Group, path: str) -> h5py.Group:
    """The group at ``path`` (relative to ``parent``), walked component by component."""
    current = parent
    for part in path.split("/"):
        if not part:
            raise WeightFileError(f"Invalid path '{path}' in weights file '{file_label(parent)}'.")
        if part not in current:
            raise WeightFileError(
                f"Weights file '{file_label(parent)}' has no group '{current.name.rstrip('/')}/{part}'."
            )
        _check_not_a_link(current, part)
        current = current[part]
        if not isinstance(current, h5py.Group):
            raise WeightFileError(
                f"Weights file '{file_label(parent)}': '{current.name}' should be a group "
                f"but is a {type(current).__name__}."
            )
    return current


def get_dataset(parent: h5py.Group, path: str) -> h5py.Dataset:
    """The dataset at ``path`` (relative to ``parent``), after the safety checks above."""
    group_path, _, name = path.rpartition("/")
    group = get_group(parent, group_path) if group_path else parent
    label = file_label(parent)
    if not name or name not in group:
        raise WeightFileError(
            f"Weights file '{label}' lists a weight '{path}' under '{parent.name}' but holds no such dataset."
        )
    _check_not_a_link(group, name)
    dataset = group[name]
    if not isinstance(dataset, h5py.Dataset):
        raise WeightFileError(
            f"Weights file '{label}': '{dataset.name}' should be a dataset but is a {type(dataset).__name__}."
        )
    if dataset.external:
        raise WeightFileError(
            f"Refusing to read '{label}': dataset '{dataset.name}' keeps its data in external "
            f"file(s) {dataset.external} (Keras refuses them too)."
        )
    if dataset.is_virtual:
        raise WeightFileError(
            f"Refusing to read '{label}': dataset '{dataset.name}' is a virtual dataset "
            "(Keras refuses them too)."
        )
    if dataset.dtype.kind not in "fiub":
        raise WeightFileError(
            f"Weights file '{label}': dataset '{dataset.name}' holds {dataset.dtype} values, not numbers."
        )
    declared = math.prod(dataset.shape) * dataset.dtype.itemsize
    stored = dataset.id.get_storage_size()
    if declared > _BOMB_FLOOR_BYTES and declared > _BOMB_MAX_EXPANSION * stored:
        raise WeightFileError(
            f"Refusing to read '{label}': dataset '{dataset.name}' declares {declared:,} bytes "
            f"but stores only {stored:,}."
        )
    return dataset


@dataclass
class SavedWeight:
    """One array of a weights file, located but not read yet.

    Shapes are compared with the model before any data is read, so a file that
    does not fit costs no memory and changes nothing.

    Attributes:
        name: the name the file gives it (``'block1_conv1_W_1:0'``,
            ``'block1_conv1/kernel'`` or ``'0'``).
        shape: the saved shape, e.g. ``(3, 3, 3, 64)`` for ``block1_conv1``'s kernel.
        dataset: the h5py dataset (valid while the file is open).
    """

    name: str
    shape: tuple
    dataset: h5py.Dataset = field(repr=False)

    def read(self, layer_name: str | None = None, weight_name: str | None = None) -> np.ndarray:
        """The values as a new C-contiguous ``float32`` array of shape ``self.shape``.

        NaN, infinity, or float64 values beyond float32's range are refused
        (:func:`numvgg.io.checks.check_finite_weights`), naming ``layer_name``
        and ``weight_name`` (default: the dataset's path in the file).
        """
        try:
            values = self.dataset[()]
        except OSError as e:  # damaged chunks in an otherwise valid file
            raise WeightFileError(
                f"Cannot read dataset '{self.dataset.name}' from '{file_label(self.dataset)}': "
                f"the file is damaged. (h5py: {e})"
            ) from e
        label = file_label(self.dataset)
        check_finite_weights(
            layer_name or self.dataset.parent.name,
            weight_name or self.name,
            values,
            source=f"weights file '{label}' (dataset '{self.dataset.name}')",
        )
        return np.ascontiguousarray(values, dtype=np.float32)


def saved_weight(parent: h5py.Group, path: str, name: str | None = None) -> SavedWeight:
    """A :class:`SavedWeight` for the dataset at ``path`` under ``parent``."""
    dataset = get_dataset(parent, path)
    return SavedWeight(name or path, tuple(dataset.shape), dataset)


def _decode(item) -> str:
    return item.decode("utf8") if isinstance(item, (bytes, np.bytes_)) else str(item)


def read_name_list(group: h5py.Group, attr: str) -> list[str]:
    """A list of names stored in attribute ``attr``, or in ``attr0``, ``attr1``, ...
    when Keras had to split it. Byte strings (old files) and str both work."""
    if attr in group.attrs:
        chunks = [group.attrs[attr]]
    else:
        chunks = []
        while f"{attr}{len(chunks)}" in group.attrs:
            chunks.append(group.attrs[f"{attr}{len(chunks)}"])
    try:
        return [_decode(item) for chunk in chunks for item in np.atleast_1d(chunk)]
    except UnicodeDecodeError as e:
        raise WeightFileError(
            f"Weights file '{file_label(group)}': attribute '{attr}' of "
            f"'{group.name}' holds names that are not UTF-8 text; the file is "
            "damaged."
        ) from e


@contextlib.contextmanager
def damaged_file_errors(path, error_class=WeightFileError, what="weights file"):
    """Turn errors that h5py raises while walking an *open* file into an
    ``error_class`` (:class:`WeightFileError` or a subclass) naming ``path``;
    h5py's error stays chained.

    A damaged file can open fine and fail later, when a group, an attribute or
    a dataset's header is read: h5py then raises ``RuntimeError``,
    ``KeyError`` or ``OSError`` with HDF5's own words ("addr overflow",
    "bad object header"). Only errors raised *inside h5py* are converted, so a
    bug in numvgg still shows as itself.
    """
    try:
        yield
    except WeightFileError:
        raise
    except Exception as e:
        if not _raised_inside_h5py(e):
            raise
        raise error_class(
            f"Cannot read {what} '{path}': it is damaged (its HDF5 structure "
            f"cannot be read). (h5py: {type(e).__name__}: {e})"
        ) from e


def _raised_inside_h5py(error: BaseException) -> bool:
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and "h5py" in tb.tb_frame.f_code.co_filename


def write_name_list(group: h5py.Group, attr: str, names: list[str]) -> None:
    """Store ``names`` as UTF-8 byte strings under ``attr``, split into ``attr0``,
    ``attr1``, ... when one attribute would exceed the HDF5 header limit (Keras' rule)."""
    encoded = [n.encode("utf8") for n in names]
    if not encoded:
        group.attrs[attr] = np.zeros((0,))  # what Keras writes for "no weights"
        return
    too_long = [n for n in encoded if len(n) > HDF5_OBJECT_HEADER_LIMIT]
    if too_long:
        raise WeightFileError(f"Names too long to store in an HDF5 attribute: {too_long[:3]}")
    array = np.array(encoded)  # fixed-length bytes: dtype S<longest>
    n_chunks = 1
    while math.ceil(len(array) / n_chunks) * array.itemsize > HDF5_OBJECT_HEADER_LIMIT:
        n_chunks += 1
    if n_chunks == 1:
        group.attrs[attr] = array
    else:
        for i, chunk in enumerate(np.array_split(array, n_chunks)):
            group.attrs[f"{attr}{i}"] = chunk
