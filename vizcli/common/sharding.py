"""``--shard K/N``: a deterministic split of a dataset by a hash of each row's id.

N machines (or a Slurm array) each take the rows whose id hashes to their K, without talking to
each other; the hash is sha256, so the split is the same on every machine and Python version
(unlike ``hash``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from vizcli.common.errors import BadInput


@dataclass(frozen=True)
class Shard:
    """``index`` of ``count`` (0-based): the images whose id hashes to ``index``."""

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

    def holds(self, image_id: str) -> bool:
        return self.count == 1 or shard_of(image_id, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_of(image_id: str, count: int) -> int:
    """The shard of ``image_id`` among ``count``: the first 8 bytes of its sha256, modulo ``count``
    (the same on every machine and Python version, unlike ``hash``)."""
    digest = hashlib.sha256(image_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count
