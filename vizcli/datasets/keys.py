"""Row keys: which shard a row is in, and sets of ids for runs too long for a Python ``set``.

- ``Shard`` (``--shard K/N``) keeps the rows whose id hashes to K: N machines (or a Slurm array)
  split a dataset without talking to each other. The hash is sha256, the same on every machine.
- ``UniqueKeys`` checks that a stream of ids never repeats one, in 8 bytes an id: each id's 64-bit
  hash in sorted numpy runs (merged as they grow, so lookups touch few of them). A hash seen
  before is confirmed against the real ids, which the caller reads back from where they were
  written, so a hash collision never reports a repeat that is not there.
- ``KeyIndex`` answers "is this id among those?" for a fixed collection (the ids a resumed run
  finds on disk), exactly, in 20 bytes an id plus its UTF-8: sorted hashes, and the ids end to
  end in one bytes object, compared on every hash match. It is built on the driver and used by
  the Ray tasks that read the input, so its hash is the same in every process (blake2b, not
  Python's per-process ``hash``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from vizcli.common.errors import BadInput


@dataclass(frozen=True)
class Shard:
    """``index`` of ``count`` (0-based): the rows whose id hashes to ``index``."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str | None) -> Shard:
        if not text:
            return cls()
        try:
            index, count = (int(part) for part in text.split("/"))
        except ValueError:
            raise BadInput("use K/N with 0 <= K < N, e.g. 0/4", parameter="shard", value=text) from None
        if count < 1 or not 0 <= index < count:
            raise BadInput("use K/N with 0 <= K < N, e.g. 0/4 … 3/4", parameter="shard", value=text)
        return cls(index, count)

    def holds(self, key: str) -> bool:
        return self.count == 1 or shard_of(key, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_of(key: str, count: int) -> int:
    """The shard of ``key`` among ``count``: the first 8 bytes of its sha256, modulo ``count``."""
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % count


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

        if not keys:
            return None
        repeated = _first_repeat(keys)
        if repeated is not None:
            return repeated
        hashes = key_hashes(keys)
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
            hashes.append(key_hashes(chunk))
            lengths.append(np.fromiter((len(key) for key in encoded), dtype=np.int64, count=len(encoded)))
            text += b"".join(encoded)
        every = np.concatenate(hashes) if hashes else np.zeros(0, dtype=np.int64)
        self._order = np.argsort(every, kind="stable").astype(np.uint32 if len(every) < 2**32 else np.int64)
        self._hashes = every[self._order]
        self._ends = np.cumsum(np.concatenate(lengths)) if lengths else np.zeros(0, dtype=np.int64)
        self._text = bytes(text)

    def __len__(self) -> int:
        return len(self._hashes)

    @property
    def nbytes(self) -> int:
        return int(self._hashes.nbytes + self._order.nbytes + self._ends.nbytes) + len(self._text)

    def __contains__(self, key: object) -> bool:
        import numpy as np

        if not isinstance(key, str) or not len(self._hashes):
            return False
        wanted = key_hashes([key])[0]
        place = int(np.searchsorted(self._hashes, wanted))
        encoded = key.encode("utf-8", "surrogatepass")
        while place < len(self._hashes) and self._hashes[place] == wanted:
            row = int(self._order[place])
            start = int(self._ends[row - 1]) if row else 0
            if self._text[start:int(self._ends[row])] == encoded:
                return True
            place += 1
        return False


def key_hashes(keys: Sequence[str]) -> Any:
    """A 64-bit blake2b hash of each id: the same in every process and on every machine."""
    import numpy as np

    return np.fromiter((int.from_bytes(hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little",
                                       signed=True) for key in keys), dtype=np.int64, count=len(keys))


def _first_repeat(keys: Sequence[str]) -> str | None:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            return key
        seen.add(key)
    return None
