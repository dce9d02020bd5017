"""An embed output's vectors in the layouts other tools read: ``jsonl``, ``tsv`` and ``npy``.

* ``jsonl``: one object per text: ``id``, ``index``, ``text`` where kept, and one list per pooling.
* ``tsv``: ``id`` then the chosen pooling's values, one text per line, no header (what
  embedding projectors and ``numpy.loadtxt`` read).
* ``npy``: the chosen pooling's ``[N, D]`` float32 array, in stored order, with ``FILE.npy.ids.txt``
  beside it (one id per line, the array's row order).

Rows are read a unit or a row group at a time; memory holds one batch (``npy`` writes row by row).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from vizcli.common.errors import BadInput

LAYOUTS = ("jsonl", "tsv", "npy")
NOT_VECTORS = ("id", "index", "tokens", "truncated", "text")


def export_vectors(output: str, layout: str, destination: str, feature: str | None) -> tuple[str, int]:
    """Write the embed output at ``output`` in ``layout``; returns (destination, texts written)."""
    from vizcli.datasets.stored import iter_units, open_output

    stored = open_output(output, parameter="stored")  # the positional OUTPUT of vizcli export
    poolings = [name for name in stored.schema.names if name not in NOT_VECTORS]
    chosen = feature or (poolings[0] if len(poolings) == 1 else None)
    if layout in ("npy", "tsv") and chosen not in poolings:
        raise BadInput(f"{layout} holds one pooling's vectors; choose one with feature=NAME ({', '.join(poolings)})",
                       parameter="feature", value=feature)
    if layout not in LAYOUTS:
        raise BadInput(f"use one of {', '.join(LAYOUTS)}", parameter="layout", value=layout)
    batches = iter_units(stored)
    if layout == "npy":
        return destination, _write_npy(batches, destination, str(chosen))
    from vizcli.common.files import open_destination

    with open_destination(None if destination == "-" else destination, binary=False) as handle:
        count = 0
        for batch in batches:
            for row in batch.to_pylist():
                handle.write(_line(row, layout, poolings, str(chosen)))
                count += 1
    return destination, count


def _line(row: dict[str, Any], layout: str, poolings: list[str], chosen: str) -> str:
    if layout == "jsonl":
        kept = {name: row[name] for name in ("id", "index", "text") if name in row}
        return json.dumps({**kept, **{name: row[name] for name in poolings}}, ensure_ascii=False) + "\n"
    values = row[chosen] or []
    return "\t".join([str(row["id"]).replace("\t", " "), *(repr(float(value)) for value in values)]) + "\n"


def _write_npy(batches: Iterator[Any], destination: str, chosen: str) -> int:
    import numpy as np

    from vizcli.common.files import atomic_output
    from vizcli.common.formats import NpyStreamWriter

    if destination == "-":
        raise BadInput("npy must go to a file: give -o vectors.npy", parameter="output", value=destination)
    count = 0
    with atomic_output(destination) as handle, atomic_output(destination + ".ids.txt", binary=False) as ids:
        writer = None
        for batch in batches:
            column = batch.column(chosen)
            width = column.type.list_size
            values = np.asarray(column.combine_chunks().flatten().to_numpy(zero_copy_only=False), dtype="<f4").reshape(-1, width)
            if writer is None:
                writer = NpyStreamWriter(handle, width)
            for vector, key in zip(values, batch.column("id").to_pylist()):
                writer.write(vector)
                ids.write(f"{key}\n")
                count += 1
        if writer is not None:
            writer.close()
    return count
