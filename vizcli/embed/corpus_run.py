"""``vizcli embed --file corpus -o vectors.parquet`` (or ``-o DIR/``): a corpus streamed to rows.

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
are written a unit at a time through ``vizcli.common.tables`` (resumable, shardable, mergeable).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from vizcli.common.errors import BadInput, Interrupted
from vizcli.common.formats import EMBED_DATASET_SCHEMA
from vizcli.common.sharding import Shard
from vizcli.common.tables import TableSink
from vizcli.common.unique_keys import KeyIndex, UniqueKeys
from vizcli.embed.encode import BATCH_SIZE, BATCH_TOKENS, Embedding, Encoder
from vizcli.embed.precision import NEEDS_RANGES, arrow_type, check_precision, quantize, ranges_of, stored_width
from vizcli.embed.texts import InputText


@dataclass
class CorpusOptions:
    """How vectors are made and stored (everything but the input and the output)."""

    poolings: tuple[str, ...] = ("mean",)
    normalize: bool = False
    prefix: str = ""
    precision: str = "float32"
    calibration: int = 1000  # texts whose vectors set the int8/uint8 ranges
    ranges: dict[str, Any] | None = None  # given ranges (from --ranges FILE), pooling → [2, D]
    truncate_dim: int | None = None
    keep_text: bool = False
    batch_size: int = BATCH_SIZE
    batch_tokens: int | None = BATCH_TOKENS
    max_length: int | None = None
    on_overflow: str = "warn"


@dataclass
class CorpusSummary:
    output: str
    rows: int
    skipped: int  # ids already on disk (--resume)
    ranges: dict[str, Any] | None


def vectors(encoder: Encoder, items: Iterable[InputText], options: CorpusOptions,
             progress: Callable[[int], None] | None = None) -> Iterator[Embedding]:
    """Embeddings with the prefix added before tokenization, truncated to ``truncate_dim`` and then
    normalised (Matryoshka order); the texts come back without the prefix."""
    import numpy as np

    prefixed = (replace(item, text=options.prefix + item.text) for item in items) if options.prefix else items
    cut = options.truncate_dim
    stream = encoder.stream(prefixed, options.poolings, batch_size=options.batch_size, batch_tokens=options.batch_tokens,
                            max_length=options.max_length,
                            on_overflow=options.on_overflow, normalize=options.normalize and cut is None, progress=progress)
    for row in stream:
        if options.prefix:
            row.text = row.text[len(options.prefix):]
        if cut is not None:
            for name, vector in row.vectors.items():
                vector = vector[:cut]
                if options.normalize:
                    vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
                row.vectors[name] = vector
        yield row


def calibrate(encoder: Encoder, items: Iterable[InputText], options: CorpusOptions) -> dict[str, Any]:
    """int8/uint8 ranges per pooling from the first ``options.calibration`` texts."""
    import numpy as np

    sample = list(itertools.islice(items, options.calibration))
    rows = list(vectors(encoder, sample, options))
    return {name: ranges_of(np.stack([row.vectors[name] for row in rows])) for name in options.poolings}


def corpus_schema(options: CorpusOptions, dimensions: int) -> Any:
    import pyarrow as pa

    fields = [pa.field("id", pa.string()), pa.field("index", pa.int64()), pa.field("tokens", pa.int32()),
              pa.field("truncated", pa.bool_())]
    if options.keep_text:
        fields.append(pa.field("text", pa.string()))
    width = stored_width(options.precision, dimensions)
    fields += [pa.field(name, pa.list_(arrow_type(options.precision), width)) for name in options.poolings]
    return pa.schema(fields)


def run_corpus(
    encoder: Encoder,
    items: Iterable[InputText],
    output: str,
    options: CorpusOptions,
    metadata: dict[str, Any],
    calibration_items: Iterable[InputText] | None = None,
    shard: Shard | None = None,
    resume: bool = False,
    shard_format: str = "safetensors",
    unit_rows: int = 65536,
    progress: Callable[[int], None] | None = None,
    engine: Engine | None = None,
) -> CorpusSummary:
    """Embed every text of ``items`` in this shard (and not yet on disk) into ``output``.

    ``engine`` turns the texts into batch dicts (``embedding_columns``): ``local_engine`` (the
    default) in this process, ``ray_engine`` on Ray actors.
    """
    check_precision(options.precision)
    shard = shard or Shard()
    dimensions = encoder.hidden_size
    if options.truncate_dim is not None:
        if not 1 <= options.truncate_dim <= dimensions:
            raise BadInput(f"use 1..{dimensions} (the model's width)", parameter="truncate_dim", value=options.truncate_dim)
        dimensions = options.truncate_dim
    ranges = options.ranges
    if options.precision in NEEDS_RANGES and ranges is None:
        if calibration_items is None:
            raise BadInput("int8/uint8 need a calibration sample or a ranges file", parameter="precision", value=options.precision)
        ranges = calibrate(encoder, calibration_items, options)
    meta = {**metadata, "schema": EMBED_DATASET_SCHEMA, "pooling": list(options.poolings), "normalize": options.normalize,
            "prefix": options.prefix, "precision": options.precision, "truncate_dim": options.truncate_dim,
            "dimensions": dimensions, "shard": str(shard),
            "ranges": {name: value.tolist() for name, value in ranges.items()} if ranges and options.precision in NEEDS_RANGES else None}
    schema = corpus_schema(options, dimensions)
    shapes: dict[str, tuple[int, ...]] = {}
    sink = TableSink(output, schema, meta, "id", shard_format, resume, shapes)
    done = sink.done_keys() if resume else KeyIndex([])
    skipped = {"count": 0}

    def wanted(item: InputText) -> bool:
        if not shard.holds(item.key):
            return False
        if item.key in done:
            skipped["count"] += 1
            return False
        return True

    todo = (item for item in items if wanted(item))
    batches = (engine or local_engine(encoder, progress))(todo, replace(options, ranges=ranges))
    seen = UniqueKeys()  # 8 bytes an id, not a set's ~90
    rows_written = 0
    pending: list[Any] = []
    pending_rows = 0

    def written() -> Iterator[str]:  # every id handed over so far: on disk, then waiting for a full unit
        yield from sink.keys()
        for table in pending:
            yield from (str(key) for key in table.column("id").to_pylist())

    try:
        for batch in batches:
            repeated = seen.add([str(key) for key in batch["id"]], written)
            if repeated is not None:
                raise BadInput(f"id {repeated!r} appears twice; ids must be unique (check --id-column)")
            pending.append(columns_table(batch, schema))
            pending_rows += len(batch["id"])
            while pending_rows >= unit_rows:  # whole units of unit_rows, whatever size the batches come in
                import pyarrow as pa

                joined = pa.concat_tables(pending)
                rows_written += _flush(sink, [joined.slice(0, unit_rows)])
                rest = joined.slice(unit_rows)
                pending, pending_rows = ([rest] if rest.num_rows else []), rest.num_rows
        rows_written += _flush(sink, pending)
    except Interrupted as stop:
        kept = f"{len(sink.units)} finished units are kept in {sink.folder}; rerun with --resume to finish"
        raise Interrupted(stop.signal_number, kept) from None
    return CorpusSummary(sink.finish(), rows_written, skipped["count"], ranges)


def embedding_columns(rows: list[Embedding], options: CorpusOptions, ranges: dict[str, Any] | None, width: int) -> dict[str, Any]:
    """The rows as a batch dict of numpy arrays: id, index, tokens, truncated, text, and one stored
    ``[N, D]`` array per pooling (quantized to ``options.precision``)."""
    import numpy as np

    columns: dict[str, Any] = {
        "id": np.array([row.id for row in rows], dtype=object), "index": np.array([row.index for row in rows], dtype=np.int64),
        "tokens": np.array([row.tokens for row in rows], dtype=np.int32), "truncated": np.array([row.truncated for row in rows], dtype=bool),
        "text": np.array([row.text for row in rows], dtype=object),
    }
    dimensions = options.truncate_dim or width
    for name in options.poolings:
        stacked = np.stack([row.vectors[name] for row in rows]) if rows else np.zeros((0, dimensions), np.float32)
        columns[name] = quantize(stacked, options.precision, ranges.get(name) if ranges else None)
    return columns


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


def _flush(sink: TableSink, tables: list[Any]) -> int:
    import pyarrow as pa

    if not tables:
        return 0
    table = pa.concat_tables(tables)
    sink.write(table)
    return int(table.num_rows)


Engine = Callable[[Iterable[InputText], CorpusOptions], Iterator[dict[str, Any]]]
ENGINE_ROWS = 1024  # rows per batch dict the local engine hands over


def local_engine(encoder: Encoder, progress: Callable[[int], None] | None = None) -> Engine:
    """Batch dicts of ``ENGINE_ROWS`` rows computed in this process."""

    def run(items: Iterable[InputText], options: CorpusOptions) -> Iterator[dict[str, Any]]:
        chunk: list[Embedding] = []
        for row in vectors(encoder, items, options, progress):
            chunk.append(row)
            if len(chunk) >= ENGINE_ROWS:
                yield embedding_columns(chunk, options, options.ranges, encoder.hidden_size)
                chunk = []
        if chunk:
            yield embedding_columns(chunk, options, options.ranges, encoder.hidden_size)

    return run


def ray_engine(model: str | None, dtype: str, device: str, actors: int, threads: int) -> Engine:
    """Batch dicts computed by ``Embedder`` actors on Ray (see ``vizcli.common.ray_engine``): each block
    is one window of the local engine's stream, so every text meets the same batch as it would locally."""

    def run(items: Iterable[InputText], options: CorpusOptions) -> Iterator[dict[str, Any]]:
        from vizcli.common.ray_engine import map_blocks
        from vizcli.common.runtime import flat_heap_env
        from vizcli.embed.embedder import Embedder
        from vizcli.embed.encode import window_size

        kwargs = {"model": model, "pooling": options.poolings, "dtype": dtype, "precision": options.precision,
                  "prefix": options.prefix, "normalize": options.normalize, "truncate_dim": options.truncate_dim,
                  "ranges": {name: value.tolist() for name, value in options.ranges.items()} if options.ranges else None,
                  "batch_size": options.batch_size, "batch_tokens": options.batch_tokens, "max_length": options.max_length,
                  "on_overflow": options.on_overflow, "device": device, "threads": threads}
        size = window_size(options.batch_size)
        blocks = ({"id": [item.key for item in chunk], "index": [item.index for item in chunk], "text": [item.text for item in chunk]}
                  for chunk in _chunks(items, size))
        for batch in map_blocks(blocks, Embedder, kwargs, actors, threads, flat_heap_env(uncached_kernels=True)):
            if not options.keep_text:
                batch.pop("text", None)
            yield batch

    return run


def _chunks(items: Iterable[InputText], size: int) -> Iterator[list[InputText]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk
