"""An approximate nearest-neighbour index (usearch's HNSW) built once beside an embed output.

``vectors.parquet`` with pooling ``mean`` gets ``vectors.parquet.mean.usearch`` and its settings
``vectors.parquet.mean.usearch.json`` (a shard folder ``DIR/``: ``DIR.mean.usearch`` beside it). The
settings record the output's sha256 (a Parquet file's, or its manifest's, which lists every shard's
sha256), the index file's own sha256 and how it was built; an index whose output or file changed
is refused, and ``verify_index`` reports it. The index's keys are row numbers of the output.

usearch is an optional extra (``pip install 'vizcli[index]'``); without it, index commands fail
with one message that says how to install it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vizcli.common.errors import BadInput, RunFailure
from vizcli.search.hits import Hit, TopK

INDEX_SCHEMA = "vizcli.search.index/1"
INDEX_SUFFIX = ".usearch"
INDEX_DTYPES = ("f32", "f16", "bf16", "i8")
INSTALL_HINT = "pip install 'vizcli[index]' (or pip install usearch)"


@dataclass(frozen=True)
class IndexSettings:
    """How an index is built: usearch's vector type, HNSW connectivity (edges per node) and the
    candidate-list widths while adding and while searching (higher: better recall, slower)."""

    dtype: str = "f32"
    connectivity: int = 16
    expansion_add: int = 128
    expansion_search: int = 64

    def check(self) -> IndexSettings:
        if self.dtype not in INDEX_DTYPES:
            raise BadInput(f"use one of {', '.join(INDEX_DTYPES)}", parameter="index_dtype", value=self.dtype)
        for name in ("connectivity", "expansion_add", "expansion_search"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 2 <= value <= 4096:
                raise BadInput("use 2..4096", parameter=name, value=value)
        return self


def usearch_index() -> Any:
    """usearch's ``Index`` class, or a ``RunFailure`` saying how to install the extra."""
    try:
        from usearch.index import Index
    except ImportError:
        raise RunFailure(f"the index needs usearch, an optional extra that is not installed; {INSTALL_HINT}") from None
    return Index


def index_path(dataset: str, pooling: str) -> Path:
    """Where the index of ``dataset``'s ``pooling`` vectors lives: beside the output."""
    place = Path(str(dataset).rstrip("/") or str(dataset))
    return place.with_name(f"{place.name}.{pooling}{INDEX_SUFFIX}")


def _settings_path(index_file: Path) -> Path:
    return index_file.with_name(index_file.name + ".json")


def build_index(output: Any, settings: IndexSettings = IndexSettings(), threads: int = 0,
                progress: Any = None) -> Path:
    """Build the index of ``output`` (an ``EmbedOutput``) beside it, from its blocks; returns its path.

    Written to temporary names and renamed (the settings last), so an interrupted build leaves no index.
    """
    import numpy as np

    from vizcli.common.cache import cached_sha256
    from vizcli.search.exact import unit_rows

    Index = usearch_index()
    settings.check()
    if output.rows == 0:
        raise BadInput("holds 0 rows; there is nothing to index", parameter="dataset", value=output.path)
    index = Index(ndim=output.dimensions, metric="cos", dtype=settings.dtype, connectivity=settings.connectivity,
                  expansion_add=settings.expansion_add, expansion_search=settings.expansion_search)
    for block in output.blocks(with_text=False, with_ids=False):
        vectors = block.vectors if output.unit_normalized else unit_rows(block.vectors)
        index.add(np.arange(block.start, block.start + len(vectors), dtype=np.uint64), vectors, threads=threads)
        if progress is not None:
            progress(len(vectors))
    target = index_path(output.path, output.pooling)
    settings_file = _settings_path(target)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        index.save(str(temporary))
        os.replace(temporary, target)
    finally:
        if temporary.exists():
            temporary.unlink()
    import usearch

    record = {"schema": INDEX_SCHEMA, "output": Path(output.path).name, "output_sha256": output.identity(),
              "index_sha256": cached_sha256(target), "pooling": output.pooling, "rows": output.rows,
              "dimensions": output.dimensions, "metric": "cos", "usearch": getattr(usearch, "__version__", "unknown"),
              **asdict(settings)}
    from vizcli.common.files import atomic_output

    with atomic_output(str(settings_file), binary=False) as handle:
        handle.write(json.dumps(record, indent=2) + "\n")
    return target


def index_problems(output: Any) -> list[str]:
    """What is wrong with the index of ``output``'s pooling (empty: it matches the output), without loading it."""
    from vizcli.common.cache import cached_sha256

    target = index_path(output.path, output.pooling)
    settings_file = _settings_path(target)
    rebuild = f"build it again: vizcli search {output.path} --build-index --pooling {output.pooling}"
    if not target.is_file():
        return [f"{target.name}: no index for pooling {output.pooling}; build it: vizcli search {output.path} --build-index"]
    try:
        record = json.loads(settings_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return [f"{settings_file.name}: missing or unreadable (an interrupted build?); {rebuild}"]
    if not isinstance(record, dict) or record.get("schema") != INDEX_SCHEMA:
        return [f"{settings_file.name}: not a vizcli index record ({INDEX_SCHEMA}); {rebuild}"]
    problems = []
    if record.get("output_sha256") != output.identity():
        problems.append(f"{target.name} was built for another version of {Path(output.path).name} (its sha256 differs); {rebuild}")
    if record.get("index_sha256") != cached_sha256(target):
        problems.append(f"{target.name} changed since it was built (its sha256 differs from {settings_file.name}); {rebuild}")
    for name, value in (("rows", output.rows), ("dimensions", output.dimensions), ("pooling", output.pooling)):
        if record.get(name) != value:
            problems.append(f"{target.name} records {name} {record.get(name)!r}, the output has {value!r}; {rebuild}")
    return problems


class VectorIndex:
    """A checked index of an output, memory-mapped (``usearch``'s view), with the rows' ids and texts."""

    def __init__(self, output: Any, expansion_search: int | None = None, threads: int = 0) -> None:
        Index = usearch_index()
        problems = index_problems(output)
        if problems:
            raise BadInput(problems[0], parameter="dataset", value=output.path)
        target = index_path(output.path, output.pooling)
        record = json.loads(_settings_path(target).read_text(encoding="utf-8"))
        self.settings = IndexSettings(**{name: record[name] for name in ("dtype", "connectivity", "expansion_add", "expansion_search")})
        self.index = Index.restore(str(target), view=True)
        if self.index is None or self.index.size != output.rows:
            raise BadInput(f"{target.name} cannot be read as an index of {output.rows:,} rows; build it again with --build-index",
                           parameter="dataset", value=output.path)
        if expansion_search is not None:
            IndexSettings(expansion_search=expansion_search).check()
            self.index.expansion_search = expansion_search
        self.threads = threads
        self.ids, self.texts = output.labels()

    def search(self, queries: Any, k: int, exclude: Any = None) -> list[list[Hit]]:
        """The ``k`` approximate nearest rows of each query (``float32 [Q, D]``), scored 1 - cosine distance."""
        import numpy as np

        from vizcli.search.exact import unit_rows

        queries = unit_rows(np.asarray(queries, dtype=np.float32))
        wanted = min(k + (1 if exclude is not None else 0), int(self.index.size))
        found = self.index.search(queries, wanted, threads=self.threads)
        keys = np.asarray(found.keys, dtype=np.int64).reshape(len(queries), -1)
        scores = (1 - np.asarray(found.distances, dtype=np.float32)).reshape(len(queries), -1)
        counts = np.asarray(getattr(found, "counts", np.full(len(queries), keys.shape[1]))).reshape(-1)
        best = TopK(len(queries), k)
        for number in range(len(queries)):
            rows = keys[number, : counts[number]]
            row_scores = scores[number, : counts[number]][None, :].copy()
            if exclude is not None and exclude[number] >= 0:
                row_scores[0, rows == exclude[number]] = -np.inf
            best.add(row_scores, 0, self.ids.take(rows).to_pylist(),
                     None if self.texts is None else self.texts.take(rows).to_pylist(), number, rows=rows)
        return best.hits()


def verify_index(dataset: str) -> list[str]:
    """Problems of every index built beside the embed output at ``dataset`` (one per line; empty: each
    matches the output, or none was built). For ``vizcli verify``."""
    from vizcli.search.source import EmbedOutput

    first = EmbedOutput(dataset)
    problems: list[str] = []
    for pooling in first.metadata.get("pooling") or [first.pooling]:
        if index_path(dataset, str(pooling)).exists() or _settings_path(index_path(dataset, str(pooling))).exists():
            problems += index_problems(EmbedOutput(dataset, pooling=str(pooling)))
    return problems
