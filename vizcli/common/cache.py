"""vizcli's own cache folder: digests of large files, and measured choices (``--dtype auto``).

The folder is ``$VIZCLI_CACHE_DIR``, else ``$XDG_CACHE_HOME/vizcli``, else ``~/.cache/vizcli``.
Everything in it can be deleted at any time: it only saves work. A cache that cannot be read or
written is ignored (the work is done again), never an error. Writes are atomic (a temporary file
renamed into place), so two processes never read half a file. Standard library only.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

CACHE_ENV = "VIZCLI_CACHE_DIR"
DIGESTS = "sha256.json"


def cache_dir() -> Path:
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "vizcli"


def read_entry(name: str, key: str) -> Any:
    """The value stored under ``key`` in the cache file ``name``, or None."""
    try:
        data = json.loads((cache_dir() / name).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return data.get(key) if isinstance(data, dict) else None


def write_entry(name: str, key: str, value: Any, keep: int = 64) -> None:
    """Store ``value`` under ``key`` in the cache file ``name`` (keeping its newest ``keep`` keys)."""
    folder = cache_dir()
    path = folder / name
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            data = {}
    except (OSError, ValueError, RecursionError):
        data = {}
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
    known = read_entry(DIGESTS, key)
    if isinstance(known, str) and len(known) == 64:
        return known
    digest = sha256_of(path)
    write_entry(DIGESTS, key, digest)
    return digest
