"""``image_dataset_from_directory``: batches of images and labels streamed from a folder.

The folder layout is Keras'::

    directory/
        cats/   cat001.jpg  cat002.jpg ...
        dogs/   dog001.jpg  ...

Each sub-folder is a class; classes are numbered in sorted (``sorted()``,
code-point) order of the folder names: ``cats`` -> 0, ``dogs`` -> 1.

What numvgg reproduces exactly (tests compare with Keras 3):

* **which files**: the extensions ``.bmp .gif .jpeg .jpg .png`` (any case);
  class folders walked recursively, sub-folders and files in sorted order;
  hidden class folders (``.name``) skipped; ``file_paths`` are the same strings;
* **the train / validation split**: Keras shuffles the whole file list once
  with ``np.random.RandomState(seed).shuffle`` and then keeps the last
  ``int(validation_split * N)`` files for validation. numvgg does the same,
  so with the same ``seed`` both libraries put the same files in each subset;
* **labels**: ``'int'`` -> int32 ``(B,)``; ``'binary'`` -> float32 ``(B, 1)``;
  ``'categorical'`` -> float32 one-hot ``(B, K)``; ``None`` -> images only;
* **pixels**: float32 ``(B, H, W, C)`` in 0..255, resized like
  ``tf.image.resize`` (see :mod:`numvgg.data.resize`): identical to Keras for
  JPEG (decoded as TF does, :mod:`numvgg.data.jpeg`), PNG, BMP and GIF with
  ``'bilinear'`` / ``'nearest'``;
* **the methods Keras scripts chain on**: the dataset is a
  :class:`~numvgg.data.pipeline.Dataset` (``map``, ``shuffle``, ``cache``,
  ``prefetch``, ...), and each batch's files are decoded in parallel threads;
* the printed lines ``Found N files belonging to K classes.`` and
  ``Using M files for training.``

Where numvgg differs, and why:

* **Decoding.** JPEGs are decoded by libjpeg-turbo with TF's settings (see
  :mod:`numvgg.data.jpeg`): identical pixels, also for ``'grayscale'``
  (libjpeg's luma). Other formats are decoded by Pillow: PNG, BMP and GIF
  pixels are identical in ``'rgb'``; ``color_mode='grayscale'`` of a colour
  PNG/BMP/GIF uses Pillow's ``L`` formula, which may differ from TF's by 1.
  16-bit PNGs are reduced to their high byte, as TF does; a 1-bit PNG read as
  ``'rgba'`` gets alpha 255 (TF gives 1).
* **Per-epoch shuffling.** Keras shuffles with a tf.data buffer of
  ``8 * batch_size`` elements, reshuffled every epoch. numvgg draws a full
  random permutation every epoch instead, from ``np.random.default_rng((seed,
  epoch))``: deterministic for a given seed, different each epoch, but not
  TF's order (TF's generator cannot be reproduced without TF).
* **Unreadable files.** Keras stops in the middle of an epoch on a file TF
  cannot decode. numvgg checks every file's header when the dataset is made
  and, with ``on_bad_file='warn'`` (default), leaves unreadable files out
  with one warning listing them (the split is made before, so the other
  files stay in the subset Keras would put them in); a file that only fails
  while its pixels are decoded (a truncated JPEG) is skipped from its batch
  with a warning. ``on_bad_file='error'`` raises :class:`DatasetError`
  naming the files instead.
* **Smaller things.** Images are always float32 (Keras yields ``uint8`` with
  ``interpolation='nearest'``; the values are the same). ``color_mode='rgba'``
  works for JPEGs (TF refuses them). ``verbose=False`` also silences the
  ``Using M files ...`` line, which Keras prints regardless.
* **Clearer errors** for a folder without class sub-folders, class folders
  without images, and ``label_mode='binary'`` without exactly two classes.
  A ``validation_split`` that leaves no file for validation is an error
  (Keras would silently hand *every* file to the validation subset).
"""

from __future__ import annotations

import inspect
import io
import math
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..errors import DatasetError
from .directory import ALLOWLIST_FORMATS, find_unreadable, index_directory, shuffle_like_keras, split_subset
from .images import COLOR_MODES, ImageFileError, convert_color_mode, read_image_bytes
from .jpeg import decode_jpeg, is_jpeg
from .pipeline import Dataset
from .resize import aspect_ratio_crop, check_interpolation, resize

LABEL_MODES = ("int", "categorical", "binary", None)
CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}
BAD_FILE_POLICIES = ("warn", "error")


# --------------------------------------------------------------------------
# 1. Loading one image and encoding labels
# --------------------------------------------------------------------------
def _high_byte_if_16_bit(img: Image.Image) -> Image.Image:
    """16-bit grayscale -> 8-bit by keeping the high byte (``v >> 8``), as TF's decoder does."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        values = np.asarray(img).astype(np.int64) >> 8
        return Image.fromarray(np.clip(values, 0, 255).astype(np.uint8), mode="L")
    return img


@dataclass(frozen=True)
class ImageSpec:
    """How every image of a dataset is read: colour mode, size, resampling, cropping."""

    color_mode: str
    image_size: tuple[int, int]
    interpolation: str
    crop_to_aspect_ratio: bool

    @property
    def shape(self) -> tuple[int, int, int]:
        return (*self.image_size, CHANNELS[self.color_mode])

    def load(self, path) -> np.ndarray:
        """Read, convert and resize one file: float32 ``(H, W, C)``, values 0..255.

        Raises:
            ImageFileError: the file cannot be read or decoded (names it).
        """
        data = read_image_bytes(path)
        pixels = None
        if is_jpeg(data):  # TF's JPEG decoder, bit for bit (see numvgg.data.jpeg)
            try:
                pixels = decode_jpeg(data, self.color_mode)
            except ValueError as e:
                raise ImageFileError(f"Cannot decode image '{path}': {e}") from e
        if pixels is None:  # PNG, BMP, GIF (identical in Pillow), or no simplejpeg
            try:
                img = Image.open(io.BytesIO(data))
                img = convert_color_mode(_high_byte_if_16_bit(img), self.color_mode)
                pixels = np.asarray(img)  # decodes now: (H, W) or (H, W, C) uint8
            except (OSError, SyntaxError, ValueError) as e:
                raise ImageFileError(f"Cannot decode image '{path}': {e}") from e
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]  # (H, W) -> (H, W, 1)
        if self.crop_to_aspect_ratio:
            pixels = aspect_ratio_crop(pixels, self.image_size)
        return resize(pixels, self.image_size, self.interpolation)  # (H, W, C) float32


def encode_labels(labels: np.ndarray, label_mode: str, num_classes: int) -> np.ndarray:
    """Integer class indices ``(B,)`` -> the array Keras yields for ``label_mode``.

    ``'int'``: int32 ``(B,)``; ``'binary'``: float32 ``(B, 1)``;
    ``'categorical'``: float32 one-hot ``(B, K)``.
    """
    if label_mode == "int":
        return labels.astype(np.int32)
    if label_mode == "binary":
        return labels.astype(np.float32)[:, None]  # (B,) -> (B, 1)
    return np.eye(num_classes, dtype=np.float32)[labels]  # (B, K)


# --------------------------------------------------------------------------
# 2. The dataset object
# --------------------------------------------------------------------------
def _load_or_error(spec: ImageSpec, path):
    """``spec.load(path)``, or the :class:`ImageFileError` it raised (threads report back)."""
    try:
        return spec.load(path)
    except ImageFileError as e:
        return e


_DECODE_POOL = None


def _decode_pool() -> ThreadPoolExecutor:
    """One shared pool of decoding threads (one per CPU), made on first use."""
    global _DECODE_POOL
    if _DECODE_POOL is None:
        _DECODE_POOL = ThreadPoolExecutor(max(1, os.cpu_count() or 1), thread_name_prefix="numvgg-decode")
    return _DECODE_POOL


class ImageDataset(Dataset):
    """A re-iterable stream of ``(images, labels)`` batches read from disk.

    A :class:`~numvgg.data.pipeline.Dataset`, so tf.data's methods chain on
    it (``map``, ``shuffle``, ``cache``, ``prefetch``, ...). Only one batch is
    in memory at a time; the files of a batch are decoded in parallel threads
    (as Keras' own ``map(..., num_parallel_calls=AUTOTUNE)`` does). Iterating
    gives, per batch, ``(x, y)`` with ``x`` float32 ``(B, H, W, C)`` and ``y``
    as :func:`encode_labels` describes, or just ``x`` when ``label_mode`` is
    ``None``. The last batch may be smaller. With ``batch_size=None`` single
    samples ``(H, W, C)`` are yielded instead.

    Attributes:
        class_names: class names, index order (``None`` without labels).
        file_paths: the files, in their un-shuffled-per-epoch order.
        labels: int32 class index per file (``None`` without labels).
        reshuffle_each_iteration: does every pass draw a new file order?
    """

    def __init__(
        self,
        file_paths,
        labels,
        class_names,
        label_mode,
        spec: ImageSpec,
        batch_size=32,
        shuffle=False,
        seed=0,
        on_bad_file="warn",
    ):
        self.file_paths = list(file_paths)
        self.labels = labels
        self.class_names = class_names
        self.label_mode = label_mode
        self.spec = spec
        self.batch_size = batch_size
        # Not called ``shuffle``: that name is tf.data's method (ds.shuffle(1000)).
        self.reshuffle_each_iteration = bool(shuffle)
        self.seed = seed
        self.on_bad_file = on_bad_file
        self._epoch = 0
        self._warned: set[str] = set()

    # -- size ----------------------------------------------------------------
    def cardinality(self) -> int:
        """Number of batches per pass (number of samples when ``batch_size`` is ``None``)."""
        step = self.batch_size or 1
        return math.ceil(len(self.file_paths) / step)

    # -- iteration -------------------------------------------------------------
    def _iterate(self):
        """One pass. Each pass draws a new order when ``reshuffle_each_iteration`` is on."""
        order = np.arange(len(self.file_paths))
        if self.reshuffle_each_iteration:
            order = np.random.default_rng((self.seed, self._epoch)).permutation(len(order))
            self._epoch += 1
        step = self.batch_size or 1
        for start in range(0, len(order), step):
            batch = self._load_batch(order[start : start + step])
            if batch is None:  # every file of this batch was unreadable
                continue
            if self.batch_size is None:  # unbatched: drop the batch axis
                batch = tuple(b[0] for b in batch) if isinstance(batch, tuple) else batch[0]
            yield batch

    def _load_batch(self, indices):
        """Read the files at ``indices``: ``(x, y)``, ``x`` alone, or ``None`` if all failed."""
        paths = [self.file_paths[i] for i in indices]
        if len(paths) > 1:
            loaded = list(_decode_pool().map(lambda p: _load_or_error(self.spec, p), paths))
        else:
            loaded = [_load_or_error(self.spec, p) for p in paths]
        images, kept = [], []
        for i, path, result in zip(indices, paths, loaded):
            if isinstance(result, ImageFileError):
                if self.on_bad_file == "error":
                    raise DatasetError(f"Cannot load '{path}' while reading a batch: {result}") from result
                if path not in self._warned:
                    self._warned.add(path)
                    warnings.warn(f"Skipping unreadable image '{path}': {result}", stacklevel=4)
                continue
            images.append(result)
            kept.append(i)
        if not images:
            return None
        x = np.stack(images)  # (B, H, W, C) float32
        if self.label_mode is None:
            return x
        y = encode_labels(self.labels[kept], self.label_mode, len(self.class_names))
        return x, y

    # -- transformations ------------------------------------------------------------
    def map(self, map_func, num_parallel_calls=None, deterministic=None) -> Dataset:
        """A new dataset applying ``map_func`` to every batch, as ``tf.data.Dataset.map`` does.

        A labelled batch is passed as two arguments and ``map_func`` must return
        the new pair: ``ds.map(lambda x, y: (preprocess_input(x), y))``. An
        unlabelled batch is passed alone: ``ds.map(preprocess_input)``.
        ``num_parallel_calls`` as in :meth:`Dataset.map`. The original dataset
        is unchanged.
        """
        if not callable(map_func):
            raise TypeError(f"map() needs a function, got {type(map_func).__name__}.")
        nargs = 1 if self.label_mode is None else 2
        try:  # the element structure is known here: check map_func fits before any pass
            inspect.signature(map_func).bind(*range(nargs))
        except TypeError as e:
            what = (
                "(images, labels) pairs, so fn is called as fn(images, labels) and must "
                "return a pair, e.g. ds.map(lambda x, y: (preprocess_input(x), y))"
                if nargs == 2
                else "images only, so fn is called as fn(images)"
            )
            raise TypeError(
                f"map(): this dataset yields {what}; {map_func!r} cannot be called with {nargs} argument(s)."
            ) from e
        except ValueError:
            pass  # no signature available (some built-ins): let the call decide
        call = "fn(images, labels)" if nargs == 2 else "fn(images)"

        def noted(*args):
            try:
                return map_func(*args)
            except Exception as e:
                # The traceback points into the user's function; say how it was called.
                e.add_note(f"(raised by the function given to map(), called as {call})")
                raise

        return super().map(noted, num_parallel_calls, deterministic)

    def __repr__(self) -> str:
        y = "no labels" if self.label_mode is None else f"label_mode={self.label_mode!r}"
        return (
            f"<ImageDataset {len(self.file_paths)} files, {len(self)} batches of "
            f"{self.batch_size}, images {self.spec.shape} float32, {y}>"
        )


# --------------------------------------------------------------------------
# 3. The Keras entry point
# --------------------------------------------------------------------------
def _check_arguments(
    labels,
    label_mode,
    class_names,
    color_mode,
    image_size,
    batch_size,
    validation_split,
    subset,
    shuffle,
    seed,
    on_bad_file,
):
    if isinstance(labels, str) and labels != "inferred":
        raise DatasetError(
            f"`labels` must be 'inferred', None, or a list of integer labels. Received: labels={labels!r}"
        )
    if label_mode not in LABEL_MODES:
        raise DatasetError(
            '`label_mode` argument must be one of "int", "categorical", "binary", '
            f"or None. Received: label_mode={label_mode!r}"
        )
    if color_mode not in COLOR_MODES:
        raise DatasetError(
            f'`color_mode` must be one of {{"rgb", "rgba", "grayscale"}}. Received: color_mode={color_mode!r}'
        )
    if (
        not isinstance(image_size, (list, tuple))
        or len(image_size) != 2
        or not all(isinstance(s, (int, np.integer)) and s > 0 for s in image_size)
    ):
        raise DatasetError(
            "Invalid `image_size` value. Expected a tuple of 2 positive integers "
            f"(height, width). Received: image_size={image_size}"
        )
    if batch_size is not None and (not isinstance(batch_size, (int, np.integer)) or batch_size < 1):
        raise DatasetError(f"batch_size must be a positive integer or None. Received: {batch_size!r}")
    if validation_split and not 0 < validation_split < 1:
        raise DatasetError(f"`validation_split` must be between 0 and 1, received: {validation_split}")
    if (validation_split or subset) and not (validation_split and subset):
        raise DatasetError("If `subset` is set, `validation_split` must be set, and inversely.")
    if subset not in ("training", "validation", "both", None):
        raise DatasetError(f'`subset` must be either "training", "validation" or "both", received: {subset}')
    if validation_split and shuffle and seed is None:
        raise DatasetError(
            "If using `validation_split` and shuffling the data, you must provide a "
            "`seed` argument, to make sure that there is no overlap between the "
            "training and validation subset."
        )
    if on_bad_file not in BAD_FILE_POLICIES:
        raise DatasetError(f"on_bad_file must be 'warn' or 'error'. Received: {on_bad_file!r}")


def _drop_unreadable(file_paths, labels, on_bad_file, subset_name):
    """Header-check every file; warn and drop, or raise, per ``on_bad_file``."""
    bad = find_unreadable(file_paths)
    if not bad:
        return file_paths, labels
    listing = "\n".join(f"  {path}: {reason}" for path, reason in bad[:20])
    more = f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
    if on_bad_file == "error":
        raise DatasetError(
            f"{len(bad)} of the {len(file_paths)} {subset_name} files cannot be read as "
            f"images (pass on_bad_file='warn' to skip them):\n{listing}{more}"
        )
    warnings.warn(
        f"Skipping {len(bad)} of the {len(file_paths)} {subset_name} files, which cannot "
        f"be read as images:\n{listing}{more}",
        stacklevel=4,
    )
    bad_set = {path for path, _ in bad}
    keep = [i for i, path in enumerate(file_paths) if path not in bad_set]
    return [file_paths[i] for i in keep], (None if labels is None else labels[keep])


def image_dataset_from_directory(
    directory,
    labels="inferred",
    label_mode="int",
    class_names=None,
    color_mode="rgb",
    batch_size=32,
    image_size=(256, 256),
    shuffle=True,
    seed=None,
    validation_split=None,
    subset=None,
    interpolation="bilinear",
    follow_links=False,
    crop_to_aspect_ratio=False,
    verbose=True,
    on_bad_file="warn",
):
    """Make a dataset of image batches from a folder of class sub-folders, like Keras 3.

    Args:
        directory: root folder; with ``labels='inferred'`` one sub-folder per class.
        labels: ``'inferred'``, ``None``, or a list of int labels (one per file
            in sorted path order).
        label_mode: ``'int'`` | ``'categorical'`` | ``'binary'`` (exactly two
            classes) | ``None`` (images only).
        class_names: with ``'inferred'``, which class folders to use, in index order.
        color_mode: ``'rgb'`` (C=3), ``'rgba'`` (C=4) or ``'grayscale'`` (C=1).
        batch_size: images per batch (``None``: single samples).
        image_size: ``(H, W)`` every image is resized to.
        shuffle: shuffle the file list once (Keras' seeded shuffle) and again
            every pass; ``False`` keeps the sorted order.
        seed: makes the split and every shuffle reproducible; required with
            ``validation_split`` and ``shuffle``. ``None`` draws one from
            ``np.random`` as Keras does.
        validation_split: fraction of the files kept for validation (the last
            ``int(split * N)`` after the shuffle).
        subset: ``'training'``, ``'validation'``, or ``'both'`` (returns
            ``[train, val]``; the validation set is not reshuffled per pass).
        interpolation: resize method, see :mod:`numvgg.data.resize`.
        follow_links: also walk symlinked sub-folders.
        crop_to_aspect_ratio: centre-crop each image to the aspect ratio of
            ``image_size`` before resizing, so nothing is stretched.
        verbose: print Keras' ``Found ...`` / ``Using ...`` lines.
        on_bad_file: ``'warn'`` (skip unreadable files with a warning) or
            ``'error'``; see the module docstring.
    Returns:
        An :class:`ImageDataset` (a list of two with ``subset='both'``).
    Raises:
        DatasetError: bad arguments, a folder that does not fit the layout,
            or (``on_bad_file='error'``) unreadable image files.
    """
    if isinstance(image_size, (int, np.integer)):
        image_size = (image_size, image_size)
    _check_arguments(
        labels,
        label_mode,
        class_names,
        color_mode,
        image_size,
        batch_size,
        validation_split,
        subset,
        shuffle,
        seed,
        on_bad_file,
    )
    try:
        interpolation = check_interpolation(interpolation)
    except ValueError as e:
        raise DatasetError(str(e)) from e
    if labels is None or label_mode is None:  # Keras: either one means "no labels" for both
        labels, label_mode = None, None
    if seed is None:
        seed = np.random.randint(1e6)  # as Keras: reproducible under np.random.seed(...)

    file_paths, label_array, class_names = index_directory(directory, labels, class_names, follow_links)
    if verbose:
        if label_array is None:
            print(f"Found {len(file_paths)} files.")
        else:
            print(f"Found {len(file_paths)} files belonging to {len(class_names)} classes.")
    if not file_paths:
        raise DatasetError(f"No images found in directory {directory}. Allowed formats: {ALLOWLIST_FORMATS}")
    if label_mode == "binary" and len(class_names) != 2:
        raise DatasetError(
            f"label_mode='binary' needs exactly 2 classes, but '{directory}' gives "
            f"{len(class_names)}: {class_names}. Use label_mode='int' or 'categorical' for "
            f"{len(class_names)} classes, or arrange the images in two class folders."
        )
    if label_mode == "categorical" and label_array.max() >= len(class_names):
        raise DatasetError(
            f"label_mode='categorical' needs labels 0..{len(class_names) - 1}; "
            f"found label {int(label_array.max())}."
        )
    if shuffle:
        file_paths, label_array = shuffle_like_keras(file_paths, label_array, seed)

    spec = ImageSpec(
        color_mode, (int(image_size[0]), int(image_size[1])), interpolation, bool(crop_to_aspect_ratio)
    )

    def make(subset_name, reshuffle):
        paths, subset_labels = split_subset(file_paths, label_array, validation_split, subset_name, verbose)
        paths, subset_labels = _drop_unreadable(paths, subset_labels, on_bad_file, subset_name or "dataset")
        return ImageDataset(
            paths,
            subset_labels,
            class_names,
            label_mode,
            spec,
            batch_size=batch_size,
            shuffle=reshuffle,
            seed=seed,
            on_bad_file=on_bad_file,
        )

    if subset == "both":
        return [make("training", shuffle), make("validation", False)]
    return make(subset, shuffle)
