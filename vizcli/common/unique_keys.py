"""Checking that a long stream of ids never repeats one, in about 8 bytes an id.

A Python ``set`` of 100 million short ids takes about 9 GB; ``UniqueKeys`` keeps each id's 64-bit
hash in sorted numpy runs (merged as they grow, so lookups touch few of them): 0.8 GB. A hash seen
before is confirmed against the real ids, which the caller reads back from where they were
written, so a hash collision never reports a repeat that is not there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any


class UniqueKeys:
    """The ids added so far, as hashes. ``add`` returns a repeated id, or None."""

    def __init__(self) -> None:
        self._runs: list[Any] = []  # sorted int64 arrays, larger ones first
        self.count = 0

    def add(self, keys: Sequence[str], earlier: Callable[[], Iterable[str]]) -> str | None:
        """Remember ``keys``; the first of them that repeats an id (among ``keys`` or added
        before), else None. ``earlier()`` yields every id added before, and is called only when a
        hash of ``keys`` was seen before."""
        import numpy as np

        repeated = _first_repeat(keys)
        if repeated is not None:
            return repeated
        hashes = np.fromiter((hash(key) for key in keys), dtype=np.int64, count=len(keys))
        known = np.zeros(len(keys), dtype=bool)
        for run in self._runs:
            places = np.minimum(np.searchsorted(run, hashes), len(run) - 1)
            known |= run[places] == hashes
        if known.any():  # a repeat, or a hash collision: compare the ids themselves
            suspects = {keys[int(index)] for index in np.flatnonzero(known)}
            for key in earlier():
                if key in suspects:
                    return key
        self._runs.append(np.sort(hashes))
        while len(self._runs) > 1 and len(self._runs[-2]) <= 2 * len(self._runs[-1]):
            last = self._runs.pop()
            self._runs[-1] = np.sort(np.concatenate([self._runs[-1], last]))
        self.count += len(keys)
        return None

    @property
    def nbytes(self) -> int:
        return sum(int(run.nbytes) for run in self._runs)


def _first_repeat(keys: Sequence[str]) -> str | None:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            return key
        seen.add(key)
    return None
