"""The embed dataset job: ``vizcli embed --file corpus -o vectors.parquet`` (or ``-o DIR/``), one row per text.

Schema ``vizcli.embed/2``, one row per text:

=============  =========================================  ===========================================
column         type                                       meaning
=============  =========================================  ===========================================
id             string                                     ``--id-column``'s value, a file's relative path, else the row number
index          int64                                      0-based position in the input
tokens         int32                                      tokens (special ones included) before truncation
truncated      bool                                       longer than the model's limit and cut
text           string                                     only with ``--keep-text``
<pooling>      fixed_size_list<T, D>                      one column per pooling; T and D follow ``--precision``
=============  =========================================  ===========================================

The metadata (key ``vizcli``, JSON) records model, its weights' sha256, poolings, normalization,
prefix, compute dtype, precision (with the int8/uint8 ranges), truncate_dim and the shard; rows
are written a unit at a time by ``vizcli.datasets`` (resumable, shardable, mergeable, local or on Ray).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from vizcli.datasets.run import DatasetJob, Item, ItemsPiece
from vizcli.embed.embedder import CorpusOptions, Embedder
from vizcli.embed.precision import arrow_type, stored_width
from vizcli.embed.texts import InputText

VALUE_BITS = {"float32": 32, "float16": 16, "bfloat16": 16, "int8": 8, "uint8": 8, "binary": 8, "ubinary": 8}


def corpus_schema(options: CorpusOptions, dimensions: int) -> Any:
    import pyarrow as pa

    fields = [pa.field("id", pa.string()), pa.field("index", pa.int64()), pa.field("tokens", pa.int32()),
              pa.field("truncated", pa.bool_())]
    if options.keep_text:
        fields.append(pa.field("text", pa.string()))
    width = stored_width(options.precision, dimensions)
    fields += [pa.field(name, pa.list_(arrow_type(options.precision), width)) for name in options.poolings]
    return pa.schema(fields)


def columns_table(columns: dict[str, Any], schema: Any) -> Any:
    """A batch dict (``embedding_columns``, or an ``Embedder`` result) as a table of ``schema``."""
    import numpy as np
    import pyarrow as pa

    arrays = []
    for field in schema:
        values = columns[field.name]
        if pa.types.is_fixed_size_list(field.type):
            flat = np.ascontiguousarray(values).reshape(-1)
            arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(flat, type=field.type.value_type), field.type.list_size))
        else:
            arrays.append(pa.array(list(values) if field.type == pa.string() else values, type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)



UNIT_TEXTS = 512  # texts a unit holds at most: 20,000 lines are 40 units, so the last one a worker finishes is short


def overflow_problems(batch: dict[str, Any], result: dict[str, Any], limit: int | None = None) -> list[dict[str, Any]]:
    """The texts ``on_overflow="skip"`` dropped: in the batch, not in the result."""
    kept = {str(key) for key in result["id"]}
    where = f"{limit} tokens" if limit else "the model's token limit"
    return [{"id": str(key), "index": int(index), "problem": f"longer than {where}: skipped (on_overflow=skip)"}
            for key, index in zip(batch["id"], batch["index"]) if str(key) not in kept]


def truncated_tally(result: dict[str, Any]) -> dict[str, int]:
    return {"truncated": int(sum(bool(flag) for flag in result["truncated"]))}


def text_batch(items: list[InputText]) -> dict[str, list[Any]]:
    """``Embedder``'s input batch for ``items``."""
    return {"id": [item.key for item in items], "index": [item.index for item in items], "text": [item.text for item in items]}


def embed_job(embedder: Embedder, worker_kwargs: dict[str, Any], metadata: dict[str, Any]) -> DatasetJob:
    """The job for ``run_dataset``: ``Embedder(**worker_kwargs)`` on units of texts; ``embedder`` (built
    here, with the same settings) is the local engine's worker and gives the schema."""
    from vizcli.common.runtime import flat_heap_env

    options = embedder.options
    width = stored_width(options.precision, embedder.dimensions)
    return DatasetJob(
        command="embed", key="id", schema=corpus_schema(options, embedder.dimensions), metadata=metadata, worker=Embedder,
        worker_kwargs=worker_kwargs, to_batch=text_batch, to_rows=columns_table,
        row_bytes=max(1, width * len(options.poolings) * VALUE_BITS[options.precision] // 8), max_unit_rows=UNIT_TEXTS, min_slice_items=UNIT_TEXTS,
        problems_of=functools.partial(overflow_problems, limit=options.max_length), tally_of=truncated_tally,
        actor_env=flat_heap_env(uncached_kernels=True), local_worker=embedder,
    )


@dataclass(frozen=True)
class TextsPiece:
    """Texts of a file, read where the piece runs (a Ray task on the cluster, or this process):
    ``read`` holds ``read_texts``' arguments; ``row_groups`` picks a Parquet file's row groups,
    whose first row is ``start``."""

    read: dict[str, Any]
    row_groups: tuple[int, ...] | None = None
    start: int = 0

    def items(self) -> Iterator[Item]:
        from vizcli.embed.texts import read_texts

        for text in read_texts([], row_groups=self.row_groups, start_index=self.start, **self.read):
            yield Item(text.key, text.index, 1, text)


def text_pieces(read: dict[str, Any], texts: list[str]) -> list[Any]:
    """The input as pieces: a Parquet file's row groups (about 64k rows a piece), one piece for any
    other file or folder, and the texts themselves for arguments and stdin."""
    from pathlib import Path

    from vizcli.embed.texts import read_texts

    file = read.get("file")
    if file is None:
        return [ItemsPiece(tuple(Item(text.key, text.index, 1, text) for text in read_texts(texts, **read)))]
    if str(file).lower().endswith(".parquet") and Path(file).is_file():
        from vizcli.embed.texts import parquet_row_groups

        pieces, group, start, rows = [], [], 0, 0
        for number, count in parquet_row_groups(Path(file), read.get("column"), read.get("id_column")):
            group.append(number)
            rows += count
            if rows >= 65536:
                pieces.append(TextsPiece(read, tuple(group), start))
                start, group, rows = start + rows, [], 0
        if group or not pieces:
            pieces.append(TextsPiece(read, tuple(group), start))
        return pieces
    return [TextsPiece(read)]


def recorded_input(read: dict[str, Any]) -> dict[str, Any]:
    """``read_texts``' arguments as an output records them: the file as an absolute path."""
    import os

    file = read.get("file")
    return {**read, "file": os.path.abspath(file) if file and file != "-" else None}


def first_texts(pieces: list[Any], texts: list[str], read: dict[str, Any], count: int) -> list[Any]:
    """The first ``count`` input texts (the int8 receipt's sample): from memory, or read again from --file."""
    import itertools

    from vizcli.embed.texts import read_texts

    if pieces and isinstance(pieces[0], ItemsPiece):
        return [item.value for item in pieces[0].values[:count]]
    return list(itertools.islice(read_texts(texts, **read), count))
