"""Signals and closed pipes: stop cleanly, leave nothing half-written.

SIGINT, SIGTERM and SIGHUP raise ``Interrupted`` in the main thread, so every ``finally``
and every atomic writer runs (temporary files are removed) and the error boundary prints
one line and exits with 128 + the signal number.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from vizcli.common.errors import Interrupted

HANDLED_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


_pending: int | None = None  # the last handled signal, kept in case its raise was swallowed


def _on_signal(signal_number: int, frame: Any) -> None:
    global _pending
    _pending = signal_number
    raise Interrupted(signal_number)


def raise_if_interrupted() -> None:
    """Raise ``Interrupted`` again for a signal whose first raise was swallowed.

    A handler's exception is lost when it lands in a ``__del__`` or a callback that a library
    guards with ``except BaseException`` (Ray's object references and iterators do); long loops
    call this at each step, so such a signal still stops the run at the next one.
    """
    if _pending is not None:
        raise Interrupted(_pending)


def install() -> dict[int, Any]:
    """Route the handled signals to ``Interrupted``; returns the previous handlers."""
    global _pending
    _pending = None
    previous: dict[int, Any] = {}
    for number in HANDLED_SIGNALS:
        try:
            previous[number] = signal.signal(number, _on_signal)
        except ValueError:  # not the main thread (e.g. some test runners)
            pass
    return previous


def restore(previous: dict[int, Any]) -> None:
    """Put back the handlers ``install`` replaced."""
    for number, handler in previous.items():
        signal.signal(number, handler)


def silence_stdout() -> None:
    """Point stdout at /dev/null after its reader went away (``vizcli … | head -1``).

    The interpreter's final flush would otherwise print a BrokenPipeError traceback.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
