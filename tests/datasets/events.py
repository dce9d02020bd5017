"""Waiting for a process to reach a phase by an event, never by a sleep: the kernel tells us (inotify) when a
file is created, renamed into, written or removed in the folders we watch, and the condition is checked
again each time. Linux only, like the rest of the signal tests."""

from __future__ import annotations

import ctypes
import os
import select
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

_IN_CLOSE_WRITE, _IN_MOVED_TO, _IN_CREATE, _IN_DELETE = 0x8, 0x80, 0x100, 0x200
_MASK = _IN_CLOSE_WRITE | _IN_MOVED_TO | _IN_CREATE | _IN_DELETE
_libc = ctypes.CDLL(None, use_errno=True)


def wait_for(condition: Callable[[], bool], folders: Sequence[Path], timeout: float, process: Any = None) -> None:
    """Return once ``condition()`` holds; it is checked at once and after each change in ``folders``
    (watched as soon as they exist; watch the parent of a folder the process creates). Fails if
    ``process`` ends first or ``timeout`` seconds pass (a limit, not a timing: the event ends the wait)."""
    descriptor = _libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
    if descriptor < 0:
        raise OSError(ctypes.get_errno(), "inotify_init1 failed")
    watched: set[Path] = set()
    deadline = time.monotonic() + timeout
    try:
        while True:
            for folder in folders:
                if folder not in watched and folder.is_dir():
                    if _libc.inotify_add_watch(descriptor, str(folder).encode(), _MASK) < 0:
                        raise OSError(ctypes.get_errno(), f"cannot watch {folder}")
                    watched.add(folder)
            if condition():
                return
            if process is not None and process.poll() is not None:
                raise AssertionError(f"the process ended (exit {process.returncode}) before the event")
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no event within {timeout:g} s")
            # woken by the kernel on a change; at most a second between checks that the process still runs
            ready, _, _ = select.select([descriptor], [], [], min(left, 1.0))
            if ready:
                try:
                    os.read(descriptor, 1 << 16)
                except BlockingIOError:
                    pass
    finally:
        os.close(descriptor)


def count(folder: Path, pattern: str) -> int:
    return len(list(folder.glob(pattern))) if folder.is_dir() else 0


def wait_for_exit(pids: Sequence[int], timeout: float) -> list[int]:
    """Wait until the processes ``pids`` have ended (the kernel wakes us: a pidfd turns readable when its
    process exits); returns those still running after ``timeout`` seconds."""
    descriptors = {}
    for pid in pids:
        try:
            descriptors[os.pidfd_open(pid)] = pid
        except ProcessLookupError:  # already gone
            continue
    deadline = time.monotonic() + timeout
    try:
        while descriptors and (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select(list(descriptors), [], [], left)
            for descriptor in ready:
                os.close(descriptor)
                del descriptors[descriptor]
        return sorted(descriptors.values())
    finally:
        for descriptor in descriptors:
            os.close(descriptor)
