"""Where files go: output destinations, format-from-extension, and atomic writes.

``-o FILE`` is written to a temporary file in the same folder and renamed into place only
when complete: a failed, interrupted or concurrent run never leaves a partial file. ``-o -``
means stdout. Special files (``/dev/null``, a named pipe) are written directly.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from vizcli.common.console import isatty
from vizcli.common.errors import BadInput, RunFailure

# OS errors that mean "the output could not be written" (run-time failures, exit 1).
OS_WRITE_ERRORS = (errno.ENOSPC, errno.EIO, errno.EROFS, errno.EDQUOT)


def require_file(path: str, parameter: str, wanted: str) -> Path:
    """``Path(path)`` if it is an existing file, else ``BadInput`` naming ``parameter`` and ``path``.

    ``wanted`` finishes "is a folder; give …", e.g. "an image file".
    """
    file = Path(path)
    if not file.exists():
        raise BadInput("no such file; check the path", parameter=parameter, value=path)
    if file.is_dir():
        raise BadInput(f"is a folder; give {wanted}", parameter=parameter, value=path)
    return file


def format_for_path(path: str, allowed: Iterable[str], parameter: str = "output") -> str:
    """The format named by ``path``'s extension, checked against ``allowed``."""
    allowed = tuple(allowed)
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix == "pth":
        suffix = "pt"
    if suffix not in allowed:
        shown = "." + suffix if suffix else "(none)"
        raise BadInput(
            f"cannot tell the format from the extension {shown}; use one of " + ", ".join("." + name for name in allowed),
            parameter=parameter,
            value=path,
        )
    return suffix


def check_writable(path: str | None, parameter: str = "output") -> None:
    """Fail early (exit 2, before any model work) if ``path`` cannot be written."""
    if path is None or path == "-":
        return
    target = Path(path)
    if target.exists() and target.is_dir():
        raise BadInput("is a folder; give a file name inside it", parameter=parameter, value=path)
    if target.exists() and not target.is_file():
        return  # a device or a pipe such as /dev/null: written directly
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.exists():
        raise BadInput(f"folder {folder} does not exist; create it first", parameter=parameter, value=path)
    if not folder.is_dir():
        raise BadInput(f"{folder} is not a folder", parameter=parameter, value=path)
    try:  # os.access says yes to root even on read-only mounts: try for real
        probe_fd, probe = tempfile.mkstemp(prefix=".vizcli-probe-", dir=folder)
        os.close(probe_fd)
        os.unlink(probe)
    except OSError as error:
        raise BadInput(f"folder {folder} is not writable ({error.strerror}); choose another place", parameter=parameter, value=path) from None


def is_special_file(path: str | Path) -> bool:
    """True for existing non-regular files such as /dev/null or a named pipe."""
    return _is_special_file(Path(path))


def _is_special_file(path: Path) -> bool:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


@contextlib.contextmanager
def atomic_output(path: str, binary: bool = True) -> Iterator[IO[Any]]:
    """Open ``path`` for writing so that it appears only once complete.

    Writes go to a temporary file in the same folder, which is renamed over ``path``
    on success and deleted on any failure (including KeyboardInterrupt). Special files
    such as ``/dev/null`` or ``/dev/full`` are written directly.
    """
    target = Path(path)
    mode = "wb" if binary else "w"
    encoding, newline = (None, None) if binary else ("utf-8", "")
    if _is_special_file(target):
        with _translate_os_errors(path), open(target, mode, encoding=encoding, newline=newline) as handle:
            yield handle
        return
    folder = target.parent if str(target.parent) else Path(".")
    with _translate_os_errors(path):
        fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with _translate_os_errors(path):
            with os.fdopen(fd, mode, encoding=encoding, newline=newline) as handle:
                yield handle
                handle.flush()
            os.chmod(temp_name, 0o644 & ~_umask())
            os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@contextlib.contextmanager
def _translate_os_errors(path: str) -> Iterator[None]:
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as error:
        reason = error.strerror or str(error)
        raise RunFailure(f"writing {path} failed: {reason}; free space or choose another output=PATH") from error


@contextlib.contextmanager
def open_destination(path: str | None, binary: bool) -> Iterator[IO[Any]]:
    """A writable stream for ``path``: stdout for None or '-', else an atomic file."""
    if path is None or path == "-":
        if binary:
            if isatty(sys.stdout):
                raise BadInput("refusing to write binary output to a terminal; use -o FILE or a pipe")
            stream = sys.stdout.buffer
        else:
            stream = sys.stdout
        yield stream
        stream.flush()
        return
    with atomic_output(path, binary=binary) as handle:
        yield handle


