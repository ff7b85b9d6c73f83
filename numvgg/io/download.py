"""Find or fetch the published files (VGG16 weights, ImageNet class index), in Keras' spirit.

``get_file`` looks for the file, in order, in

1. the folders the caller passes (``search_dirs``),
2. this checkout's ``weights/`` folder (see ``weights/README.md``),
3. Keras' cache: ``$KERAS_HOME/models`` if ``KERAS_HOME`` is set, else
   ``~/.keras/models``, and ``/tmp/.keras/models`` (Keras' fallback when the
   home folder is not writable).

A user who ran Keras once already has the files there, so nothing is
downloaded twice. A file whose md5 does not match is never used: in the
cache it is downloaded again, elsewhere it is skipped with a warning.

A download goes to a temporary name next to its final place, with a progress
bar on stderr, and is renamed only after its hash matches and, when the
server said how long it is (``Content-Length``), after every byte arrived: a
download cut short is never kept, even without a hash. A server silent for
``READ_TIMEOUT_SECONDS`` (60 s), or sending less than ``STALL_MIN_BYTES``
(64 KiB) in any ``STALL_SECONDS`` (120 s), is given up with a message saying so.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.request import urlopen

from ..errors import WeightDownloadError

# The checkout's own weights/ folder: numvgg/io/download.py -> <checkout>/weights
CHECKOUT_WEIGHTS_DIR = str(Path(__file__).resolve().parents[2] / "weights")

_CHUNK_BYTES = 1 << 20
# A server that sends nothing for this long is given up (the socket's read timeout).
READ_TIMEOUT_SECONDS = 60
# A server that sends *something* but less than STALL_MIN_BYTES in any
# STALL_SECONDS window (one byte every 5 s never trips a read timeout) is stalled.
STALL_SECONDS = 120
STALL_MIN_BYTES = 64 * 1024


@dataclass(frozen=True)
class PublishedFile:
    """A file Keras downloads: its cache name, its address and its md5."""

    fname: str
    origin: str
    md5: str


_KERAS_VGG16 = "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
VGG16_WEIGHTS = PublishedFile(
    "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
    _KERAS_VGG16 + "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
    "64373286793e3c8b2b4e3219cbf3544b",
)
VGG16_WEIGHTS_NOTOP = PublishedFile(
    "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
    _KERAS_VGG16 + "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "6d6bbae143d832006294945121d1f1fc",
)
IMAGENET_CLASS_INDEX = PublishedFile(
    "imagenet_class_index.json",
    "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json",
    "c2c37ea517e94d9795004a39431a14cb",
)


# -- folders --------------------------------------------------------------------------
def keras_home() -> str:
    """Keras' base folder: ``$KERAS_HOME``, else ``~/.keras``."""
    return os.path.expanduser(os.environ.get("KERAS_HOME") or os.path.join("~", ".keras"))


def _tmp_keras_home() -> str:
    return os.path.join("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir(), ".keras")


def _subdir(base: str, cache_subdir: str) -> str:
    # An absolute cache_subdir is used as is (Keras allows it).
    return cache_subdir if os.path.isabs(cache_subdir) else os.path.join(base, cache_subdir)


def _is_writable_dir(path: str) -> bool:
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK)


def cache_dir(cache_subdir: str = "models") -> str:
    """The folder downloads go to: ``<keras_home>/<cache_subdir>``, or
    ``/tmp/.keras/<cache_subdir>`` when that cannot be written (Keras' fallback).
    Creates it."""
    preferred = _subdir(keras_home(), cache_subdir)
    if _is_writable_dir(preferred):
        return preferred
    fallback = _subdir(_tmp_keras_home(), cache_subdir)
    if _is_writable_dir(fallback):
        return fallback
    raise WeightDownloadError(
        f"Neither '{preferred}' nor '{fallback}' can be written to store downloaded files."
    )


def search_folders(cache_subdir: str = "models", search_dirs=()) -> list[str]:
    """Every folder ``get_file`` looks in, in order, without duplicates."""
    folders = [os.fspath(d) for d in search_dirs]
    folders.append(CHECKOUT_WEIGHTS_DIR)
    folders.append(_subdir(keras_home(), cache_subdir))
    folders.append(_subdir(_tmp_keras_home(), cache_subdir))
    unique = []
    for folder in folders:
        folder = os.path.abspath(os.path.expanduser(folder))
        if folder not in unique:
            unique.append(folder)
    return unique


# -- hashes ---------------------------------------------------------------------------------
def _hasher(file_hash: str):
    # Keras' "auto": a 64-character hash is sha256, anything else md5.
    return hashlib.sha256() if len(file_hash) == 64 else hashlib.md5(usedforsecurity=False)


def hash_of(path: str, file_hash: str) -> str:
    """The hex digest of ``path`` with the algorithm ``file_hash`` implies (md5 or sha256)."""
    hasher = _hasher(file_hash)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK_BYTES), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def _algorithm(file_hash: str) -> str:
    return "sha256" if len(file_hash) == 64 else "md5"


# -- progress -------------------------------------------------------------------------------
class _ProgressBar:
    """``12.0/58.9 MB [=====>........................]  20%`` on stderr, redrawn in place
    on a terminal; elsewhere (logs, CI) only the final line is printed."""

    def __init__(self, total_bytes: int | None, stream=None, width: int = 30):
        self.total = total_bytes
        self.stream = stream or sys.stderr
        self.width = width
        self.done = 0
        self.live = hasattr(self.stream, "isatty") and self.stream.isatty()

    def _line(self) -> str:
        mb = self.done / 1e6
        if not self.total:
            return f"{mb:8.1f} MB"
        fraction = min(self.done / self.total, 1.0)
        filled = int(fraction * self.width)
        arrow = ">" if filled < self.width else ""
        bar = "=" * filled + arrow + "." * (self.width - filled - len(arrow))
        return f"{mb:8.1f}/{self.total / 1e6:.1f} MB [{bar}] {fraction:4.0%}"

    def update(self, n_bytes: int) -> None:
        self.done += n_bytes
        if self.live:
            self.stream.write("\r" + self._line())
            self.stream.flush()

    def close(self) -> None:
        self.stream.write(("\r" if self.live else "") + self._line() + "\n")
        self.stream.flush()


# -- get_file -------------------------------------------------------------------------------
def get_file(
    fname: str | None,
    origin: str,
    file_hash: str | None = None,
    cache_subdir: str = "models",
    search_dirs=(),
    timeout: float | None = None,
) -> str:
    """The local path of ``fname``: found in a known folder, or downloaded from ``origin``.

    Args:
        fname: the file's name in the cache; ``None`` takes it from ``origin``.
        origin: its address (``https://...``; ``file://...`` works too).
        file_hash: expected md5 (32 hex digits) or sha256 (64). A file that
            does not match is never returned.
        cache_subdir: the folder under Keras' cache (``'models'`` for weights).
        search_dirs: extra folders to look in first.
        timeout: seconds the connection may stay silent before the download
            gives up (the demo passes a short one).

    Returns:
        The path of a file whose hash matches (or of the first file found when
        ``file_hash`` is None).

    Raises:
        WeightDownloadError: the file is nowhere and cannot be downloaded (no
            network, bad address), or the download does not match
            ``file_hash``. The message names the file, the address and the
            folders searched; the cause is chained.
    """
    if not fname:
        fname = os.path.basename(urllib.parse.urlsplit(origin).path)
        if not fname:
            raise ValueError(f"Cannot take a file name from origin '{origin}': pass fname.")
    if os.sep in fname or (os.altsep and os.altsep in fname):
        raise ValueError(f"fname must be a bare file name, got '{fname}'.")
    folders = search_folders(cache_subdir, search_dirs)
    found = find_local(fname, file_hash, folders)
    if found is not None:
        return found
    target_dir = cache_dir(cache_subdir)
    return _download(fname, origin, file_hash, target_dir, folders, timeout)


def find_local(fname: str, file_hash: str | None, folders) -> str | None:
    """The first ``folders/fname`` whose hash matches, or ``None``; never downloads.
    A file with the wrong hash is skipped with a warning, never used."""
    for folder in folders:
        candidate = os.path.join(folder, fname)
        if not os.path.isfile(candidate):
            continue
        if file_hash is None:
            return candidate
        actual = hash_of(candidate, file_hash)
        if actual == file_hash.lower():
            return candidate
        warnings.warn(
            f"Ignoring '{candidate}': its {_algorithm(file_hash)} is {actual} but {file_hash} is "
            "expected (incomplete or outdated). It will not be used.",
            stacklevel=3,
        )
    return None


def _download(
    fname: str,
    origin: str,
    file_hash: str | None,
    target_dir: str,
    folders: list[str],
    timeout: float | None = None,
) -> str:
    target = os.path.join(target_dir, fname)
    fd, partial = tempfile.mkstemp(prefix=f".{fname}.", suffix=".part", dir=target_dir)
    print(f"Downloading data from {origin}", file=sys.stderr)
    try:
        hasher = _hasher(file_hash or "")
        with (
            os.fdopen(fd, "wb") as out,
            urlopen(origin, timeout=READ_TIMEOUT_SECONDS if timeout is None else timeout) as response,
        ):
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            bar = _ProgressBar(expected)
            received = _copy_watching_stalls(response, out, hasher, bar, fname, origin)
            bar.close()
        if expected is not None and received != expected:
            raise WeightDownloadError(
                f"Downloading '{fname}' from {origin} was cut short: {received:,} of the "
                f"{expected:,} bytes the server announced arrived. Nothing was kept; try again."
            )
        if file_hash is not None and hasher.hexdigest() != file_hash.lower():
            raise WeightDownloadError(
                f"Downloaded '{fname}' from {origin} but its {_algorithm(file_hash)} is "
                f"{hasher.hexdigest()}, not the expected {file_hash}: the download is incomplete "
                "or the file has changed. Nothing was kept."
            )
        os.chmod(partial, 0o666 & ~_umask())  # mkstemp made it private; a cache is not
        os.replace(partial, target)
    except (urllib.error.URLError, OSError, ValueError) as e:
        if isinstance(e, WeightDownloadError):
            raise
        searched = "\n  ".join(folders)
        raise WeightDownloadError(
            f"Cannot get '{fname}': it is not in any of the folders searched:\n  {searched}\n"
            f"and downloading it from {origin} failed ({_reason(e)}).\n"
            f"On a machine with network, fetch it into one of those folders, e.g.\n"
            f"  wget -P {os.path.join('~', '.keras', 'models')} {origin}\n"
            "or run `numvgg weights --fetch` (see weights/README.md)."
        ) from e
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(partial)
    return target


def _copy_watching_stalls(response, out, hasher, bar, fname: str, origin: str) -> int:
    """Copy ``response`` to ``out``; returns the bytes copied.

    ``read1`` returns whatever has arrived (``read(n)`` would wait for all n
    bytes), so a slow trickle is noticed between chunks.
    """
    read = getattr(response, "read1", response.read)
    received = 0
    window_start, window_bytes = time.monotonic(), 0
    for chunk in iter(lambda: read(_CHUNK_BYTES), b""):
        out.write(chunk)
        hasher.update(chunk)
        bar.update(len(chunk))
        received += len(chunk)
        window_bytes += len(chunk)
        elapsed = time.monotonic() - window_start
        if elapsed >= STALL_SECONDS:
            if window_bytes < STALL_MIN_BYTES:
                raise WeightDownloadError(
                    f"Downloading '{fname}' from {origin} stalled: only {window_bytes:,} bytes "
                    f"arrived in the last {elapsed:.0f} s ({received:,} in all). Nothing was "
                    "kept; try again later or fetch the file another way (see weights/README.md)."
                )
            window_start, window_bytes = time.monotonic(), 0
    return received


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _reason(error: Exception) -> str:
    if isinstance(error, TimeoutError) or isinstance(getattr(error, "reason", None), TimeoutError):
        return f"the server sent nothing for {READ_TIMEOUT_SECONDS} s (read timeout)"
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return str(error.reason)
    return f"{type(error).__name__}: {error}"


# -- the published files ---------------------------------------------------------------------
def get_vgg16_weights_path(include_top: bool, search_dirs=(), timeout: float | None = None) -> str:
    """Path of the published VGG16 ImageNet weights (Keras' file, address and md5).

    ``include_top=True``: ``vgg16_weights_tf_dim_ordering_tf_kernels.h5`` (~528 MB,
    all 16 weight layers); ``False``: ``..._notop.h5`` (~58 MB, the 13 conv layers).
    """
    published = VGG16_WEIGHTS if include_top else VGG16_WEIGHTS_NOTOP
    return get_file(
        published.fname,
        published.origin,
        file_hash=published.md5,
        cache_subdir="models",
        search_dirs=search_dirs,
        timeout=timeout,
    )


def find_cached_vgg16_weights(include_top: bool, search_dirs=()) -> str | None:
    """Like :func:`get_vgg16_weights_path` but only looks: ``None`` when the
    verified file is not already on this machine (used by ``numvgg demo``)."""
    published = VGG16_WEIGHTS if include_top else VGG16_WEIGHTS_NOTOP
    return find_local(published.fname, published.md5, search_folders("models", search_dirs))


def get_imagenet_class_index_path(search_dirs=()) -> str:
    """Path of ``imagenet_class_index.json`` (for ``decode_predictions``)."""
    published = IMAGENET_CLASS_INDEX
    return get_file(
        published.fname,
        published.origin,
        file_hash=published.md5,
        cache_subdir="models",
        search_dirs=search_dirs,
    )
