"""``UnitTask``: a job's callable class, built once per worker, computing units and writing them.

A unit is computed in ``SLICES`` equal slices, and after a slice its finished rows are written (a *part*,
named after the position of its first item, like any unit) once ``commit_seconds`` have passed since the
last write, so a run stopped by a signal keeps what it computed even inside a unit that takes minutes.
The slices depend on the unit only, never on time: only where the parts end does, so every engine, on a
loaded machine or an idle one, hands the callable class the same batches and writes the same rows. (Sizing
slices by the measured pace wrote rows that differed in float32 rounding between a loaded and an idle
run: the batches a length-sorting encoder forms changed with them.)
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from vizcli.common.errors import VizcliError
from vizcli.datasets.job import COMMIT_SECONDS, DatasetJob
from vizcli.datasets.plan import Unit
from vizcli.datasets.sink import UnitWriter, unit_name

SLICES = 8  # a unit is computed in this many calls (fewer when it has fewer items): parts end between them


class UnitTask:
    """The callable class of a job, built once per worker, and a writer for its units.

    ``run(unit)`` computes one unit and writes it; a batch that raises anything but a vizcli error
    is halved until the one row that raises is found (it becomes a problem, the rest are kept).
    With ``claims``, a marker ``.claim-<position>`` counts the attempts at each unit, so that after
    a worker process dies on every try the driver can tell which unit killed it.
    """

    def __init__(self, job: DatasetJob, writer: UnitWriter, claims: bool = False, build: bool = True,
                 commit_seconds: float = COMMIT_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.job, self.writer, self.claims = job, writer, claims
        self.commit_seconds, self.clock = commit_seconds, clock
        self.worker = job.local_worker if job.local_worker is not None and not build else job.worker(**job.worker_kwargs)

    def run(self, unit: Unit) -> Iterator[dict[str, Any]]:
        """The unit's summaries, one a part written: its manifest entry (None when it gave no rows),
        keys, problems and position. The last one comes when the whole unit is done."""
        claim = Path(self.writer.folder) / f".claim-{unit.position}"
        if self.claims and _write_claim(claim, unit) > 1:
            self._remove_parts(unit)  # an earlier try died inside this unit: the parts it wrote are redone
        count = len(unit.keys)
        deadline = self.clock() + self.commit_seconds
        first = done = 0
        tables: list[Any] = []
        problems: list[dict[str, Any]] = []
        self.tally: dict[str, int] = {}
        step = max(-(-count // SLICES), self.job.min_slice_items)  # ceil: at most SLICES slices
        while done < count:
            stop = min(count, done + step)
            computed, found = self._compute(_rows(unit.batch, done, stop), unit.keys[done:stop])
            tables += computed
            problems += found
            done = stop
            now = self.clock()
            if done < count and now >= deadline:
                yield self._part(unit, first, done, tables, problems)
                first, tables, problems = done, [], []
                deadline = now + self.commit_seconds
        if self.claims:
            claim.unlink(missing_ok=True)
        yield self._part(unit, first, count, tables, problems)

    def _part(self, unit: Unit, first: int, stop: int, tables: list[Any], problems: list[dict[str, Any]]) -> dict[str, Any]:
        import pyarrow as pa

        table = pa.concat_tables(tables) if tables else None
        position = unit.positions[first]
        entry = self.writer.write(table, position) if table is not None and table.num_rows else None
        tally, self.tally = self.tally, {}
        return {"entry": entry, "keys": unit.keys[first:stop], "problems": problems, "position": position, "tally": tally}

    def _remove_parts(self, unit: Unit) -> None:
        for position in unit.positions:
            (Path(self.writer.folder) / unit_name(position, self.writer.suffix)).unlink(missing_ok=True)

    def _compute(self, batch: dict[str, Any], keys: list[str]) -> tuple[list[Any], list[dict[str, Any]]]:
        try:
            result = self.worker(batch)
            for name, count in self.job.tally_of(result).items():
                self.tally[name] = self.tally.get(name, 0) + int(count)
            return [self.job.to_rows(result, self.job.schema)], list(self.job.problems_of(batch, result))
        except VizcliError:
            raise
        except Exception as error:  # a bug or a library failure on some row: find it, keep the others
            if len(keys) == 1:
                detail = " ".join(f"{type(error).__name__}: {error}".split())[:500]
                return [], [{self.job.key: keys[0], "problem": f"the {self.job.command} worker failed on this row ({detail})"}]
            half = len(keys) // 2
            first = self._compute(_rows(batch, 0, half), keys[:half])
            second = self._compute(_rows(batch, half, len(keys)), keys[half:])
            return first[0] + second[0], first[1] + second[1]


def _rows(batch: dict[str, Any], start: int, stop: int) -> dict[str, Any]:
    return {name: values[start:stop] for name, values in batch.items()}


def _write_claim(claim: Path, unit: Unit) -> int:
    """Count one more attempt at ``unit`` in its claim marker; returns the attempts so far."""
    attempts = 0
    try:
        attempts = int(json.loads(claim.read_text(encoding="utf-8"))["attempts"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    record = {"attempts": attempts + 1, "first": unit.positions[0], "last": unit.positions[-1], "items": len(unit.keys),
              "keys": unit.keys if len(unit.keys) == 1 else []}
    claim.write_text(json.dumps(record), encoding="utf-8")
    return attempts + 1
