"""Which files make a Keras image dataset, and how Keras splits them.

The rules of ``keras.utils.image_dataset_from_directory`` before any pixel is
read: find the class folders and their image files, number the classes,
shuffle the list once with the seed, and cut off the validation files.
Reproduced step for step so that numvgg and Keras pick the same files for
the same subset (``tests/test_dataset.py`` compares them).
"""

from __future__ import annotations

import os
import warnings
from collections import Counter

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import DatasetError

ALLOWLIST_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")


def list_class_folders(directory) -> list[str]:
    """Sub-folder names of ``directory`` in sorted order, hidden ones left out."""
    return [
        name
        for name in sorted(os.listdir(directory))
        if os.path.isdir(os.path.join(directory, name)) and not name.startswith(".")
    ]


def list_image_files(folder, follow_links: bool = False, seen: set | None = None) -> list[str]:
    """Image files under ``folder`` (recursively), relative to ``folder``.

    Order: folders sorted by path, then file names sorted within each folder,
    which is Keras' order. Only the extensions in ``ALLOWLIST_FORMATS`` count
    (case-insensitive).

    ``follow_links`` also enters symlinked sub-folders, wherever they point
    (as Keras does: a link to a shared image store outside the dataset is a
    normal use). Unlike Keras, each real folder is entered at most once: a
    link back to a folder already walked (``up -> ..``, ``again -> .``) is
    skipped with a warning, so a loop can neither repeat samples nor walk
    forever. ``seen`` holds the real paths not to enter (shared between the
    class folders of one dataset, see :func:`index_directory`).
    """
    if seen is None:
        seen = {os.path.realpath(folder)}
    skipped = []
    walked = []
    for root, dirs, files in os.walk(folder, followlinks=follow_links):
        walked.append((root, files))
        if not follow_links:
            continue
        kept = []
        for name in dirs:
            real = os.path.realpath(os.path.join(root, name))
            if real in seen:
                skipped.append(os.path.join(root, name))
            else:
                seen.add(real)
                kept.append(name)
        dirs[:] = kept  # os.walk only enters what is left here
    if skipped:
        shown = ", ".join(f"'{p}'" for p in skipped[:3]) + (" ..." if len(skipped) > 3 else "")
        warnings.warn(
            f"follow_links=True: skipped {len(skipped)} linked folder(s) that lead to a "
            f"folder already read (a loop, or another class's folder): {shown}. Each "
            "folder is read once.",
            stacklevel=3,
        )
    found = []
    for root, files in sorted(walked, key=lambda t: t[0]):
        for name in sorted(files):
            if name.lower().endswith(ALLOWLIST_FORMATS):
                found.append(os.path.relpath(os.path.join(root, name), folder))
    return found


def _other_extensions(folder) -> str:
    """A short note on the files that were *not* taken, e.g. ``'.webp' x3``."""
    counts = Counter(
        os.path.splitext(name)[1].lower() or "(none)"
        for _, _, files in os.walk(folder)
        for name in files
        if not name.lower().endswith(ALLOWLIST_FORMATS)
    )
    return ", ".join(f"'{ext}' x{n}" for ext, n in counts.most_common(5))


def index_directory(directory, labels="inferred", class_names=None, follow_links=False):
    """List the image files of ``directory`` and their labels, unshuffled.

    Args:
        directory: the dataset's root folder.
        labels: ``'inferred'`` (one sub-folder per class), ``None`` (no labels,
            every image below ``directory``), or a list of integer labels, one
            per image file in the sorted order described in
            :func:`list_image_files`.
        class_names: with ``'inferred'``: the class folders to use, in this order.
    Returns:
        ``(file_paths, labels, class_names)``: ``file_paths`` are
        ``os.path.join(directory, relative path)`` strings, class by class;
        ``labels`` an int32 array ``(N,)`` or ``None``; ``class_names`` the
        list of class names (``None`` without labels).
    Raises:
        DatasetError: missing folder, no class sub-folders, or ``class_names``
            / ``labels`` that do not fit the folder.
    """
    if not os.path.isdir(directory):
        raise DatasetError(f"Directory '{directory}' does not exist or is not a folder.")
    if isinstance(labels, str) and labels == "inferred":
        folders = list_class_folders(directory)
        if not folders:
            loose = list_image_files(directory)
            hint = (
                f" It holds {len(loose)} image file(s) directly; move them into one sub-folder "
                "per class, or pass labels=None to load them without labels."
                if loose
                else ""
            )
            raise DatasetError(
                f"No class sub-folders in '{directory}'. With labels='inferred' the directory must "
                f"contain one sub-folder per class (e.g. {os.path.join(str(directory), 'cats')}/ "
                f"and {os.path.join(str(directory), 'dogs')}/), each holding that class's "
                f"images.{hint}"
            )
        if class_names is not None:
            missing = [name for name in class_names if name not in folders]
            if missing:
                raise DatasetError(
                    f"class_names {list(class_names)} do not match the sub-folders of "
                    f"'{directory}': no folder for {missing}. Sub-folders found: {folders}."
                )
            folders = list(class_names)  # the caller's order decides the indices
        file_paths, label_list, empty = [], [], []
        # Links may lead anywhere but never back to the root or into another class's folder.
        seen = {os.path.realpath(directory)}
        seen |= {os.path.realpath(os.path.join(directory, name)) for name in folders}
        for index, name in enumerate(folders):
            files = list_image_files(os.path.join(directory, name), follow_links, seen)
            if not files:
                empty.append(name)
            file_paths += [os.path.join(directory, name, f) for f in files]
            label_list += [index] * len(files)
        if len(empty) == len(folders):
            others = _other_extensions(directory)
            raise DatasetError(
                f"The class folders {folders} in '{directory}' contain no images with an allowed "
                f"extension {ALLOWLIST_FORMATS}." + (f" Other files found: {others}." if others else "")
            )
        if empty:
            warnings.warn(
                f"Class folder(s) {empty} in '{directory}' contain no images "
                f"{ALLOWLIST_FORMATS}. They keep their class index, as in Keras, but no "
                "sample will carry it.",
                stacklevel=3,
            )
        return file_paths, np.asarray(label_list, dtype=np.int32), folders

    if class_names is not None:
        raise DatasetError(
            "class_names can only be given with labels='inferred' (with explicit or "
            "no labels, the class names come from the labels)."
        )
    file_paths = [os.path.join(directory, f) for f in list_image_files(directory, follow_links)]
    if labels is None:
        return file_paths, None, None
    label_array = np.asarray(labels)
    if label_array.ndim != 1 or not np.issubdtype(label_array.dtype, np.integer):
        raise DatasetError(
            "`labels` must be 'inferred', None, or a list of integer labels, one "
            f"per image file. Received: labels={labels!r:.200}"
        )
    if len(label_array) != len(file_paths):
        raise DatasetError(
            f"Expected the lengths of `labels` to match the number of files in the "
            f"target directory. len(labels) is {len(label_array)} while we found "
            f"{len(file_paths)} files in directory {directory}."
        )
    names = [str(v) for v in sorted(set(label_array.tolist()))]
    return file_paths, label_array.astype(np.int32), names


def shuffle_like_keras(file_paths, labels, seed: int):
    """The one global shuffle Keras does before splitting, reproduced.

    Keras calls ``np.random.RandomState(seed).shuffle`` on the path list and,
    with a fresh generator of the same seed, on the label array: both get one
    permutation. numvgg shuffles an index array the same way and applies it
    to both, which gives the same order (the tests check it against Keras).

    Returns new ``(file_paths, labels)``; the inputs are left untouched.
    """
    order = np.arange(len(file_paths))
    np.random.RandomState(seed).shuffle(order)
    file_paths = [file_paths[i] for i in order]
    return file_paths, (None if labels is None else labels[order])


def split_subset(file_paths, labels, validation_split, subset, verbose=True):
    """Keep the files of one subset: validation is the *last* ``int(split * N)`` files.

    Prints Keras' line ``Using M files for training.`` (or ``validation``).
    Returns ``(file_paths, labels)``; all of them when ``validation_split`` is unset.
    """
    if not validation_split:
        return file_paths, labels
    num_val = int(validation_split * len(file_paths))
    if num_val == 0:
        raise DatasetError(
            f"validation_split={validation_split} of {len(file_paths)} files leaves "
            f"int({validation_split} * {len(file_paths)}) = 0 files for validation. Use a larger "
            "validation_split or add images."
        )
    if subset == "training":
        if verbose:
            print(f"Using {len(file_paths) - num_val} files for training.")
        return file_paths[:-num_val], (None if labels is None else labels[:-num_val])
    if verbose:
        print(f"Using {num_val} files for validation.")
    return file_paths[-num_val:], (None if labels is None else labels[-num_val:])


def find_unreadable(file_paths) -> list[tuple[str, str]]:
    """Files whose header Pillow cannot read, with the reason: ``[(path, reason), ...]``.

    Only the header is read (cheap), so a file cut short in its pixel data
    passes here and is caught when its batch is loaded.
    """
    bad = []
    for path in file_paths:
        try:
            if os.path.getsize(path) == 0:
                bad.append((path, "empty file (0 bytes)"))
                continue
            with Image.open(path) as img:
                if img.size[0] == 0 or img.size[1] == 0:
                    bad.append((path, "image of size 0"))
        except UnidentifiedImageError:
            bad.append((path, "not an image Pillow can read"))
        except Exception as e:  # Pillow raises many types for damaged files; all mean "unreadable"
            bad.append((path, f"{type(e).__name__}: {e}"))
    return bad
