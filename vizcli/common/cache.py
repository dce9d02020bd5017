"""vizcli's own cache folder: digests of large files, and measured choices (``--dtype auto``).

The folder is ``$VIZCLI_CACHE_DIR``, else ``$XDG_CACHE_HOME/vizcli``, else ``~/.cache/vizcli``.
Everything in it can be deleted at any time: it only saves work. A cache is a hint, never an
error: a file is read only when it is a small regular file (a named pipe in its place is never
waited on, a huge file never loaded), a value is used only when its reader's check accepts it, and
anything else is ignored (the work is done again). Writes are atomic (a temporary file renamed into
place), so two processes never read half a file, and never replace what is not a regular file.
Standard library only.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

CACHE_ENV = "VIZCLI_CACHE_DIR"
DIGESTS = "sha256.json"
MAX_CACHE_BYTES = 1 << 20  # a cache file larger than this is not ours (64 entries take a few kB): ignored
_SHA256 = re.compile(r"[0-9a-f]{64}")


def cache_dir() -> Path:
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "vizcli"


def _read_cache_file(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path`` if it is a regular file of at most ``MAX_CACHE_BYTES``, else None.

    Opened without blocking and checked on the open descriptor: a named pipe, a device or a folder in
    its place is never read (a pipe with no writer would otherwise hang the run)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode) or status.st_size > MAX_CACHE_BYTES:
            return None
        with os.fdopen(descriptor, "rb", closefd=False) as handle:
            data = handle.read(MAX_CACHE_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(descriptor)
    if len(data) > MAX_CACHE_BYTES:
        return None
    try:
        parsed = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None


def read_entry(name: str, key: str, valid: Callable[[Any], bool] = lambda value: True) -> Any:
    """The value stored under ``key`` in the cache file ``name`` if ``valid`` accepts it, else None."""
    data = _read_cache_file(cache_dir() / name)
    value = None if data is None else data.get(key)
    if value is None:
        return None
    try:
        return value if valid(value) else None
    except (TypeError, ValueError, ArithmeticError, KeyError, AttributeError):
        return None


def write_entry(name: str, key: str, value: Any, keep: int = 64) -> None:
    """Store ``value`` under ``key`` in the cache file ``name`` (keeping its newest ``keep`` keys)."""
    folder = cache_dir()
    path = folder / name
    if os.path.lexists(path) and not path.is_file():
        return  # a pipe, a folder, a dangling link: not ours to replace
    data = _read_cache_file(path) or {}
    data.pop(key, None)
    data[key] = value
    data = dict(list(data.items())[-keep:])
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(data, out)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError:
        pass  # a cache we cannot write only costs the work again


def cached_sha256(path: str | os.PathLike[str]) -> str:
    """``sha256_of(path)``, remembered by the file's identity (device, inode, size, mtime in ns),
    as git's index and DVC do: a file that changes in any of those is read again."""
    from vizcli.common.files import sha256_of

    status = os.stat(path)
    key = f"{os.path.realpath(path)}|{status.st_dev}|{status.st_ino}|{status.st_size}|{status.st_mtime_ns}"
    known = read_entry(DIGESTS, key, lambda value: isinstance(value, str) and _SHA256.fullmatch(value) is not None)
    if known is not None:
        return str(known)
    digest = sha256_of(path)
    write_entry(DIGESTS, key, digest)
    return digest
