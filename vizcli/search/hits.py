"""What a search returns, and the running best-k list that every search mode fills.

Scores are cosine similarities (the query and each stored vector scaled to unit length), higher
is nearer. Equal scores are ordered by row, so results do not depend on block sizes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Hit:
    """One stored row near a query: its row number in the output, id, cosine score and text (when kept)."""

    row: int
    id: str
    score: float
    text: str | None = None


@dataclass
class Matches:
    """The hits of one query, best first. ``query`` is the query text, or the id with ``by_id``."""

    query: str
    hits: list[Hit] = field(default_factory=list)
    by_id: bool = False


class TopK:
    """The best ``k`` rows seen so far for each of ``queries`` queries, kept as ``[Q, k]`` arrays.

    ``add(scores, start, ids, texts)`` offers the scores of a block (``[q, n]`` for rows ``start ..
    start + n``, for queries ``first .. first + q``); ``hits()`` returns them sorted.
    """

    def __init__(self, queries: int, k: int) -> None:
        import numpy as np

        self.k = k
        self.scores = np.full((queries, k), -np.inf, dtype=np.float32)
        self.rows = np.full((queries, k), -1, dtype=np.int64)
        self.ids = np.full((queries, k), None, dtype=object)
        self.texts = np.full((queries, k), None, dtype=object)

    def add(self, scores: Any, start: int, ids: Any, texts: Any = None, first: int = 0,
            exclude: Any = None, rows: Any = None) -> None:
        """Offer a block's scores; ``exclude`` (``int [q]``): a row per query that may not match (its own
        row, for ``--id``); ``rows`` (``int [n]``): the columns' row numbers when they are not ``start + 0 .. n``."""
        import numpy as np

        count = scores.shape[1]
        queries = slice(first, first + scores.shape[0])
        if exclude is not None:
            scores = scores.copy()
            inside = (exclude >= start) & (exclude < start + count)
            scores[np.flatnonzero(inside), exclude[inside] - start] = -np.inf
        keep = min(self.k, count)
        if count > keep:
            picked = np.argpartition(-scores, keep - 1, axis=1)[:, :keep]
        else:
            picked = np.broadcast_to(np.arange(count), (scores.shape[0], count))
        block_scores = np.take_along_axis(scores, picked, axis=1)
        merged_scores = np.concatenate([self.scores[queries], block_scores], axis=1)
        merged_rows = np.concatenate([self.rows[queries], picked + start if rows is None else np.asarray(rows)[picked]], axis=1)
        merged_ids = np.concatenate([self.ids[queries], _take(ids, picked)], axis=1)
        merged_texts = np.concatenate([self.texts[queries], _take(texts, picked)], axis=1)
        order = _best_first(merged_scores, merged_rows)[:, : self.k]
        self.scores[queries] = np.take_along_axis(merged_scores, order, axis=1)
        self.rows[queries] = np.take_along_axis(merged_rows, order, axis=1)
        self.ids[queries] = np.take_along_axis(merged_ids, order, axis=1)
        self.texts[queries] = np.take_along_axis(merged_texts, order, axis=1)

    def hits(self) -> list[list[Hit]]:
        """Per query, its hits best first (with fewer than k rows stored, the unfilled places are left out)."""
        return [[Hit(int(row), str(key), float(score), text) for row, key, score, text in zip(rows, ids, scores, texts)
                 if row >= 0 and score != float("-inf")]
                for rows, ids, scores, texts in zip(self.rows, self.ids, self.scores, self.texts)]


def _take(values: Any, picked: Any) -> Any:
    """``values[picked]`` as an object array, for a numpy array or a list (only the picked items are touched)."""
    import numpy as np

    if values is None:
        return np.full(picked.shape, None, dtype=object)
    if isinstance(values, np.ndarray):
        return values[picked]
    taken = np.empty(picked.size, dtype=object)
    taken[:] = [values[index] for index in picked.ravel()]
    return taken.reshape(picked.shape)


def _best_first(scores: Any, rows: Any) -> Any:
    """Column order per row of ``scores``: highest score first, then lowest row (unfilled rows, -1, last)."""
    import numpy as np

    missing = rows < 0
    return np.lexsort((np.where(missing, np.iinfo(np.int64).max, rows), -scores), axis=1)
