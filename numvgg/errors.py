"""numvgg's own exceptions.

Each subclasses the built-in exception a Keras user would catch (``ValueError``,
``OSError``), so ``except ValueError`` keeps working, while the message names
the file, the layer and the shapes involved.
"""


class NumvggError(Exception):
    """Base class of every error numvgg raises on purpose."""


class ShapeError(NumvggError, ValueError):
    """An array or weight does not have the shape a layer needs."""


class WeightFileError(NumvggError, ValueError):
    """A weights file cannot be read, or does not fit the model."""


class WeightDownloadError(NumvggError, OSError):
    """A published weights file is not cached and cannot be downloaded."""


class DatasetError(NumvggError, ValueError):
    """An image folder cannot be turned into a dataset."""


class ImageFileError(NumvggError, OSError):
    """An image file exists but Pillow cannot read it (corrupt, truncated,
    or not an image at all)."""


class ImageNotFoundError(ImageFileError, FileNotFoundError):
    """The image file does not exist (``except FileNotFoundError`` catches it,
    as it catches Keras' error)."""


class ClassIndexError(NumvggError, ValueError):
    """``imagenet_class_index.json`` cannot be read or is not the ImageNet index."""


class NonFiniteError(NumvggError, ValueError):
    """Inputs or targets hold NaN or infinite values; the message names the
    samples (or the epoch and step of a dataset's batch) that hold them."""


class TrainingStateError(WeightFileError):
    """A training-state file (weights, optimizer slots, epoch, random
    generators) cannot be read, or does not fit the compiled model."""
