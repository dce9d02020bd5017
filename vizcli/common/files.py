"""Where files go: output destinations, format-from-extension, and atomic writes.

``-o FILE`` is written to a temporary file in the same folder and renamed into place only
when complete: a failed, interrupted or concurrent run never leaves a partial file. ``-o -``
means stdout. Special files (``/dev/null``, a named pipe) are written directly.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, TypeGuard, TypeVar

from vizcli.common.console import isatty
from vizcli.common.errors import BadInput, RunFailure

T = TypeVar("T")

# OS errors that mean "the output could not be written" (run-time failures, exit 1).
OS_WRITE_ERRORS = (errno.ENOSPC, errno.EIO, errno.EROFS, errno.EDQUOT)


_OS_REASONS = {
    errno.ENOENT: "no such file or folder; check the path",
    errno.ENAMETOOLONG: "a name in the path is too long (at most 255 bytes a name); shorten it",
    errno.EACCES: "permission denied; check its permissions or choose another path",
    errno.EPERM: "operation not permitted; choose another path",
    errno.ENOTDIR: "a part of the path is not a folder; check the path",
    errno.EISDIR: "is a folder; give a file",
    errno.ELOOP: "too many symbolic links; check the path",
    errno.EROFS: "the file system is read-only; choose another place",
    errno.ENOSPC: "no space left on the device; free space or choose another place",
}


def os_error_reason(error: OSError) -> str:
    """One readable reason, with the fix, for an OS error about a path."""
    if error.errno in _OS_REASONS:
        return _OS_REASONS[error.errno]
    return f"{error.strerror or type(error).__name__}; check the path"


def checked_os_call(call: Callable[[], T], parameter: str, path: str) -> T:
    """``call()``, with any OS error turned into ``BadInput`` naming ``parameter=path``: the one mapping."""
    try:
        return call()
    except OSError as error:
        raise BadInput(os_error_reason(error), parameter=parameter, value=path) from None


def checked_glob(folder: Path, pattern: str) -> list[Path]:
    """The files under ``folder`` matching ``pattern`` (relative, ``**`` recursive), sorted; a pattern
    that cannot match inside the folder is ``BadInput`` naming ``glob``."""
    if not pattern or pattern.startswith(("/", "\\")) or Path(pattern).is_absolute() or ".." in Path(pattern).parts:
        raise BadInput(f"is matched inside {folder}: give a relative pattern such as '**/*.jpg'", parameter="glob", value=pattern)
    try:
        return sorted(path for path in folder.glob(pattern) if path.is_file())
    except (ValueError, NotImplementedError) as error:
        raise BadInput(f"not a usable pattern ({error})", parameter="glob", value=pattern) from None
    except OSError as error:
        raise BadInput(os_error_reason(error), parameter="dataset", value=str(folder)) from None


def require_file(path: str, parameter: str, wanted: str) -> Path:
    """``Path(path)`` if it is an existing readable file, else ``BadInput`` naming ``parameter`` and ``path``.

    ``wanted`` finishes "is a folder; give …", e.g. "an image file".
    """
    file = Path(path)
    mode = checked_os_call(lambda: os.stat(file).st_mode, parameter, path)
    if stat.S_ISDIR(mode):
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


MAX_NAME_BYTES = 255  # a file name's limit on Linux file systems
_TEMP_NAME_ROOM = 16  # ".{name}.XXXXXXXX.tmp" adds this many bytes to the name


def check_writable(path: str | None, parameter: str = "output", side_suffixes: Iterable[str] = ()) -> None:
    """Fail early (exit 2, before any model work) if ``path`` — and each ``path + suffix`` side
    file written with it (``.npy`` metadata goes to ``FILE.npy.json``) — cannot be written."""
    if path is None or path == "-":
        return
    for candidate in (path, *(path + suffix for suffix in side_suffixes)):
        _check_one_writable(candidate, parameter, path)


def _check_one_writable(candidate: str, parameter: str, path: str) -> None:
    mode = _mode(candidate, parameter, path)
    if mode is not None and stat.S_ISDIR(mode):
        raise BadInput(f"{candidate} is a folder; give a file name, or remove the folder", parameter=parameter, value=path)
    if mode is not None and not stat.S_ISREG(mode):
        return  # a device or a pipe such as /dev/null: written directly
    target = Path(os.path.realpath(candidate))  # through symlinks: the link's target is what gets written
    if len(os.fsencode(target.name)) > MAX_NAME_BYTES:
        raise BadInput(f"the name is longer than {MAX_NAME_BYTES} bytes; shorten it", parameter=parameter, value=path)
    folder = target.parent
    folder_mode = _mode(str(folder), parameter, path)
    if folder_mode is None:
        raise BadInput(f"folder {folder} does not exist; create it first", parameter=parameter, value=path)
    if not stat.S_ISDIR(folder_mode):
        raise BadInput(f"{folder} is not a folder", parameter=parameter, value=path)
    try:  # os.access says yes to root even on read-only mounts: try for real
        probe_fd, probe = tempfile.mkstemp(prefix=".vizcli-probe-", dir=folder)
        os.close(probe_fd)
        os.unlink(probe)
    except OSError as error:
        raise BadInput(f"folder {folder} is not writable ({os_error_reason(error)})", parameter=parameter, value=path) from None


def _mode(path: str, parameter: str, value: str) -> int | None:
    """``st_mode`` of ``path`` (following links), None if it does not exist; other OS errors are ``BadInput``."""
    try:
        return os.stat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as error:
        raise BadInput(os_error_reason(error), parameter=parameter, value=value) from None


def refuse_overwriting_inputs(
    outputs: str | os.PathLike[str] | None | Iterable[str | os.PathLike[str] | None],
    inputs: Iterable[str | os.PathLike[str] | None],
    parameter: str = "output",
    whole_folders: bool = True,
) -> None:
    """Refuse, before any work, an output that is one of the files the command reads: writing it would
    destroy its own input. The one check every command that writes makes.

    ``outputs``: the path (or paths: ``FILE.npy`` and its ``FILE.npy.json``) the command writes.
    ``inputs``: every file it reads (images, a model's ``.py``, ``.pt2`` or ``config.json``, weights,
    an output being exported); a folder in ``inputs`` is read as a whole (a model folder, a folder of
    shards) and refuses every file in it (``whole_folders=False``: a dataset folder, whose new files a
    run may write). Files are compared by identity (device and inode), so a symbolic link, a
    hard link or another spelling of the path is caught too; ``-``, ``None`` and special files
    (``/dev/stdout``, a pipe) are never inputs overwritten.
    """
    if outputs is None or isinstance(outputs, (str, os.PathLike)):
        outputs = [outputs]
    for output in outputs:
        if output is None or str(output) == "-" or is_special_file(output):
            continue
        identity = _identity(output)
        if identity is None:  # nothing there yet: it cannot be a file that is read
            continue
        for source in inputs:
            if source is None or str(source) in ("", "-"):
                continue
            if identity in _identities(source, whole_folders):
                shown = os.fspath(source)
                raise BadInput(f"is also an input ({shown}); the run would overwrite what it reads: write the result "
                               "elsewhere", parameter=parameter, value=os.fspath(output))


def check_not_an_input(output: str | None, inputs: Iterable[str | None], parameter: str = "output") -> None:
    """``refuse_overwriting_inputs`` for one output, a folder in ``inputs`` counting as itself only (a
    dataset folder: a rerun may write its output there again)."""
    refuse_overwriting_inputs(output, inputs, parameter, whole_folders=False)


def _identity(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """(device, inode) of the file ``path`` names, through symbolic links; None if there is none."""
    try:
        status = os.stat(path)
    except (OSError, ValueError):
        return None
    return status.st_dev, status.st_ino


def _identities(source: str | os.PathLike[str], whole_folders: bool) -> set[tuple[int, int]]:
    """The identities of ``source``: the file, or the folder and (``whole_folders``) every file in it."""
    found = _identity(source)
    if found is None:
        return set()
    if not whole_folders or not is_folder(source):
        return {found}
    identities = {found}
    try:
        for root, _, names in os.walk(source):
            identities.update(item for item in (_identity(os.path.join(root, name)) for name in names) if item)
    except OSError:
        pass
    return identities


def choose_format(path: str | None, given: str | None, by_extension: dict[str, str], default: str) -> str:
    """The output format: ``given`` (``--format``), else the one ``path``'s extension names, else ``default``.

    A ``given`` format that contradicts a known extension (``--format json -o x.csv``) is an error.
    """
    suffix = Path(path).suffix.lower().lstrip(".") if path and path != "-" and not is_special_file(path) else ""
    implied = by_extension.get(suffix)
    if given is not None and implied is not None and implied != given:
        raise BadInput(f"the extension says {implied} but the format is {given}; make them agree", parameter="output", value=path)
    return given or implied or default


def is_special_file(path: str | os.PathLike[str]) -> bool:
    """True for existing non-regular files such as /dev/null, /dev/stdout or a named pipe."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


@contextlib.contextmanager
def atomic_output(path: str, binary: bool = True) -> Iterator[IO[Any]]:
    """Open ``path`` for writing so that it appears only once complete.

    Writes go to a temporary file beside the real target (a symlink's target, not the link),
    which is renamed over it on success and deleted on any failure (including signals).
    Special files such as ``/dev/null``, ``/dev/stdout`` or a FIFO are written directly.
    """
    mode = "wb" if binary else "w"
    encoding, newline = (None, None) if binary else ("utf-8", "")
    if is_special_file(path):
        with _translate_os_errors(path), open(path, mode, encoding=encoding, newline=newline) as handle:
            yield handle
        return
    target = Path(os.path.realpath(path))
    short = target.name[: MAX_NAME_BYTES // 4 - _TEMP_NAME_ROOM]  # room for the temporary name's extra bytes
    with _translate_os_errors(path):
        fd, temp_name = tempfile.mkstemp(prefix=f".{short}.", suffix=".tmp", dir=target.parent)
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


@contextlib.contextmanager
def seekable_destination(path: str | None) -> Iterator[IO[bytes]]:
    """Like ``open_destination(path, binary=True)``, but always seekable: a pipe, a FIFO or
    ``/dev/null`` gets the bytes spooled through a temporary file first (zip and ``.npy`` headers
    are written after the data)."""
    with open_destination(path, binary=True) as handle:
        if _seekable(handle) and writes_side_files(path):  # a regular file (/dev/null claims to seek, and does not)
            yield handle
            return
        with tempfile.TemporaryFile() as spool:
            yield spool
            spool.seek(0)
            shutil.copyfileobj(spool, handle)


def writes_side_files(path: str | None) -> TypeGuard[str]:
    """Whether an output at ``path`` may have side files (``FILE.json``): only a regular file may."""
    return path not in (None, "-") and not is_special_file(path or "")


def _seekable(handle: IO[bytes]) -> bool:
    try:
        return handle.seekable()
    except (OSError, ValueError):
        return False


def is_folder(path: str | os.PathLike[str]) -> bool:
    """``Path(path).is_dir()``, but False (not an OSError) for names the system refuses, such as
    one longer than 255 bytes: the caller's own check then names the problem."""
    try:
        return Path(path).is_dir()
    except OSError:
        return False


def sha256_of(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of a file, read in 4 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def file_or_stdout_format(output: str | None, stdout_format: Any, output_format: Any) -> str | None:
    """The one convention of every command: ``-f/--format`` is what stdout shows, ``-o FILE`` takes its format from its
    suffix (``--output-format`` where the suffix names none). Returns the chosen format's value (None: the default)."""
    from vizcli.common.errors import BadInput

    if output and output != "-" and stdout_format is not None:
        raise BadInput(f"--format {stdout_format.value} is what stdout shows, and -o {output} takes stdout's place: its format "
                       "comes from its suffix, or --output-format; drop --format")
    if output_format is not None and not output:
        raise BadInput("--output-format is the format of -o FILE; give -o, or use --format for stdout")
    chosen = output_format if output else stdout_format
    return str(chosen.value) if chosen is not None else None
