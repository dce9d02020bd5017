"""Sizes typed as text: ``3x224x224``, ``7``, ``7x5`` — one parser for every command."""

from __future__ import annotations

import re

from vizcli.common.errors import BadInput

_SEPARATORS = re.compile(r"[x×,*]")


def parse_size(
    text: str,
    parameter: str,
    sides: int,
    form: str,
    example: str,
    fill: tuple[int, ...] = (),
    largest_side: int | None = None,
) -> tuple[int, ...]:
    """Whole numbers separated by ``x`` (or ``×``, ``,``, ``*``), padded on the left to ``sides``.

    ``fill`` supplies the leading numbers when fewer are typed (``fill=(3,)`` turns ``224x224``
    into ``(3, 224, 224)``); a single number is repeated over the sides ``fill`` leaves (``7`` →
    ``(7, 7)``). ``form`` and ``example`` word the messages (``"CxHxW"``, ``"3x224x224"``).
    """
    parts = _SEPARATORS.split(str(text).strip().lower())
    try:
        numbers = [int(part) for part in parts]
    except ValueError:
        raise BadInput(f"use {form} with whole numbers, e.g. {example}", parameter=parameter, value=text) from None
    free = sides - len(fill)
    if len(numbers) == 1 and free > 1:
        numbers = numbers * free
    if len(numbers) < sides:
        numbers = list(fill[: sides - len(numbers)]) + numbers
    if len(numbers) != sides:
        numbers_allowed = [str(n) for n in range(1, sides + 1)]
        counts = ", ".join(numbers_allowed[:-1]) + " or " + numbers_allowed[-1] if sides > 1 else "1"
        raise BadInput(
            f"{counts} numbers required ({form}); {len(parts)} given", parameter=parameter, value=text
        )
    if any(number < 1 for number in numbers):
        raise BadInput("every size must be at least 1", parameter=parameter, value=text)
    if largest_side is not None and any(number > largest_side for number in numbers):
        raise BadInput(f"at most {largest_side} per side", parameter=parameter, value=text)
    return tuple(numbers)


MAX_INPUT_VALUES = 3 * 4096 * 4096  # the most values one synthetic model input may hold (shapes --input-size)
