"""The error hierarchy. The CLI turns these into one line on stderr and an exit code.

``BadInput`` (exit 2) is for anything the user can fix by changing what they typed or
gave us: an option value, a path, a file's content, a box. ``RunFailure`` (exit 1) is for
what goes wrong while running: a model that will not load, a forward pass that fails,
a disk that fills up. Any other exception is a bug and keeps its traceback.

The core speaks Python: an error about one argument names it and its value
(``BadInput("must be at least 1", parameter="batch_size", value=0)`` reads
``batch_size=0: must be at least 1``), and other parameters mentioned in the text are
written ``name=...``. The command line speaks flags: ``for_command_line`` turns every
parameter name into the flag the user typed (``--batch-size 0: must be at least 1``).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Any

_UNSET: Any = object()


class VizcliError(Exception):
    """Base class; ``exit_code`` is what the CLI exits with.

    ``parameter`` and ``value`` (optional) name the argument the message is about.
    """

    exit_code = 1

    def __init__(self, message: str, *, parameter: str | None = None, value: Any = _UNSET):
        self.detail = message
        self.parameter = parameter
        self.value = value
        super().__init__(self._subject_python() + message)

    def _subject_python(self) -> str:
        if self.parameter is None:
            return ""
        if self.value is _UNSET:
            return f"{self.parameter}: "
        return f"{self.parameter}={self.value!r}: "

    def for_command_line(self, flags: Mapping[str, str]) -> str:
        """The message with parameter names replaced by command-line flags.

        ``flags`` maps a parameter name to its flag (``{"batch_size": "--batch-size"}``);
        names not in it become ``--name-with-dashes``. Values are shown as a shell would
        need them typed (quoted only when necessary).
        """
        detail = mentions_as_flags(self.detail, flags)
        if self.parameter is None:
            return detail
        flag = flag_for(self.parameter, flags)
        if not flag:  # a positional argument: its value names it
            return f"{shown_value(self.value)}: {detail}" if self.value is not _UNSET else detail
        if self.value is _UNSET:
            return f"{flag}: {detail}"
        return f"{flag} {shown_value(self.value)}: {detail}"


class BadInput(VizcliError):
    """The user's input is wrong; the message names the input and the fix."""

    exit_code = 2


class RunFailure(VizcliError):
    """Something failed at run time (model loading, forward pass, writing output)."""

    exit_code = 1


class Interrupted(BaseException):
    """SIGINT / SIGTERM / SIGHUP arrived; exit code follows the shell convention 128 + signal.

    A ``BaseException``, as ``KeyboardInterrupt`` is: a library's ``except Exception`` (Ray Data logs
    a traceback for every exception it sees pass) lets it through untouched; every ``finally`` runs.
    """

    parameter: str | None = None
    value: Any = _UNSET

    def __init__(self, signal_number: int, outcome: str = "no output file was written"):
        import signal

        self.signal_number = signal_number
        name = signal.Signals(signal_number).name
        self.detail = f"interrupted by {name}; {outcome}"
        super().__init__(self.detail)
        self.exit_code = 128 + signal_number

    def for_command_line(self, flags: Mapping[str, str]) -> str:
        return mentions_as_flags(self.detail, flags)


def flag_for(parameter: str, flags: Mapping[str, str]) -> str:
    """The command-line flag for a core parameter name (``max_length`` → ``--max-length``); "" for a
    positional argument (``flags`` maps it to "")."""
    if parameter in flags:
        return flags[parameter]
    return "--" + parameter.replace("_", "-")


def shown_value(value: Any) -> str:
    """``value`` as it would be typed after its flag: shell-quoted only when it must be."""
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    return shlex.quote(str(value))


_MENTION = re.compile(r"\b([a-z][a-z0-9_]*)=(?!=)")
_SWITCH = re.compile(r"\b([a-z][a-z0-9_]*)=True\b")


def mentions_as_flags(text: str, flags: Mapping[str, str]) -> str:
    """``... or on_overflow='skip'`` → ``... or --on-overflow skip``, ``resume=True`` → ``--resume``,
    for known parameter names: the core names its parameters, the command line shows flags."""

    def _switch(match: re.Match[str]) -> str:  # resume=True → --resume
        name = match.group(1)
        return flags[name] if flags.get(name) else match.group(0)

    def _replace(match: re.Match[str]) -> str:
        name = match.group(1)
        return f"{flags[name]} " if flags.get(name) else match.group(0)

    replaced = _MENTION.sub(_replace, _SWITCH.sub(_switch, text))
    # a quoted simple value after a flag reads as the user types it: --on-overflow 'skip' → --on-overflow skip
    return re.sub(r"(--[a-z][a-z0-9-]* )'([A-Za-z0-9_.,:/|-]+)'", r"\1\2", replaced)


def one_line(message: str) -> str:
    """Collapse a message to one line (error output must be exactly one line), control characters escaped."""
    return printable(" ".join(str(message).split()))


def printable(text: str) -> str:
    """``text`` with control and escape characters shown as ``\\x1b``-style escapes, never sent raw."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() or char == " " else repr(char)[1:-1] for char in text)


def shorten(text: str, limit: int = 120) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis (user input echoed in messages)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_text(error: BaseException, limit: int = 200) -> str:
    """A library's error message on one line, cut to ``limit`` characters (quoted inside ours)."""
    return shorten(" ".join(str(error).split()), limit)
