"""Quantized search with float rescoring (sentence-transformers' ``quantize_embeddings`` + rescore idea).

The whole output is held twice in memory: small codes that are scanned for every query, and the
float32 unit vectors that rescore the few best candidates the codes found.

* ``binary``: one sign bit per dimension (``v > 0``, as ``--precision binary`` stores them), kept
  as 64-bit words, column by column; candidates are the rows of least Hamming distance.
* ``int8``: each dimension cut into 256 buckets between its min and max over the output (as
  ``--precision int8`` with calibration over every row); candidates are the rows whose bucket
  centres have the highest dot product with the float query (the asymmetric score).

``rescore`` candidates per wanted hit (``k × rescore``) are then scored exactly in float32.
"""

from __future__ import annotations

import os
from typing import Any

from vizcli.common.errors import BadInput
from vizcli.search.hits import Hit, TopK

QUANTIZATIONS = ("binary", "int8")
RESCORE = 10  # candidates per wanted hit: 100 for k=10
_TILE_ROWS = 1 << 16  # rows one int8 scan step covers (it widens them to float32: 96 MiB at 384 dimensions)
_CHUNK_ROWS = 1 << 15  # rows one binary scan step covers: its 256 KiB of XORed words stay in the CPU's cache


def binary_words(vectors: Any) -> Any:
    """``uint64 [W, N]``: the sign bits of ``vectors`` (``[N, D]``), packed 64 to a word, one row of words per 64 dimensions."""
    import numpy as np

    bits = np.packbits(vectors > 0, axis=1)
    pad = (-bits.shape[1]) % 8
    if pad:
        bits = np.pad(bits, ((0, 0), (0, pad)))
    return np.ascontiguousarray(bits.view(np.uint64).T)


class QuantizedVectors:
    """An output's codes (``binary`` or ``int8``) and float32 unit vectors, for candidate scans and rescoring."""

    def __init__(self, vectors: Any, ids: Any, texts: Any, quantization: str = "binary", threads: int | None = None) -> None:
        import numpy as np

        if quantization not in QUANTIZATIONS:
            raise BadInput(f"use one of {', '.join(QUANTIZATIONS)}", parameter="quantization", value=quantization)
        self.quantization = quantization
        self.vectors = vectors
        self.ids = ids
        self.texts = texts
        self.threads = max(1, threads or min(os.cpu_count() or 1, 8))
        self._threads_pool: Any = None
        if quantization == "binary":
            self.codes = binary_words(vectors)
        else:
            low, high = vectors.min(axis=0), vectors.max(axis=0)
            self.step = np.where(high > low, (high - low) / 255, 1).astype(np.float32)
            self.low = low.astype(np.float32)
            self.codes = (np.clip(np.floor((vectors - self.low) / self.step), 0, 255) - 128).astype(np.int8)

    @property
    def nbytes(self) -> int:
        return int(self.codes.nbytes + self.vectors.nbytes)

    @property
    def rows(self) -> int:
        return int(self.vectors.shape[0])

    def candidates(self, queries: Any, count: int) -> list[Any]:
        """Per query (``float32 [Q, D]``, unit length) the ``count`` rows whose codes score best, as a row array."""
        count = min(count, self.rows)
        if self.quantization == "binary":
            words = binary_words(queries)
            return [self._nearest_codes(words[:, number], count) for number in range(len(queries))]
        return list(self._int8_candidates(queries, count))

    def _spans(self) -> list[tuple[int, int]]:
        """The rows cut into one contiguous span per thread (each at least a scan chunk)."""
        size = max(_CHUNK_ROWS, -(-self.rows // self.threads))
        return [(start, min(start + size, self.rows)) for start in range(0, self.rows, size)]

    def _map(self, work: Any, items: list[Any]) -> list[Any]:
        if self.threads == 1 or len(items) == 1:
            return [work(item) for item in items]
        return list(self._pool().map(work, items))

    def _nearest_codes(self, word: Any, count: int) -> Any:
        """The ``count`` rows of least Hamming distance to one query's bits (``uint64 [W]``): every row's
        distance, scanned a cache-sized chunk at a time, then a histogram of the distances (0 .. 64·W) gives
        the cut, so no sort of all the rows is needed; of the rows at the cut distance, the lowest are kept."""
        import numpy as np

        distances = np.empty(self.rows, dtype=np.uint16)
        bins = 64 * len(self.codes) + 1

        def scan(span: tuple[int, int]) -> Any:
            start, end = span
            xor = np.empty(_CHUNK_ROWS, dtype=np.uint64)
            bits = np.empty(_CHUNK_ROWS, dtype=np.uint8)
            for first in range(start, end, _CHUNK_ROWS):
                last = min(first + _CHUNK_ROWS, end)
                total, size = distances[first:last], last - first
                for index in range(len(self.codes)):
                    np.bitwise_xor(self.codes[index, first:last], word[index], out=xor[:size])
                    np.bitwise_count(xor[:size], out=bits[:size])
                    if index == 0:
                        np.copyto(total, bits[:size])
                    else:
                        np.add(total, bits[:size], out=total)
            return np.bincount(distances[start:end], minlength=bins)

        histogram = np.sum(self._map(scan, self._spans()), axis=0)
        cut = int(np.searchsorted(np.cumsum(histogram), count))  # the least distance within which `count` rows lie
        nearer = np.flatnonzero(distances < cut)
        at_cut = np.flatnonzero(distances == cut)[: count - len(nearer)]
        return np.concatenate([nearer, at_cut])

    def _int8_candidates(self, queries: Any, count: int) -> Any:
        """``int [Q, count]``: per query the rows whose int8 bucket centres have the highest dot product with it."""
        import numpy as np

        spans = [(start, min(start + _TILE_ROWS, self.rows)) for start in range(0, self.rows, _TILE_ROWS)]
        prepared = (queries * self.step).astype(np.float32).T  # [D, Q]: each query's weight per bucket

        def tile(span: tuple[int, int]) -> tuple[Any, Any]:
            start, end = span
            scores = -(self.codes[start:end].astype(np.float32) @ prepared).T  # the query · low + 128.5·step term is equal for all rows
            keep = min(count, end - start)
            picked = np.argpartition(scores, keep - 1, axis=1)[:, :keep] if keep < end - start else \
                np.broadcast_to(np.arange(end - start), scores.shape)
            return np.take_along_axis(scores, picked, axis=1).astype(np.float32), picked + start

        found = self._map(tile, spans)
        scores = np.concatenate([item[0] for item in found], axis=1)
        rows = np.concatenate([item[1] for item in found], axis=1)
        if scores.shape[1] > count:
            picked = np.argpartition(scores, count - 1, axis=1)[:, :count]
            rows = np.take_along_axis(rows, picked, axis=1)
        return rows

    def _pool(self) -> Any:
        """Threads kept for the object's life (starting them per query cost more than a small scan)."""
        if self._threads_pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._threads_pool = ThreadPoolExecutor(self.threads, thread_name_prefix="vizcli-scan")  # numpy releases the GIL
        return self._threads_pool

    def search(self, queries: Any, k: int, rescore: int = RESCORE, exclude: Any = None) -> list[list[Hit]]:
        """The ``k`` nearest rows of each query (``float32 [Q, D]``): ``k × rescore`` candidates from
        the codes, rescored with the float32 vectors. ``exclude``: as ``exact_search``'s."""
        import numpy as np

        from vizcli.search.exact import unit_rows

        if rescore < 1:
            raise BadInput("use at least 1 candidate per hit", parameter="rescore", value=rescore)
        queries = unit_rows(np.asarray(queries, dtype=np.float32))
        best = TopK(len(queries), k)
        wanted = k * rescore + (1 if exclude is not None else 0)
        for number, rows in enumerate(self.candidates(queries, wanted)):
            rows = np.sort(rows)
            scores = (self.vectors[rows] @ queries[number])[None, :]  # one thread: the gather waits on memory, not the CPU
            if exclude is not None and exclude[number] >= 0:
                scores[0, rows == exclude[number]] = -np.inf
            best.add(scores, 0, self.ids[rows], None if self.texts is None else self.texts[rows], number, rows=rows)
        return best.hits()
