"""Exact search: float32 cosine scores of every query against every stored vector, a block at a time.

Memory stays at one block of vectors plus one ``[queries, block]`` score tile, whatever the
output's size: the blocks come from ``EmbedOutput.blocks`` (read from disk) or from vectors
already in memory (``LoadedVectors.blocks``), and only the best ``k`` rows per query are kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from vizcli.search.hits import Hit, TopK
from vizcli.search.source import Block

SCORE_TILE = 1 << 22  # scores computed at once (queries × rows): 16 MiB of float32 (and 32 MiB of top-k positions)


def unit_rows(vectors: Any) -> Any:
    """``vectors`` (``float32 [n, D]``) scaled to unit length; zero vectors stay zero."""
    import numpy as np

    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def exact_search(queries: Any, blocks: Iterable[Block], k: int, unit: bool = False, exclude: Any = None) -> list[list[Hit]]:
    """The ``k`` nearest stored rows of each query by cosine.

    ``queries``: ``float32 [Q, D]``. ``blocks``: the stored rows in order. ``unit``: the stored
    vectors are already unit length (their norms are not computed again). ``exclude``: ``int [Q]``,
    a row each query may not match (-1 for none). Returns per query its hits, best first.
    """
    import numpy as np

    queries = unit_rows(np.asarray(queries, dtype=np.float32))
    best = TopK(len(queries), k)
    for block in blocks:
        vectors = block.vectors if unit else unit_rows(block.vectors)
        step = max(1, SCORE_TILE // max(1, len(vectors)))
        for first in range(0, len(queries), step):
            scores = queries[first:first + step] @ vectors.T
            best.add(scores, block.start, block.ids, block.texts, first,
                     None if exclude is None else exclude[first:first + step])
    return best.hits()


class LoadedVectors:
    """A whole output's vectors in memory (``float32 [N, D]``, unit length) with ids and texts
    (object arrays ``[N]``), for repeated searches without reading the output again."""

    def __init__(self, vectors: Any, ids: Any, texts: Any, block_rows: int) -> None:
        self.vectors = vectors
        self.ids = ids
        self.texts = texts
        self.block_rows = block_rows

    @classmethod
    def read(cls, output: Any) -> LoadedVectors:
        """Every row of ``output`` (an ``EmbedOutput``), read in its blocks."""
        import numpy as np

        vectors = np.empty((output.rows, output.dimensions), dtype=np.float32)
        ids: list[str] = []
        texts: list[str] | None = [] if output.has_text else None
        end = 0
        for block in output.blocks():
            vectors[block.start:block.start + len(block.vectors)] = block.vectors if output.unit_normalized else unit_rows(block.vectors)
            ids.extend(block.ids)
            if texts is not None and block.texts is not None:
                texts.extend(block.texts)
            end = block.start + len(block.vectors)
        return cls(vectors[:end], np.array(ids, dtype=object), np.array(texts, dtype=object) if texts is not None else None,
                   output.block_rows)

    def blocks(self) -> Iterable[Block]:
        for start in range(0, len(self.vectors), self.block_rows):
            end = start + self.block_rows
            yield Block(start, self.ids[start:end], self.texts[start:end] if self.texts is not None else None,
                        self.vectors[start:end])
