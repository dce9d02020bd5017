"""The error hierarchy. The CLI turns these into one line on stderr and an exit code.

``BadInput`` (exit 2) is for anything the user can fix by changing what they typed or
gave us: an option value, a path, a file's content, a box. ``RunFailure`` (exit 1) is for
what goes wrong while running: a model that will not load, a forward pass that fails,
a disk that fills up. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class VizcliError(Exception):
    """Base class; ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class BadInput(VizcliError):
    """The user's input is wrong; the message names the input and the fix."""

    exit_code = 2


class RunFailure(VizcliError):
    """Something failed at run time (model loading, forward pass, writing output)."""

    exit_code = 1


class Interrupted(VizcliError):
    """SIGINT / SIGTERM arrived; exit code follows the shell convention 128 + signal."""

    def __init__(self, signal_number: int):
        import signal

        self.exit_code = 128 + signal_number
        name = signal.Signals(signal_number).name
        super().__init__(f"interrupted by {name}; no output file was written")


def require_file(path: str, label: str, wanted: str):
    """``Path(path)`` if it is an existing file, else ``BadInput`` ("LABEL PATH: no such file…").

    ``wanted`` finishes "is a folder; give …", e.g. "an image file".
    """
    from pathlib import Path

    file = Path(path)
    if not file.exists():
        raise BadInput(f"{label} {path}: no such file; check the path")
    if file.is_dir():
        raise BadInput(f"{label} {path}: is a folder; give {wanted}")
    return file


def one_line(message: str) -> str:
    """Collapse a message to one line (error output must be exactly one line)."""
    return " ".join(str(message).split())
