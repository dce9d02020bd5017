"""Where text goes: results to stdout, progress, warnings and informational lines to stderr.

Every command pipes cleanly because only results reach stdout. Consoles are rich Consoles,
made for the streams as they are at each use (a test runner swaps them).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from typing import IO, Any

from vizcli.common.errors import printable

DEFAULT_WIDTH = 160  # columns when stdout is not a terminal and COLUMNS says nothing usable
MIN_TABLE_WIDTH = 100  # narrower tables truncate every cell; the terminal wraps wider lines instead


def terminal_width(default: int | None = DEFAULT_WIDTH) -> int | None:
    """``COLUMNS`` when it is a whole number (raised to at least 100), else ``default``.

    Empty, non-numeric, zero or negative values fall back to ``default``; a narrow terminal
    gets 100-column tables, which it wraps, rather than tables whose cells are all empty.
    """
    text = os.environ.get("COLUMNS", "").strip()
    if text.isdigit() and int(text) > 0:
        return max(int(text), MIN_TABLE_WIDTH)
    return default


def isatty(stream: Any) -> bool:
    """``stream.isatty()``, False for streams that cannot say (closed, replaced, absent)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def stdout_console() -> Any:
    """The rich Console for results (no colour unless stdout is a terminal and NO_COLOR unset)."""
    return _console("stdout")


def stderr_console() -> Any:
    """The rich Console for progress, warnings and errors."""
    return _console("stderr")


def _console_class() -> Any:
    """rich's Console, except that a closed pipe raises ``BrokenPipeError`` (rich exits 1 itself);
    the CLI's boundary ends quietly with 0 on it, as ``vizcli … | head -1`` should."""
    from rich.console import Console

    class PipeConsole(Console):
        def on_broken_pipe(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")

    return PipeConsole


def _console(which: str) -> Any:
    """A Console for the stream as it is now (made afresh: cheap, and right when a test runner swaps the streams)."""
    Console = _console_class()

    stream = sys.stdout if which == "stdout" else sys.stderr
    no_color = bool(os.environ.get("NO_COLOR")) or not isatty(stream)
    width = terminal_width(None if isatty(stream) else DEFAULT_WIDTH)
    if width is None and isatty(stream):
        width = max(shutil.get_terminal_size().columns, MIN_TABLE_WIDTH)
    return Console(
        stderr=which == "stderr",  # no file=: rich then follows sys.stdout/sys.stderr as they change
        no_color=no_color,
        color_system=None if no_color else "auto",
        width=width,
        highlight=False,
        soft_wrap=False,
    )


# parameter name → command-line flag while the CLI runs a command (speaking_flags); the Python API keeps names
_FLAGS: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("vizcli_flags", default={})  # noqa: B039 (never mutated)


@contextlib.contextmanager
def speaking_flags(flags: dict[str, str]) -> Iterator[None]:
    """Within this block, warnings name parameters as these flags (``threads=10000`` → ``--threads 10000``), as errors do."""
    token = _FLAGS.set(dict(flags))
    try:
        yield
    finally:
        _FLAGS.reset(token)


def warn(message: str) -> None:
    """One warning line on stderr."""
    flags = _FLAGS.get()
    if flags:
        from vizcli.common.errors import mentions_as_flags

        message = mentions_as_flags(message, flags)
    print(f"Warning: {printable(message)}", file=sys.stderr)


def info(message: str) -> None:
    """One informational line on stderr (kept off stdout so results pipe cleanly)."""
    print("\n".join(printable(line) for line in message.split("\n")), file=sys.stderr)




def print_renderables(renderables: list[Any], stream: IO[str]) -> None:
    """Print rich renderables to ``stream`` (stdout's console when it is stdout)."""
    if stream is sys.stdout:
        console = stdout_console()
    else:
        console = _console_class()(file=stream, no_color=True, color_system=None, width=terminal_width())
    for renderable in renderables:
        console.print(renderable)


def progress_factory(description: str, total: int, threshold: int = 2000) -> Callable[[int], Callable[[int], None]] | None:
    """A callable that starts a rich progress bar on stderr for big jobs (None for small ones).

    The returned factory takes the number of steps and gives an ``advance(n)`` callback.
    """
    if total < threshold or not isatty(sys.stderr):
        return None

    def _start(steps: int) -> Callable[[int], None]:
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




def counter_progress(description: str, after_seconds: float = 1.0) -> Callable[..., None] | None:
    """A progress display for streams of unknown length: ``advance(n)``; ``advance(0, done=True)`` ends it.

    Nothing is shown until the work has taken ``after_seconds`` (small jobs stay silent), and
    nothing at all when stderr is not a terminal.
    """
    import time

    state: dict[str, Any] = {"count": 0, "start": time.perf_counter(), "progress": None, "task": None}
    if not isatty(sys.stderr):
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


def tolerate_narrow_encodings() -> None:
    """On a non-UTF-8 stdout/stderr (``PYTHONIOENCODING=ascii``) print what fits and escape the rest."""
    for stream in (sys.stdout, sys.stderr):
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
        if encoding != "utf8" and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
