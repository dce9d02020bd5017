"""An embed output opened for search: its recorded settings, and its vectors read back in blocks.

The output is checked as ``merge`` and ``verify`` check it (``vizcli.datasets.merge.read_output``: a
Parquet file, or a shard folder whose manifest is complete and whose shards match their sha256),
then read a block at a time: a Parquet file by record batches of ``block_rows`` rows, a shard
folder shard by shard (``vizcli.datasets.units.read_unit``), so memory stays at one block.

Stored vectors come back as ``float32 [n, D]`` whatever their precision (``vizcli.embed.precision``):
float16 widened, bfloat16's raw bits shifted back, int8/uint8 at the centre of their bucket (from
the recorded ranges), binary/ubinary as ±1 per bit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vizcli.common.errors import BadInput
from vizcli.common.formats import EMBED_DATASET_SCHEMA

BLOCK_ROWS = 65536  # rows a block holds: 96 MiB of float32 vectors at 384 dimensions
PARQUET_READ_ROWS = 8192  # rows decoded from Parquet at a time: Arrow holds about 4× a batch's vectors while decoding it
ROW_COLUMNS = ("id", "index", "tokens", "truncated", "text")


@dataclass
class Block:
    """Rows ``start .. start + len(ids)`` of an output: ids, texts (when kept and asked for) and
    ``vectors`` (``float32 [n, D]``)."""

    start: int
    ids: Any  # list[str] or an object array [n]
    texts: Any  # the same, or None when no text is kept
    vectors: Any


class EmbedOutput:
    """An embed output (``vizcli embed -o vectors.parquet`` or ``-o DIR/``) opened for reading.

    ``pooling``: which vector column to read when the output holds several (default: the first
    recorded one). Raises ``BadInput`` naming ``dataset`` for anything that is not a whole embed output.
    """

    def __init__(self, dataset: str, pooling: str | None = None, block_rows: int = BLOCK_ROWS) -> None:
        from vizcli.datasets.merge import read_output

        if block_rows < 1:
            raise BadInput("use at least 1", parameter="block_rows", value=block_rows)
        self.path = str(dataset)
        try:
            schema, metadata, units = read_output(self.path)
        except BadInput as error:
            raise BadInput(error.detail.replace("give finished outputs", "give a finished embed output"),
                           parameter="dataset", value=self.path) from None
        if metadata.get("schema") != EMBED_DATASET_SCHEMA:
            made_by = metadata.get("schema") or "rows of no vizcli schema"
            raise BadInput(f"holds {made_by}, not {EMBED_DATASET_SCHEMA}; search the output of vizcli embed -o FILE.parquet",
                           parameter="dataset", value=self.path)
        self.metadata: dict[str, Any] = metadata
        self.units: list[Path] = units
        self.block_rows = block_rows
        self.is_folder = Path(self.path).is_dir()
        poolings = [str(name) for name in metadata.get("pooling") or []]
        vector_columns = [name for name in schema.names if name not in ROW_COLUMNS] if schema is not None else poolings
        if pooling is None:
            pooling = poolings[0] if poolings else (vector_columns[0] if vector_columns else None)
        if pooling not in vector_columns or pooling is None:
            raise BadInput(f"not in this output; it holds {', '.join(vector_columns) or 'no vectors'}", parameter="pooling", value=pooling)
        self.pooling: str = pooling
        self.precision = str(metadata.get("precision", "float32"))
        self.dimensions = int(metadata.get("dimensions") or metadata.get("hidden_size") or 0)
        self.has_text = schema is not None and "text" in schema.names
        ranges = metadata.get("ranges") or {}
        self.ranges = ranges.get(pooling) if isinstance(ranges, dict) else None
        self.rows = self._count_rows()

    def _count_rows(self) -> int:
        if self.is_folder:
            from vizcli.datasets.units import MANIFEST, read_manifest

            return int(read_manifest(Path(self.path) / MANIFEST, "dataset", self.path).get("rows", 0))
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(self.units[0]).metadata.num_rows) if self.units else 0

    @property
    def unit_normalized(self) -> bool:
        """Whether the stored vectors are unit length as decoded (normalised float vectors)."""
        return bool(self.metadata.get("normalize")) and self.precision == "float32"

    def identity(self) -> str:
        """The sha256 that names this output's content: the Parquet file's, or the manifest's (which
        holds every shard's sha256); remembered by file identity (``vizcli.common.cache``)."""
        from vizcli.common.cache import cached_sha256

        if self.is_folder:
            from vizcli.datasets.units import MANIFEST

            return cached_sha256(Path(self.path) / MANIFEST)
        return cached_sha256(self.path)

    def blocks(self, with_text: bool = True, with_ids: bool = True) -> Iterator[Block]:
        """The output's rows in order, at most ``block_rows`` at a time (a Parquet file: ``PARQUET_READ_ROWS``)."""
        columns = [self.pooling] + (["id"] if with_ids else []) + (["text"] if with_text and self.has_text else [])
        start = 0
        for table in self._tables(columns):
            for offset in range(0, table.num_rows, self.block_rows):
                piece = table.slice(offset, self.block_rows)
                yield Block(start, piece.column("id").to_pylist() if with_ids else [],
                            piece.column("text").to_pylist() if "text" in columns else None,
                            self.decode(stored_array(piece.column(self.pooling))))
                start += piece.num_rows

    def _tables(self, columns: list[str]) -> Iterator[Any]:
        import pyarrow as pa

        from vizcli.datasets.units import read_unit

        for unit in self.units:
            if unit.suffix == ".parquet":
                import pyarrow.parquet as pq

                try:
                    handle = pq.ParquetFile(unit, pre_buffer=False, buffer_size=1 << 20)  # read as batches go: pre-buffering kept every row group read
                    for batch in handle.iter_batches(batch_size=min(self.block_rows, PARQUET_READ_ROWS), columns=columns):
                        yield pa.Table.from_batches([batch])
                        del batch
                        pa.default_memory_pool().release_unused()  # decoding buffers: memory stays at one block
                except (pa.ArrowException, OSError, ValueError):
                    raise BadInput(f"{unit.name} cannot be read (truncated or damaged); write it again with vizcli embed",
                                   parameter="dataset", value=self.path) from None
            else:
                yield read_unit(unit, self.path, "dataset").select(columns)

    def decode(self, stored: Any) -> Any:
        """Stored vectors (``[n, width]`` in the output's precision) as ``float32 [n, D]``."""
        return decode_vectors(stored, self.precision, self.ranges, self.dimensions)

    def labels(self) -> tuple[Any, Any]:
        """Every row's id (and text when kept) as compact Arrow arrays, in row order (the index's keys are row numbers)."""
        import pyarrow as pa

        columns = ["id"] + (["text"] if self.has_text else [])
        tables = [table.select(columns) for table in self._tables(columns)]
        if not tables:
            return pa.array([], pa.string()), None
        joined = pa.concat_tables(tables).combine_chunks()
        return joined.column("id"), joined.column("text") if self.has_text else None


def stored_array(column: Any) -> Any:
    """A fixed-size-list Arrow column as a numpy ``[n, width]`` array (no copy when the column is one chunk)."""
    import numpy as np
    import pyarrow as pa

    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    width = array.type.list_size
    values = array.flatten().to_numpy(zero_copy_only=False)
    return np.asarray(values).reshape(-1, width)


def decode_vectors(stored: Any, precision: str, ranges: Any, dimensions: int) -> Any:
    """``stored`` (as ``vizcli.embed.precision.quantize`` wrote it) back as ``float32 [n, D]``."""
    import numpy as np

    if precision == "float32":
        return np.ascontiguousarray(stored, dtype=np.float32)
    if precision == "float16":
        return stored.astype(np.float32)
    if precision == "bfloat16":
        return (stored.astype(np.uint32) << 16).view(np.float32)
    if precision in ("int8", "uint8"):
        if ranges is None:
            raise BadInput(f"is stored as {precision} but records no ranges; write it again with vizcli embed", parameter="dataset")
        limits = np.asarray(ranges, dtype=np.float32)
        step = (limits[1] - limits[0]) / 255
        step = np.where(step == 0, 1, step)
        buckets = stored.astype(np.float32) + (128 if precision == "int8" else 0)
        return limits[0] + (buckets + 0.5) * step
    if precision in ("binary", "ubinary"):
        raw = stored.astype(np.int16) + 128 if precision == "binary" else stored
        bits = np.unpackbits(raw.astype(np.uint8), axis=-1)[:, :dimensions]
        return bits.astype(np.float32) * 2 - 1
    raise BadInput(f"records an unknown precision {precision!r}; write it again with this vizcli", parameter="dataset")
