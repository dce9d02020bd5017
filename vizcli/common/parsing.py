"""Parsing untrusted JSON with limits: depth, number size, and a position in every error.

``json.loads`` raises ``RecursionError`` on deep nesting and ``ValueError`` on integers of
more than 4,300 digits; here both, and ordinary syntax errors, become one ``BadInput`` that
names the input and where in it the problem is. A UTF-8 byte-order mark is accepted.
"""

from __future__ import annotations

import json
from typing import Any

from vizcli.common.errors import BadInput

MAX_DEPTH = 64  # reported as the readable depth when the parser's own recursion limit is hit
MAX_NUMBER_DIGITS = 40  # longer numbers are no coordinate, index or id we can use


def _number(text: str) -> Any:
    if len(text.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise _TooLong(text)
    return int(text)


def _float(text: str) -> float:
    if len(text) > MAX_NUMBER_DIGITS * 2:
        raise _TooLong(text)
    return float(text)


class _TooLong(ValueError):
    def __init__(self, text: str):
        super().__init__(text)
        self.digits = len(text)


def parse_json(text: str, parameter: str, value: str, where: str = "") -> Any:
    """``json.loads(text)`` with depth and number limits; errors name ``parameter=value`` and the position."""
    text = text.removeprefix("\ufeff")
    try:
        return json.loads(text, parse_int=_number, parse_float=_float)
    except _TooLong as error:
        raise BadInput(
            f"{where}a number of {error.digits} characters; at most {MAX_NUMBER_DIGITS} digits", parameter=parameter, value=value
        ) from None
    except json.JSONDecodeError as error:
        raise BadInput(
            f"{where}invalid JSON at line {error.lineno} column {error.colno} ({error.msg})", parameter=parameter, value=value
        ) from None
    except RecursionError:
        line, column = _too_deep_at(text)
        raise BadInput(
            f"{where}JSON nested too deeply at line {line} column {column}; at most {MAX_DEPTH} levels are read",
            parameter=parameter, value=value,
        ) from None
    except ValueError as error:  # e.g. an integer past Python's digit limit inside a key
        raise BadInput(f"{where}invalid JSON ({error})", parameter=parameter, value=value) from None


def _too_deep_at(text: str) -> tuple[int, int]:
    """(line, column) where bracket nesting outside strings first passes ``MAX_DEPTH`` (only on the error path)."""
    depth = 0
    line, column = 1, 0
    in_string = escaped = False
    for char in text:
        column += 1
        if char == "\n":
            line, column = line + 1, 0
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return line, column
        elif char in "]}":
            depth -= 1
    return line, column


def is_unicode(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8: no lone surrogates (undecodable bytes of an
    argument, or a ``\\ud800`` escape in JSON)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
