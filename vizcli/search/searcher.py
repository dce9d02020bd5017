"""``Searcher``: an embed output opened once, answering queries by text, id or vector (the Python API).

    >>> searcher = Searcher("vectors.parquet")                  # exact, streamed from disk
    >>> [hit.id for hit in searcher.search(["a cat on a mat"], k=3)[0].hits]
    ['12', '7', '40']
    >>> Searcher("vectors.parquet", mode="binary").search(ids=["12"])   # sign bits, then float rescoring
    >>> Searcher("vectors.parquet", mode="index").search(["a cat"])     # the usearch index built beside it

Modes: ``exact`` (float32 cosine over every row, a block at a time; ``in_memory=True`` keeps the
vectors after the first read), ``binary`` / ``int8`` (codes in memory, the best ``k × rescore``
candidates rescored in float32), ``index`` (the HNSW index built with ``build_index``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from vizcli.common.errors import BadInput
from vizcli.search.hits import Hit, Matches
from vizcli.search.quantized import QUANTIZATIONS, RESCORE
from vizcli.search.source import BLOCK_ROWS, Block, EmbedOutput

MODES = ("exact", *QUANTIZATIONS, "index")
DEFAULT_K = 10


class Searcher:
    """Nearest stored rows of an embed output (a Parquet file or a shard folder) for queries.

    ``dataset``: the output; ``pooling``: its vector column (default: the first); ``mode``: see the
    module; ``rescore``: candidates per hit for the quantized modes; ``expansion_search``: the
    index's search width (default: as built); ``query_prefix``: replaces the recorded prefix for
    query texts; ``device``/``threads``: where query texts are embedded and how many threads scan;
    ``root``: the folder the recorded input moved to (hits of an output that keeps no text get their
    texts from that input, read again as it is now; ``vizcli verify`` checks that it still matches).
    Where no text can be read, hits carry ``text=None`` and ``text_problem`` says why.
    """

    def __init__(self, dataset: str, pooling: str | None = None, mode: str = "exact", rescore: int = RESCORE,
                 in_memory: bool = False, block_rows: int = BLOCK_ROWS, expansion_search: int | None = None,
                 query_prefix: str | None = None, device: str = "auto", threads: int | None = None,
                 root: str | None = None) -> None:
        if mode not in MODES:
            raise BadInput(f"use one of {', '.join(MODES)}", parameter="mode", value=mode)
        if rescore < 1:
            raise BadInput("use at least 1 candidate per hit", parameter="rescore", value=rescore)
        self.output = EmbedOutput(dataset, pooling, block_rows)
        self.mode = mode
        self.rescore = rescore
        self.device = device
        self.query_prefix = query_prefix
        self.root = root
        self._encoder: Any = None
        self._loaded: Any = None
        self._quantized: Any = None
        self._index: Any = None
        self.text_problem: str | None = None  # why hits carry no text, once a search found out
        if mode == "index":
            from vizcli.search.index import VectorIndex

            self._index = VectorIndex(self.output, expansion_search, threads or 0)
        elif mode in QUANTIZATIONS or in_memory:
            from vizcli.search.exact import LoadedVectors

            self._loaded = LoadedVectors.read(self.output)
            if mode in QUANTIZATIONS:
                from vizcli.search.quantized import QuantizedVectors

                self._quantized = QuantizedVectors(self._loaded.vectors, self._loaded.ids, self._loaded.texts, mode, threads)

    def blocks(self) -> Iterable[Block]:
        """The output's rows a block at a time: from memory when loaded, else read from disk."""
        return self._loaded.blocks() if self._loaded is not None else self.output.blocks()

    def embed(self, texts: list[str], few: bool = False) -> Any:
        """``float32 [Q, D]``: ``texts`` embedded with the output's recorded model and settings."""
        if self._encoder is None:
            from vizcli.search.queries import QueryEncoder

            self._encoder = QueryEncoder(self.output, self.device, self.query_prefix, few=few)
        return self._encoder(texts)

    def vectors_of(self, ids: list[str]) -> tuple[Any, Any]:
        """``(float32 [Q, D], int [Q])``: the stored vectors and rows of ``ids``."""
        import numpy as np

        if self._index is not None:
            import pyarrow as pa
            import pyarrow.compute as pc

            rows = pc.index_in(pa.array([str(key) for key in ids], pa.string()), value_set=self._index.ids).to_pylist()
            if None in rows:
                missing = str(ids[rows.index(None)])
                raise BadInput(f"holds no row with id {missing!r}; ids are the output's id column", parameter="dataset",
                               value=self.output.path)
            found = np.asarray(rows, dtype=np.int64)
            return np.asarray(self._index.index.get(found.astype(np.uint64)), dtype=np.float32).reshape(len(ids), -1), found
        from vizcli.search.queries import vectors_of_ids

        return vectors_of_ids(self.blocks(), ids, self.output.path)

    def search_vectors(self, queries: Any, k: int = DEFAULT_K, exclude: Any = None) -> list[list[Hit]]:
        """Per query vector (``float32 [Q, D]``) its ``k`` nearest rows, best first; ``exclude``: a row per query to skip (-1: none)."""
        import numpy as np

        if k < 1:
            raise BadInput("use at least 1", parameter="k", value=k)
        queries = np.asarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.output.dimensions:
            raise BadInput(f"query vectors of shape {list(queries.shape)}; the output holds {self.output.dimensions} dimensions",
                           parameter="queries")
        if self._index is not None:
            return self._index.search(queries, k, exclude)
        if self._quantized is not None:
            return self._quantized.search(queries, k, self.rescore, exclude)
        from vizcli.search.exact import exact_search

        unit = self._loaded is not None or self.output.unit_normalized
        return exact_search(queries, self.blocks(), k, unit, exclude)

    def search(self, texts: list[str] | str | None = None, ids: list[str] | str | None = None, k: int = DEFAULT_K) -> list[Matches]:
        """The ``k`` nearest rows for each text, then each id (whose own row is left out), best first (a
        ``Matches`` per query: ``.query``, and ``.hits``, each a ``Hit`` with ``row``, ``id``, ``score`` and ``text``)."""
        import numpy as np

        results: list[Matches] = []
        texts = [texts] if isinstance(texts, str) else texts  # one query, not one per character
        ids = [ids] if isinstance(ids, str) else ids
        if texts:
            texts = [str(text) for text in texts]
            found = self.search_vectors(self.embed(texts, few=len(texts) <= 8), k)
            results += [Matches(text, hits) for text, hits in zip(texts, found)]
        if ids:
            ids = [str(key) for key in ids]
            vectors, rows = self.vectors_of(ids)
            found = self.search_vectors(vectors, k, exclude=np.asarray(rows))
            results += [Matches(key, hits, by_id=True) for key, hits in zip(ids, found)]
        if not self.output.has_text:
            self._add_recorded_texts(results)
        return results

    def _add_recorded_texts(self, results: list[Matches]) -> None:
        """Give the hits the texts of an output that keeps none, read again from its recorded input file (one pass
        over it for all of ``results``). Where the run recorded no file, or it cannot be read, texts stay None and
        ``text_problem`` says why."""
        from dataclasses import replace

        wanted = list(dict.fromkeys(hit.id for matches in results for hit in matches.hits))
        if not wanted:
            return
        found = self._recorded_texts(wanted)
        for matches in results:
            matches.hits = [replace(hit, text=found[hit.id].text) if hit.id in found else hit for hit in matches.hits]

    def _recorded_texts(self, ids: list[str]) -> dict[str, Any]:
        """``ids``' texts read again from the recorded input (empty, with ``text_problem`` set, where none can be)."""
        from vizcli.embed.kind import recorded_texts

        try:
            found = recorded_texts(self.output.metadata, ids, self.root)
        except BadInput as error:
            self.text_problem = f"texts are not shown: {error.for_command_line({'root': '--root', 'output': ''})}"
            return {}
        if found is None:
            self.text_problem = "texts are not shown: the output keeps none (embed with --keep-text) and records no input file"
            return {}
        return found

    def near_duplicates(self, threshold: float) -> Iterator[Any]:
        """Every pair of rows whose cosine is at least ``threshold`` (see ``vizcli.search.duplicates``)."""
        from vizcli.search.duplicates import near_duplicates

        pairs = near_duplicates(self.blocks, threshold, unit=self._loaded is not None or self.output.unit_normalized)
        return pairs if self.output.has_text else self._with_recorded_texts(pairs)

    def _with_recorded_texts(self, pairs: Iterator[Any], chunk: int = 10_000) -> Iterator[Any]:
        """``pairs`` with the texts of their rows read again from the recorded input, one pass per ``chunk`` pairs."""
        from dataclasses import replace
        from itertools import islice

        while batch := list(islice(pairs, chunk)):
            found = self._recorded_texts(list(dict.fromkeys(key for pair in batch for key in (pair.id_a, pair.id_b))))
            for pair in batch:
                if pair.id_a in found and pair.id_b in found:
                    pair = replace(pair, text_a=found[pair.id_a].text, text_b=found[pair.id_b].text)
                yield pair


def search(dataset: str, texts: list[str] | str | None = None, ids: list[str] | str | None = None, k: int = DEFAULT_K,
           mode: str = "exact", **options: Any) -> list[Matches]:
    """The ``k`` nearest rows of the embed output ``dataset`` for each query text and id (``Searcher``'s options)."""
    if not texts and not ids:
        raise BadInput("give query texts or ids", parameter="texts")
    return Searcher(dataset, mode=mode, **options).search(texts, ids, k)
