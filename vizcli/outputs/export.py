"""``vizcli export OUTPUT --layout L -o DEST``: an output in a layout other tools read.

The layouts are the kind's (``OutputKind.export_layouts``): the bottom-up-attention TSV and npz
folder for roi outputs, JSON lines, TSV and ``.npy`` for embed outputs. A single-input file is
exported as the rows it holds.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from vizcli.common.errors import BadInput


def export_output(output: str, layout: str | None, destination: str, feature: str | None = None) -> tuple[str, int, str]:
    """Write ``output`` in ``layout`` (default: the kind's first) to ``destination``; returns (written, count, layout)."""
    from vizcli.common.files import refuse_overwriting_inputs
    from vizcli.outputs.merge import as_dataset_output
    from vizcli.outputs.reading import about_stored, open_with_kind

    with about_stored():
        stored, kind, rows_of = open_with_kind(output)
    layouts = list(kind.export_layouts)
    chosen = layout or layouts[0]
    if chosen not in kind.export_layouts:
        raise BadInput(f"{kind.command} outputs export as {', '.join(layouts)}", parameter="layout", value=chosen)
    refuse_overwriting_inputs(destination, [output, *(str(unit) for unit in stored.units)])
    with about_stored():
        refuse_null_vectors(rows_of, kind.key, output)
    options: dict[str, Any] = {"feature": feature}
    if stored.form != "file":  # errors inside name -o (the destination) or OUTPUT (read as a positional) themselves
        written, count = kind.function_named(kind.export_layouts[chosen])(output, chosen, destination, options)
        return written, count, chosen
    parent = Path(destination).resolve().parent if destination != "-" else Path.cwd()
    with tempfile.TemporaryDirectory(prefix=".vizcli-export-", dir=parent if parent.is_dir() else None) as scratch:
        with about_stored():
            rows_path = as_dataset_output(stored, kind, rows_of, scratch)
        written, count = kind.function_named(kind.export_layouts[chosen])(rows_path, chosen, destination, options)
    return written, count, chosen


def refuse_null_vectors(rows_of: Any, key: str, output: str) -> None:
    """One ``BadInput`` naming the first row whose vector or box is null: no layout has a place for a missing vector."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for batch in rows_of(None):
        for name in batch.schema.names:
            column = batch.column(name)
            if not (pa.types.is_fixed_size_list(column.type) or pa.types.is_list(column.type)) or not column.null_count:
                continue
            row = pc.index(pc.is_null(column), True).as_py()
            raise BadInput(f"row {batch.column(key)[row].as_py()!r} holds no {name} (null): the output was damaged or edited; "
                           "rerun the run that wrote it", parameter="output", value=output)
