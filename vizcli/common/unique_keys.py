"""Sets of ids for runs too long for a Python ``set`` (about 90 bytes an id: 9 GB for 100 million).

- ``UniqueKeys`` checks that a stream of ids never repeats one, in 8 bytes an id: each id's 64-bit
  hash in sorted numpy runs (merged as they grow, so lookups touch few of them). A hash seen
  before is confirmed against the real ids, which the caller reads back from where they were
  written, so a hash collision never reports a repeat that is not there.
- ``KeyIndex`` answers "is this id among those?" for a fixed collection (the ids a resumed run
  finds on disk), exactly, in 20 bytes an id plus its UTF-8: sorted hashes, and the ids end to
  end in one bytes object, compared on every hash match.
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
        hashes = _hashes(keys)
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


class KeyIndex:
    """The ids of ``chunks`` (lists of str, one at a time), for exact ``key in index`` lookups."""

    def __init__(self, chunks: Iterable[list[str]]) -> None:
        import numpy as np

        text = bytearray()  # every id's UTF-8, end to end
        hashes, lengths = [], []
        for chunk in chunks:  # a chunk's Python strings live only while it is read
            encoded = [key.encode("utf-8", "surrogatepass") for key in chunk]
            hashes.append(_hashes(chunk))
            lengths.append(np.fromiter((len(key) for key in encoded), dtype=np.int64, count=len(encoded)))
            text += b"".join(encoded)
        every = np.concatenate(hashes) if hashes else np.zeros(0, dtype=np.int64)
        self._order = np.argsort(every, kind="stable").astype(np.uint32 if len(every) < 2**32 else np.int64)
        self._hashes = every[self._order]
        self._ends = np.cumsum(np.concatenate(lengths)) if lengths else np.zeros(0, dtype=np.int64)
        self._text = text

    def __len__(self) -> int:
        return len(self._hashes)

    @property
    def nbytes(self) -> int:
        return int(self._hashes.nbytes + self._order.nbytes + self._ends.nbytes) + len(self._text)

    def __contains__(self, key: object) -> bool:
        import numpy as np

        wanted = hash(key)
        place = int(np.searchsorted(self._hashes, wanted))
        while place < len(self._hashes) and self._hashes[place] == wanted:
            row = int(self._order[place])
            start = int(self._ends[row - 1]) if row else 0
            if isinstance(key, str) and self._text[start:int(self._ends[row])] == key.encode("utf-8", "surrogatepass"):
                return True
            place += 1
        return False


def _hashes(keys: Sequence[str]) -> Any:
    """Python's 64-bit hash of each id (stable within this process, which is all either class needs)."""
    import numpy as np

    return np.fromiter((hash(key) for key in keys), dtype=np.int64, count=len(keys))


def _first_repeat(keys: Sequence[str]) -> str | None:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            return key
        seen.add(key)
    return None
