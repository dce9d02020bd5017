"""All pairs of near-duplicate rows: every pair whose cosine is at least a threshold, over a whole output.

The pairs are found block against block: an outer block of rows is held while the output is read
again from that block on, and scores are computed a tile at a time, so memory is two blocks and
one ``TILE × TILE`` score tile whatever the output's size (the work grows with rows², as any exact
all-pairs search does). Each pair comes once, ``row_a < row_b``, in the order found.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from vizcli.common.errors import BadInput
from vizcli.search.source import Block

TILE = 4096  # rows per side of a score tile: 64 MiB of float32 scores


@dataclass(frozen=True)
class Pair:
    """Two rows whose vectors' cosine is ``score``."""

    row_a: int
    id_a: str
    row_b: int
    id_b: str
    score: float
    text_a: str | None = None
    text_b: str | None = None


def near_duplicates(blocks: Callable[[], Iterable[Block]], threshold: float, unit: bool = False, tile: int = TILE) -> Iterator[Pair]:
    """Pairs of rows with cosine ≥ ``threshold`` (``-1 .. 1``); ``blocks()`` reads the rows again from the start."""
    import numpy as np

    from vizcli.search.exact import unit_rows

    if not -1.0 <= threshold <= 1.0:
        raise BadInput("a cosine lies in -1..1; near-duplicates are typically 0.9 or more", parameter="threshold", value=threshold)
    for outer in blocks():
        left = outer.vectors if unit else unit_rows(outer.vectors)
        for inner in blocks():
            if inner.start + len(inner.vectors) <= outer.start:
                continue  # every pair with it was found when it was the outer block
            right = left if inner.start == outer.start else (inner.vectors if unit else unit_rows(inner.vectors))
            for a in range(0, len(left), tile):
                for b in range(0, len(right), tile):
                    if inner.start + b + tile <= outer.start + a:
                        continue  # below the diagonal: each of these rows is before every row of the left tile
                    scores = left[a:a + tile] @ right[b:b + tile].T
                    first, second = np.nonzero(scores >= threshold)
                    rows_a, rows_b = first + outer.start + a, second + inner.start + b
                    for i, j, row_a, row_b in zip(first, second, rows_a, rows_b):
                        if row_a < row_b:
                            yield Pair(int(row_a), str(outer.ids[a + i]), int(row_b), str(inner.ids[b + j]), float(scores[i, j]),
                                       _text(outer.texts, int(a + i)), _text(inner.texts, int(b + j)))


def _text(texts: Any, offset: int) -> str | None:
    return None if texts is None else texts[offset]
