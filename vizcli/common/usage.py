"""Click's usage errors (bad choices, bad numbers, unknown options) in vizcli's one-line form."""

from __future__ import annotations

import re
from typing import Any

try:  # typer >= 0.26 vendors click as typer._click; older versions use click itself
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import exceptions as click_errors  # type: ignore[no-redef]

from vizcli.common.errors import shown_value

_NOT_ONE_OF = re.compile(r"^(?:Value error, )?'(?P<value>.*)' is not one of (?P<choices>.*?)\.?$", re.DOTALL)


def usage_message(error: Any) -> str:
    """Click's usage errors in vizcli's form: ``--format xml: use one of table, json``."""
    context = getattr(error, "ctx", None)
    hint = f" (see '{context.command_path} --help')" if context is not None else ""
    param = getattr(error, "param", None)
    if isinstance(error, click_errors.MissingParameter) and param is not None and param.opts:
        name = max(param.opts, key=len) if param.param_type_name == "option" else (param.metavar or param.name or "").upper()
        what = str(getattr(param, "help", "") or "").rstrip(".")
        return f"give {name}" + (f" ({what[0].lower() + what[1:]})" if what else "") + hint
    if isinstance(error, click_errors.BadParameter) and param is not None and param.opts:
        flag = max(param.opts, key=len)
        match = _NOT_ONE_OF.match(str(error.message))
        if match:
            choices = match.group("choices").replace("'", "")
            return f"{flag} {shown_value(match.group('value'))}: use one of {choices}{hint}"
        return f"{flag}: {error.message}{hint}"
    return f"{error.format_message()}{hint}"
