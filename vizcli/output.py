"""The one place bytes leave vizcli: consoles, format vocabulary, writers, atomic files.

Results go to stdout, everything else (progress, warnings, errors) to stderr, so every
command pipes cleanly. ``-o FILE`` is written to a temporary file in the same folder and
renamed into place only when complete: a failed, interrupted or concurrent run never leaves
a partial file. ``-o -`` means stdout.

File schemas (stable):

* ``json``  – one JSON document (an object or an array of row objects).
* ``jsonl`` – one JSON object per line.
* ``csv`` / ``tsv`` – a header row, then one row per record; floats written with ``repr``
  so they round-trip exactly.
* ``npy``   – one array; its metadata goes to a sidecar ``FILE.json``.
* ``npz``   – named arrays plus ``metadata``: a 0-d unicode array holding a JSON object.
* ``safetensors`` – named tensors; header metadata is a str→str map whose values are JSON.
* ``pt``    – ``{"tensors": {...}, "metadata": {...}}``, loadable with
  ``torch.load(path, weights_only=True)``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

from vizcli.errors import BadInput, RunFailure

TEXT_FORMATS = ("json", "jsonl", "csv", "tsv")
ARRAY_FORMATS = ("npy", "npz", "safetensors", "pt")

_consoles: dict[str, Any] = {}


def stdout_console():
    """The rich Console for results (no colour unless stdout is a terminal and NO_COLOR unset)."""
    return _console("stdout")


def stderr_console():
    """The rich Console for progress, warnings and errors."""
    return _console("stderr")


def _console(which: str):
    if which not in _consoles:
        from rich.console import Console

        stream = sys.stdout if which == "stdout" else sys.stderr
        no_color = bool(os.environ.get("NO_COLOR")) or not _isatty(stream)
        width = None if _isatty(stream) else int(os.environ.get("COLUMNS", "160"))
        _consoles[which] = Console(
            stderr=which == "stderr",  # no file=: rich then follows sys.stdout/sys.stderr as they change
            no_color=no_color,
            color_system=None if no_color else "auto",
            width=width,
            highlight=False,
            soft_wrap=False,
        )
    return _consoles[which]


def reset_consoles() -> None:
    """Forget cached consoles (the streams changed, e.g. under a test runner)."""
    _consoles.clear()


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def warn(message: str) -> None:
    """One warning line on stderr."""
    print(f"Warning: {message}", file=sys.stderr)


def info(message: str) -> None:
    """One informational line on stderr (kept off stdout so results pipe cleanly)."""
    print(message, file=sys.stderr)


# ---------------------------------------------------------------- paths and formats


def format_for_path(path: str, allowed: Iterable[str], option: str = "-o") -> str:
    """The format named by ``path``'s extension, checked against ``allowed``."""
    allowed = tuple(allowed)
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix == "pth":
        suffix = "pt"
    if suffix not in allowed:
        shown = "." + suffix if suffix else "(none)"
        raise BadInput(
            f"{option} {path}: cannot tell the format from the extension {shown}; "
            "use one of " + ", ".join("." + name for name in allowed)
        )
    return suffix


def check_writable(path: str | None, option: str = "-o") -> None:
    """Fail early (exit 2, before any model work) if ``path`` cannot be written."""
    if path is None or path == "-":
        return
    target = Path(path)
    if target.exists() and target.is_dir():
        raise BadInput(f"{option} {path}: is a folder; give a file name inside it")
    if target.exists() and not target.is_file():
        return  # a device or a pipe such as /dev/null: written directly
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.exists():
        raise BadInput(f"{option} {path}: folder {folder} does not exist; create it first")
    if not folder.is_dir():
        raise BadInput(f"{option} {path}: {folder} is not a folder")
    try:  # os.access says yes to root even on read-only mounts: try for real
        probe_fd, probe = tempfile.mkstemp(prefix=".vizcli-probe-", dir=folder)
        os.close(probe_fd)
        os.unlink(probe)
    except OSError as error:
        raise BadInput(f"{option} {path}: folder {folder} is not writable ({error.strerror}); choose another place") from None


def is_special_file(path) -> bool:
    """True for existing non-regular files such as /dev/null or a named pipe."""
    return _is_special_file(Path(path))


def _is_special_file(path: Path) -> bool:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


@contextlib.contextmanager
def atomic_output(path: str, binary: bool = True) -> Iterator[IO]:
    """Open ``path`` for writing so that it appears only once complete.

    Writes go to a temporary file in the same folder, which is renamed over ``path``
    on success and deleted on any failure (including KeyboardInterrupt). Special files
    such as ``/dev/null`` or ``/dev/full`` are written directly.
    """
    target = Path(path)
    mode = "wb" if binary else "w"
    kwargs = {} if binary else {"encoding": "utf-8", "newline": ""}
    if _is_special_file(target):
        with _translate_os_errors(path):
            with open(target, mode, **kwargs) as handle:
                yield handle
        return
    folder = target.parent if str(target.parent) else Path(".")
    with _translate_os_errors(path):
        fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with _translate_os_errors(path):
            with os.fdopen(fd, mode, **kwargs) as handle:
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
        raise RunFailure(f"writing {path} failed: {reason}; free space or choose another -o") from error


@contextlib.contextmanager
def open_destination(path: str | None, binary: bool) -> Iterator[IO]:
    """A writable stream for ``path``: stdout for None or '-', else an atomic file."""
    if path is None or path == "-":
        if binary:
            if _isatty(sys.stdout):
                raise BadInput("refusing to write binary output to a terminal; use -o FILE or a pipe")
            stream = sys.stdout.buffer
        else:
            stream = sys.stdout
        yield stream
        stream.flush()
        return
    with atomic_output(path, binary=binary) as handle:
        yield handle


# ---------------------------------------------------------------- text records


def _json_default(value: Any):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def to_json(value: Any, indent: int | None = 2) -> str:
    """JSON text for ``value`` (numpy arrays become lists; floats round-trip)."""
    return json.dumps(value, indent=indent, ensure_ascii=False, default=_json_default, allow_nan=True)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def write_records(
    rows: Iterable[dict], fmt: str, stream: IO[str], document: dict | None = None
) -> int:
    """Stream ``rows`` to ``stream`` as json/jsonl/csv/tsv; returns the row count.

    ``json`` writes ``document`` with the rows under ``"rows"`` when a document is given,
    else a bare array. List values in csv/tsv rows are spread into ``name_0, name_1, …``.
    """
    count = 0
    if fmt == "jsonl":
        for row in rows:
            stream.write(to_json(row, indent=None) + "\n")
            count += 1
    elif fmt == "json":
        rows = list(rows)
        count = len(rows)
        body = dict(document or {}, rows=rows) if document is not None else rows
        stream.write(to_json(body) + "\n")
    elif fmt in ("csv", "tsv"):
        writer = None
        for row in rows:
            flat = _flatten_row(row)
            if writer is None:
                writer = csv.writer(stream, delimiter="," if fmt == "csv" else "\t", lineterminator="\n")
                writer.writerow(list(flat))
            writer.writerow([_cell(v) for v in flat.values()])
            count += 1
    else:
        raise BadInput(f"--format {fmt}: not a record format; use one of {', '.join(TEXT_FORMATS)}")
    return count


def _flatten_row(row: dict) -> dict:
    flat: dict[str, Any] = {}
    for key, value in row.items():
        if hasattr(value, "tolist"):
            value = value.tolist()
        if isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                flat[f"{key}_{index}"] = item
        else:
            flat[key] = value
    return flat


# ---------------------------------------------------------------- arrays


def write_arrays(arrays: dict[str, Any], metadata: dict, fmt: str, path: str | None) -> None:
    """Write named arrays (numpy or torch) with ``metadata`` in an array format.

    ``npy`` takes exactly one array and puts the metadata in ``path + '.json'``.
    """
    import numpy as np

    numpy_arrays = {name: _to_numpy(value) for name, value in arrays.items()}
    if fmt == "npy":
        if len(numpy_arrays) != 1:
            raise BadInput("npy holds one array; use npz or safetensors for several")
        (array,) = numpy_arrays.values()
        with open_destination(path, binary=True) as handle:
            np.save(handle, array, allow_pickle=False)
        if path not in (None, "-") and not _is_special_file(Path(path)):
            with atomic_output(path + ".json", binary=False) as handle:
                handle.write(to_json(metadata, indent=None) + "\n")
    elif fmt == "npz":
        with open_destination(path, binary=True) as handle:
            np.savez(handle, **numpy_arrays, metadata=np.array(to_json(metadata, indent=None)))
    elif fmt == "safetensors":
        from safetensors.numpy import save

        header = {key: value if isinstance(value, str) else to_json(value, indent=None) for key, value in metadata.items()}
        contiguous = {name: np.ascontiguousarray(value) for name, value in numpy_arrays.items()}
        payload = save(contiguous, metadata=header)
        with open_destination(path, binary=True) as handle:
            handle.write(payload)
    elif fmt == "pt":
        import torch

        tensors = {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in numpy_arrays.items()}
        buffer = io.BytesIO()
        torch.save({"tensors": tensors, "metadata": json.loads(to_json(metadata))}, buffer)
        with open_destination(path, binary=True) as handle:
            handle.write(buffer.getvalue())
    else:
        raise BadInput(f"unknown array format '{fmt}'; use one of {', '.join(ARRAY_FORMATS)}")


def _to_numpy(value: Any):
    import numpy as np

    if hasattr(value, "detach"):
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":
            value = value.float()
        value = value.numpy()
    return np.asarray(value)


def print_renderables(renderables: list[Any], stream: IO[str]) -> None:
    """Print rich renderables to ``stream`` (stdout's console when it is stdout)."""
    if stream is sys.stdout:
        console = stdout_console()
    else:
        from rich.console import Console

        console = Console(file=stream, no_color=True, color_system=None, width=int(os.environ.get("COLUMNS", "160")))
    for renderable in renderables:
        console.print(renderable)


def progress_factory(description: str, total: int, threshold: int = 2000):
    """A callable that starts a rich progress bar on stderr for big jobs (None for small ones).

    The returned factory takes the number of steps and gives an ``advance(n)`` callback.
    """
    if total < threshold or not _isatty(sys.stderr):
        return None

    def _start(steps: int):
        from rich.progress import Progress

        progress = Progress(console=stderr_console(), transient=True)
        task = progress.add_task(description, total=steps)
        progress.start()
        done = {"n": 0}

        def _advance(count: int) -> None:
            done["n"] += count
            progress.update(task, advance=count)
            if done["n"] >= steps:
                progress.stop()

        return _advance

    return _start


class NpyStreamWriter:
    """Write a 2-D float32 ``.npy`` row by row, without knowing the row count in advance.

    A fixed-size header is reserved and rewritten with the final shape at ``close``; memory
    stays at one row whatever the input's length.
    """

    HEADER_BYTES = 128

    def __init__(self, handle: IO[bytes], width: int):
        self.handle = handle
        self.width = width
        self.rows = 0
        if not handle.seekable():
            raise BadInput("npy output must go to a file (-o FILE.npy), not a pipe")
        handle.write(b"\0" * self.HEADER_BYTES)

    def write(self, vector) -> None:
        import numpy as np

        row = np.asarray(vector, dtype="<f4").reshape(-1)
        if row.shape[0] != self.width:
            raise ValueError(f"row of width {row.shape[0]}, expected {self.width}")
        self.handle.write(row.tobytes())
        self.rows += 1

    def close(self) -> None:
        import numpy as np

        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header, {"descr": "<f4", "fortran_order": False, "shape": (self.rows, self.width)}
        )
        data = header.getvalue()
        if len(data) != self.HEADER_BYTES:  # pragma: no cover - shapes up to 10^40 rows fit
            raise RunFailure("npy header does not fit its reserved space")
        end = self.handle.tell()
        self.handle.seek(0)
        self.handle.write(data)
        self.handle.seek(end)


def counter_progress(description: str, after_seconds: float = 1.0):
    """A progress display for streams of unknown length: ``advance(n)``; ``advance(0, done=True)`` ends it.

    Nothing is shown until the work has taken ``after_seconds`` (small jobs stay silent), and
    nothing at all when stderr is not a terminal.
    """
    import time

    state: dict[str, Any] = {"count": 0, "start": time.perf_counter(), "progress": None, "task": None}
    if not _isatty(sys.stderr):
        return None

    def _advance(count: int, done: bool = False) -> None:
        state["count"] += count
        if done:
            if state["progress"] is not None:
                state["progress"].stop()
            return
        if state["progress"] is None and time.perf_counter() - state["start"] >= after_seconds:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            progress = Progress(SpinnerColumn(), TextColumn("{task.description}: {task.completed} done"),
                                TimeElapsedColumn(), console=stderr_console(), transient=True)
            state["task"] = progress.add_task(description, total=None)
            progress.start()
            state["progress"] = progress
        if state["progress"] is not None:
            state["progress"].update(state["task"], completed=state["count"])

    return _advance
