"""Opening any output with its kind, and its rows as batches whatever its form.

A single-input file becomes the same rows a dataset run would hold (its kind's ``single_rows``),
so every verb treats the three forms alike.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from vizcli.common.errors import VizcliError
from vizcli.datasets.kinds import OutputKind
from vizcli.datasets.stored import StoredOutput, iter_units, open_output
from vizcli.outputs.registry import kind_of

RowsOf = Callable[[list[str] | None], Iterator[Any]]


@contextlib.contextmanager
def about_stored() -> Iterator[None]:
    """Errors the reading code raises about ``output`` name the positional OUTPUT here, not ``-o``."""
    try:
        yield
    except VizcliError as error:
        if error.parameter == "output":
            error.parameter = "stored"
            error.args = (error._subject_python() + error.detail,)
        raise


def open_with_kind(path: str) -> tuple[StoredOutput, OutputKind, RowsOf]:
    """The output at ``path``, its kind, and a function giving its rows (only ``columns`` when given) as tables."""
    stored = open_output(path, parameter="stored")
    kind = kind_of(stored.metadata, path)
    if stored.form == "file":
        table = kind.function("single_rows")(stored.arrays, stored.metadata, path)

        def single(columns: list[str] | None) -> Iterator[Any]:
            yield table.select(columns) if columns else table

        return stored, kind, single

    def rows_of(columns: list[str] | None) -> Iterator[Any]:
        yield from iter_units(stored, columns)

    return stored, kind, rows_of
