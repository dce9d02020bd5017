"""Writing ``embed`` results: streamed text formats, incremental ``.npy``, whole-file archives.

Schemas (stable, ``vizcli.embed/1``):

* ``jsonl`` – per input: ``{"index", "text", "tokens", "truncated", <pooling>: [floats], …}``;
  ``index`` is the 0-based input line; ``tokens`` counts special tokens, before truncation.
* ``json``  – ``{"schema", "metadata", "rows": [the jsonl objects]}``.
* ``csv``/``tsv`` – ``index, text, tokens, truncated, <pooling>_0 … <pooling>_{H-1}, …``.
* ``npy``   – ``float32 [N, H]`` for the one pooling; metadata (and indexes) in ``FILE.json``.
* ``npz``   – one ``float32 [N, H]`` per pooling, ``index`` int64, ``tokens`` int64,
  ``truncated`` bool, ``texts`` unicode, ``metadata`` JSON string.
* ``safetensors`` – the same tensors except ``texts``; header metadata as JSON strings.

Floats are written with ``repr`` of the float32 value, which reads back to the same float32.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from vizcli.common.console import print_renderables
from vizcli.common.errors import printable, shorten
from vizcli.common.files import atomic_output, open_destination, seekable_destination, writes_side_files
from vizcli.common.formats import EMBED_SCHEMA, EMBED_SIMILARITY_SCHEMA, NpyStreamWriter, to_json, write_arrays, write_records
from vizcli.embed.encode import Embedding, Encoder, cosine_matrix
from vizcli.embed.loading import package_versions


def metadata(encoder: Encoder, poolings: tuple[str, ...], normalize: bool, max_length: int | None) -> dict[str, Any]:
    return {
        "schema": EMBED_SCHEMA,
        "model": encoder.name,
        "model_path": str(encoder.path),
        "pooling": list(poolings),
        "normalize": normalize,
        "dtype": encoder.dtype,
        "max_length": max_length or encoder.max_length,
        "hidden_size": encoder.hidden_size,
        "versions": package_versions(),
    }


def _record(row: Embedding) -> dict[str, Any]:
    record: dict[str, Any] = {"index": row.index, "text": row.text, "tokens": row.tokens, "truncated": row.truncated}
    for name, vector in row.vectors.items():
        record[name] = [float(value) for value in vector]
    return record


def write_embeddings(rows: Iterable[Embedding], poolings, fmt: str, path: str | None, meta: dict) -> int:
    if fmt in ("jsonl", "csv", "tsv"):
        with open_destination(path, binary=False) as stream:
            return write_records((_record(row) for row in rows), fmt, stream)
    if fmt == "json":
        with open_destination(path, binary=False) as stream:
            return write_records((_record(row) for row in rows), "json", stream,
                                     document={"schema": meta["schema"], "metadata": meta})
    if fmt == "npy":
        return _write_npy(rows, poolings[0], path, meta)
    return _write_archive(list(rows), poolings, fmt, path, meta)


def _write_npy(rows: Iterable[Embedding], pooling: str, path: str | None, meta: dict) -> int:
    indexes, truncated = [], []
    with seekable_destination(path) as handle:
        writer = NpyStreamWriter(handle, meta["hidden_size"])
        for row in rows:
            writer.write(row.vectors[pooling])
            indexes.append(row.index)
            truncated.append(row.index) if row.truncated else None
        writer.close()
    if writes_side_files(path):
        sidecar = dict(meta, rows=len(indexes), index=indexes, truncated_rows=truncated)
        with atomic_output(path + ".json", binary=False) as handle:
            handle.write(to_json(sidecar) + "\n")
    return len(indexes)


def _write_archive(rows: list[Embedding], poolings, fmt: str, path: str | None, meta: dict) -> int:
    import numpy as np

    width = meta["hidden_size"]
    arrays: dict[str, Any] = {
        name: np.stack([row.vectors[name] for row in rows]).astype(np.float32) if rows else np.zeros((0, width), np.float32)
        for name in poolings
    }
    arrays["index"] = np.array([row.index for row in rows], dtype=np.int64)
    arrays["tokens"] = np.array([row.tokens for row in rows], dtype=np.int64)
    arrays["truncated"] = np.array([row.truncated for row in rows], dtype=bool)
    if fmt == "npz":
        arrays["texts"] = np.array([row.text for row in rows], dtype=str)
    write_arrays(arrays, meta, fmt, path)
    return len(rows)


def write_similarity(rows: list[Embedding], poolings, fmt: str, path: str | None) -> None:
    """Cosine similarity of every pair of inputs, per pooling: a table, or JSON."""
    matrices = {name: cosine_matrix([row.vectors[name] for row in rows]) for name in poolings}
    if fmt == "json":
        document = {
            "schema": EMBED_SIMILARITY_SCHEMA,
            "texts": [{"index": row.index, "text": row.text} for row in rows],
            "similarity": {name: matrix.tolist() for name, matrix in matrices.items()},
        }
        with open_destination(path, binary=False) as stream:
            stream.write(to_json(document) + "\n")
        return
    from rich.table import Table

    renderables: list[Any] = []
    for name, matrix in matrices.items():
        table = Table(title=f"cosine similarity, {name} pooling", title_justify="left")
        table.add_column("#", justify="right")
        table.add_column("text")
        for row in rows:
            table.add_column(str(row.index), justify="right")
        for row, values in zip(rows, matrix):
            text = shorten(printable(row.text), 40)
            table.add_row(str(row.index), text, *(f"{value:.3f}" for value in values))
        renderables.append(table)
    with open_destination(path, binary=False) as stream:
        print_renderables(renderables, stream)
