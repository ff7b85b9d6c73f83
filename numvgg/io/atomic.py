"""Atomic file replacement, shared by ``save_weights`` and ``save_training_state``.

A save must never leave a half-written file where a good one was, so the
new content goes to a temporary file next to the target, is flushed to disk
(``fsync``) and renamed over the target (``os.replace``, atomic on POSIX and
Windows); the folder is synced too, so the rename itself survives a crash.

Details that matter in practice (each one was a bug once):

* **Short temporary names.** ``.<first 32 bytes of the name>~<pid>-<8 hex>.tmp``:
  any name the filesystem accepts (up to 255 bytes) can be saved.
* **Symlinks are written through.** Saving to a link replaces the file the
  link points to, and the link stays a link (as ``open(path, "w")`` would).
* **The target's permissions are kept.** A ``chmod 600`` file stays ``600``;
  a new file gets the usual permissions (``0666`` minus the umask).
* **The real error is the one you see.** Removing the temporary file after a
  failure can fail too; that never hides the error that stopped the save.
* **Leftovers are cleaned.** A ``kill -9`` during a save leaves its temporary
  file behind; the next save to the same target removes those whose process
  is gone (never one that a running process is still writing).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import uuid

_STEM_BYTES = 32
_TMP_NAME = re.compile(r"^\.(?P<stem>.*)~(?P<pid>\d+)-[0-9a-f]{8}\.tmp$", re.DOTALL)


def resolve_target(path: str) -> str:
    """The file a save to ``path`` really writes: the end of a symlink chain, or ``path``."""
    return os.path.realpath(path) if os.path.islink(path) else os.path.abspath(path)


def _stem(name: str) -> str:
    """The first ``_STEM_BYTES`` bytes of ``name``, cut on a character boundary."""
    return name.encode("utf8", "surrogateescape")[:_STEM_BYTES].decode("utf8", "ignore")


def temp_name_for(target: str) -> str:
    """A fresh temporary path next to ``target`` (see the module docstring)."""
    folder, name = os.path.split(target)
    return os.path.join(folder, f".{_stem(name)}~{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # another thread of ours may be saving right now
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists, owned by someone else: leave it alone
    return True


def stale_temp_files(target: str) -> list[str]:
    """Temporary files of earlier saves to ``target`` whose process has died."""
    folder, name = os.path.split(target)
    stale = []
    try:
        entries = os.listdir(folder)
    except OSError:
        return stale
    for entry in entries:
        match = _TMP_NAME.match(entry)
        if match and match["stem"] == _stem(name) and not _process_alive(int(match["pid"])):
            stale.append(os.path.join(folder, entry))
    return stale


def _fsync_file(path: str) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _fsync_folder(folder: str) -> None:
    # The rename lives in the folder's entry list; sync it where the OS lets
    # a folder be opened (POSIX). Some filesystems refuse: not an error.
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def describe_os_error(error: OSError) -> str:
    """A short reason for an ``OSError`` raised while saving, e.g. ``'no space left on device'``."""
    code = getattr(error, "errno", None)
    reasons = {
        errno.EACCES: "permission denied (the folder or file is not writable)",
        errno.EROFS: "the filesystem is read-only",
        errno.ENOSPC: "no space left on device",
        errno.EDQUOT: "disk quota exceeded",
        errno.ENAMETOOLONG: "the file name is too long for the filesystem",
        errno.EISDIR: "it is a folder",
    }
    if code in reasons:
        return f"{reasons[code]} (OS: {error.strerror or error})"
    return f"{type(error).__name__}: {error}"


@contextlib.contextmanager
def atomic_path(path: str, error_class, what: str):
    """Yield a temporary file name for the new content of ``path``; when the
    block ends without error, flush it to disk and rename it over ``path``'s
    target.

    Args:
        path: where the caller saves (a symlink is written through).
        error_class: the exception to raise (it must take one message);
            the ``OSError`` is chained as its cause.
        what: how to name the content in messages (``"weights"``).
    Raises:
        error_class: missing or unwritable folder, a name the filesystem
            refuses, a full disk... The target is then untouched.
    """
    target = resolve_target(path)
    folder = os.path.dirname(target)
    shown = path if target == os.path.abspath(path) else f"{path}' (a link to '{target}"
    if not os.path.isdir(folder):
        raise error_class(f"Cannot save {what} to '{shown}': folder '{folder}' does not exist.")
    if os.path.isdir(target):
        raise error_class(f"Cannot save {what} to '{shown}': it is a folder.")
    for old in stale_temp_files(target):
        with contextlib.suppress(OSError):
            os.remove(old)
    tmp = temp_name_for(target)
    try:
        yield tmp
        _fsync_file(tmp)
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, stat.S_IMODE(os.stat(target).st_mode))
        os.replace(tmp, target)
        _fsync_folder(folder)
    except OSError as e:
        raise error_class(f"Cannot save {what} to '{shown}': {_reason(e, folder, target)}") from e
    finally:
        # Never let this cleanup's own failure replace the error above.
        with contextlib.suppress(OSError):
            os.remove(tmp)


def _reason(error: OSError, folder: str, target: str) -> str:
    if getattr(error, "errno", None) is None and not os.access(folder, os.W_OK):
        # h5py reports a failed create as an OSError without errno.
        return f"folder '{folder}' is not writable"
    if getattr(error, "errno", None) is None and len(os.path.basename(target).encode()) > 255:
        return "the file name is longer than 255 bytes, the filesystem's limit"
    return describe_os_error(error)
