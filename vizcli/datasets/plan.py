"""Planning a dataset run: its pieces read, the ``--shard`` and ``--resume`` filters applied, the rest cut
into units of about ``--shard-size`` MB of rows. The local engine plans in this process, the Ray engine
in its read tasks, with the same ``plan_units``.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from vizcli.datasets.job import Item, Piece
from vizcli.datasets.keys import KeyIndex, Shard


@dataclass(frozen=True)
class Plan:
    """What the planner needs besides the pieces; picklable, sent to Ray's read tasks."""

    shard: Shard
    done: KeyIndex | None
    unit_rows: int
    split: tuple[tuple[int, int, int], ...] = ()  # (first, last, items per unit): ranges a worker crashed on
    poisoned: frozenset[int] = frozenset()  # positions of rows that crash their worker every time


@dataclass
class Unit:
    position: int  # the position of its first item
    keys: list[str]
    positions: list[int]
    batch: dict[str, Any]  # the callable's input


def plan_units(pieces: Iterable[Piece], plan: Plan, to_batch: Callable[[list[Any]], dict[str, Any]],
               counts: dict[str, int] | None = None) -> Iterator[Unit]:
    """The units of ``pieces`` that this run computes, in input order."""
    counts = counts if counts is not None else {}
    chosen: list[Item] = []
    rows = 0
    limit = plan.unit_rows

    def unit() -> Unit:
        return Unit(chosen[0].position, [item.key for item in chosen], [item.position for item in chosen],
                    to_batch([item.value for item in chosen]))

    for piece in pieces:
        for item in piece.items():
            if not plan.shard.holds(item.key) or item.position in plan.poisoned:
                continue
            if plan.done is not None and item.key in plan.done:
                counts["skipped"] = counts.get("skipped", 0) + 1
                continue
            wanted = _items_per_unit(plan.split, item.position)
            if chosen and (wanted is not None and len(chosen) >= wanted or
                           _items_per_unit(plan.split, chosen[-1].position) != wanted or rows + item.rows > limit):
                yield unit()
                chosen, rows = [], 0
            chosen.append(item)
            rows += item.rows
    if chosen:
        yield unit()


def _items_per_unit(split: tuple[tuple[int, int, int], ...], position: int) -> int | None:
    for first, last, size in reversed(split):  # the newest split of a range is the finest
        if first <= position <= last:
            return size
    return None


def unit_rows_for(megabytes: float, row_bytes: int, max_rows: int | None = None) -> int:
    """Rows a unit holds: ``megabytes`` of stored values, at most ``max_rows``."""
    rows = max(1, int(megabytes * (1 << 20) // max(1, row_bytes)))
    return min(rows, max_rows) if max_rows is not None else rows


def encode_unit(unit: Unit) -> bytes:
    """A unit as bytes for Ray's object store (vizcli's own data between its own processes)."""
    return pickle.dumps(unit, protocol=pickle.HIGHEST_PROTOCOL)


def decode_unit(data: bytes) -> Unit:
    return pickle.loads(data)  # noqa: S301 (written by encode_unit in this run, never read from a user's file)
