"""``run_dataset(job, source, settings)``: the one pipeline both ``roi`` and ``embed`` run over datasets.

A command says what is particular to it in a ``DatasetJob``: the key column, the rows' schema and
metadata, its callable class (``RoIExtractor``, ``Embedder``) with the constructor arguments, how
items become the class's input batch, and how a result batch becomes rows. The engine does the
rest, once, for both commands and both engines:

1. **Plan.** The ``source`` is a list of pieces (a Parquet row group, a file, a chunk of images),
   each able to yield its items. Each piece is read, the ``--shard`` and ``--resume`` filters drop
   what is not this run's, and the rest is cut into units of about ``--shard-size`` MB of rows.
2. **Compute and write.** A ``UnitTask`` (built once per worker) runs the callable class on a
   unit and writes the unit itself (``UnitWriter``), whole or not at all. A batch that raises is
   split in halves until the row that raises is found: that row goes to ``problems.jsonl``.
3. **Commit.** The driver records each unit in the manifest, checks ids never repeat (in 8 bytes
   an id), writes problems, and at the end joins the units (Parquet) or completes the manifest.

The local engine runs the planner and one ``UnitTask`` in this process; the Ray engine
(``vizcli.datasets.ray_engine``) runs the same planner in Ray tasks and the same ``UnitTask`` in
Ray actors, so both engines compute the same units with the same code.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from vizcli.common import signals
from vizcli.common.choices import OnError, values
from vizcli.common.errors import BadInput, Interrupted, RunFailure, VizcliError
from vizcli.datasets.keys import KeyIndex, Shard, UniqueKeys
from vizcli.datasets.sink import TableSink, UnitWriter, problems_path_for

ON_ERROR = values(OnError)
SKIPPED_ROWS_EXIT = 3  # a run that finished but skipped rows (see problems.jsonl); --on-error ignore gives 0


@dataclass(frozen=True)
class DatasetSettings:
    """How a dataset run is run and stored: every dataset flag, checked (``datasets.options``)."""

    output: str
    resume: bool = False
    shard: Shard = Shard()
    shard_format: str = "safetensors"
    unit_megabytes: float = 16.0
    engine: str = "local"
    workers: int = 1  # Ray actors, one model each
    threads: int = 1  # torch threads per Ray actor
    ray_address: str | None = None
    ray_timeout: float = 60.0  # seconds to join the cluster at ray_address
    on_error: str = "skip"
    quiet: bool = False


@dataclass(frozen=True)
class Item:
    """One input row of a dataset: its key (the output's key column), its 0-based position in the
    whole input, the output rows it is expected to give (for unit sizing), and the value itself."""

    key: str
    position: int
    rows: int
    value: Any


class Piece(Protocol):
    """A part of the input a Ray task (or this process) reads: yields its items in input order."""

    def items(self) -> Iterator[Item]: ...


@dataclass(frozen=True)
class ItemsPiece:
    """Items already in memory (the images of an annotation file, texts given as arguments)."""

    values: tuple[Item, ...]

    def items(self) -> Iterator[Item]:
        yield from self.values


@dataclass
class DatasetJob:
    """What a command's dataset run computes (see the module's docstring)."""

    command: str  # "roi", "embed": for messages
    key: str  # the rows' key column ("image", "id"); --resume skips items whose key is on disk
    schema: Any  # pyarrow.Schema of the rows
    metadata: dict[str, Any]  # recorded in every unit: everything that changes the rows
    worker: type  # the callable class: input batch dict → result batch dict
    worker_kwargs: dict[str, Any]
    to_batch: Callable[[list[Any]], dict[str, Any]]  # item values → the callable's input batch
    to_rows: Callable[[dict[str, Any], Any], Any]  # (result batch, schema) → pyarrow.Table of rows
    row_bytes: int  # stored bytes per row: units hold about --shard-size MB …
    max_unit_rows: int | None = None  # … and at most this many rows, so a run spreads over the workers
    problems_of: Callable[[dict[str, Any], dict[str, Any]], list[dict[str, Any]]] = lambda batch, result: []  # rows dropped
    tally_of: Callable[[dict[str, Any]], dict[str, int]] = lambda result: {}  # counts the summary reports (truncated texts)
    array_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    actor_env: dict[str, str] = field(default_factory=dict)  # environment of the Ray actors
    early_problems: list[dict[str, Any]] = field(default_factory=list)  # found while listing (annotation files)
    local_worker: Any = None  # an instance already built here (the local engine uses it instead of building one)


@dataclass
class DatasetSummary:
    output: str
    items: int  # input items computed in this run
    skipped: int  # items already on disk (--resume)
    rows: int  # rows written in this run
    problems: int
    problems_path: str | None
    builds: int = 0  # callable-class builds on this run's workers (Ray: one per actor, plus one per restart)
    tally: dict[str, int] = field(default_factory=dict)  # the job's counts over the run (embed: truncated texts)

    @property
    def exit_code(self) -> int:
        return 0 if not self.problems else SKIPPED_ROWS_EXIT


# ---------------------------------------------------------------- planning


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


# ---------------------------------------------------------------- computing a unit


class UnitTask:
    """The callable class of a job, built once per worker, and a writer for its units.

    ``run(unit)`` computes one unit and writes it; a batch that raises anything but a vizcli error
    is halved until the one row that raises is found (it becomes a problem, the rest are kept).
    With ``claims``, a marker ``.claim-<position>`` counts the attempts at each unit, so that after
    a worker process dies on every try the driver can tell which unit killed it.
    """

    def __init__(self, job: DatasetJob, writer: UnitWriter, claims: bool = False, build: bool = True) -> None:
        self.job, self.writer, self.claims = job, writer, claims
        self.worker = job.local_worker if job.local_worker is not None and not build else job.worker(**job.worker_kwargs)

    def run(self, unit: Unit) -> dict[str, Any]:
        """The unit's summary: its manifest entry (None when it gave no rows), keys, problems."""
        claim = Path(self.writer.folder) / f".claim-{unit.position}"
        if self.claims:
            _write_claim(claim, unit)
        self.tally: dict[str, int] = {}
        tables, problems = self._compute(unit.batch, unit.keys)
        import pyarrow as pa

        table = pa.concat_tables(tables) if tables else None
        entry = self.writer.write(table, unit.position) if table is not None and table.num_rows else None
        if self.claims:
            claim.unlink(missing_ok=True)
        return {"entry": entry, "keys": unit.keys, "problems": problems, "position": unit.position, "tally": self.tally}

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


def _write_claim(claim: Path, unit: Unit) -> None:
    attempts = 0
    try:
        attempts = int(json.loads(claim.read_text(encoding="utf-8"))["attempts"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    record = {"attempts": attempts + 1, "first": unit.positions[0], "last": unit.positions[-1], "items": len(unit.keys),
              "keys": unit.keys if len(unit.keys) == 1 else []}
    claim.write_text(json.dumps(record), encoding="utf-8")


def encode_unit(unit: Unit) -> bytes:
    """A unit as bytes for Ray's object store (vizcli's own data between its own processes)."""
    return pickle.dumps(unit, protocol=pickle.HIGHEST_PROTOCOL)


def decode_unit(data: bytes) -> Unit:
    return pickle.loads(data)  # noqa: S301 (written by encode_unit in this run, never read from a user's file)


# ---------------------------------------------------------------- the run


Engine = Callable[[DatasetJob, Sequence[Piece], Plan, UnitWriter, DatasetSettings, dict[str, int]], Iterator[dict[str, Any]]]


def local_engine(job: DatasetJob, pieces: Sequence[Piece], plan: Plan, writer: UnitWriter, settings: DatasetSettings,
                 counts: dict[str, int]) -> Iterator[dict[str, Any]]:
    """Every unit computed in this process by one ``UnitTask``."""
    task = UnitTask(job, writer, build=False)
    counts["builds"] = counts.get("builds", 0) + (0 if job.local_worker is not None else 1)
    for unit in plan_units(pieces, plan, job.to_batch, counts):
        yield task.run(unit)


def _engine(name: str) -> Engine:
    if name == "ray":
        from vizcli.datasets.ray_engine import ray_engine

        return ray_engine
    return local_engine


def run_dataset(job: DatasetJob, pieces: Sequence[Piece], settings: DatasetSettings,
                progress: Callable[[int], None] | None = None, engine: Engine | None = None) -> DatasetSummary:
    """Compute every item of ``pieces`` in this shard (and not on disk yet) into ``settings.output``."""
    if settings.on_error not in ON_ERROR:
        raise BadInput(f"use one of {', '.join(ON_ERROR)}", parameter="on_error", value=settings.on_error)
    metadata = {**job.metadata, "shard": str(settings.shard)}
    problems_file = problems_path_for(settings.output)
    had_problems_file = problems_file.exists()
    sink = TableSink(settings.output, job.schema, metadata, job.key, settings.shard_format, settings.resume, job.array_shapes)
    before = set(sink.entries)
    counts = {"skipped": 0, "items": 0, "rows": 0, "problems": 0, "builds": 0}
    tally: dict[str, int] = {}
    try:
        done = sink.done_keys() if settings.resume and sink.entries else None
        plan = Plan(settings.shard, done, unit_rows_for(settings.unit_megabytes, job.row_bytes, job.max_unit_rows))
        chosen: Engine = engine if engine is not None else _engine(settings.engine)
        _commit_units(job, sink, chosen(job, pieces, plan, sink.writer, settings, counts), problems_file, settings, counts,
                      progress, tally)
        signals.raise_if_interrupted()  # a signal whose raise the engine swallowed still stops the run
    except Interrupted as stop:
        _drop_empty(sink, before, problems_file, had_problems_file, counts)
        units = len(sink.units) if sink.folder.exists() else 0
        if not units:
            raise Interrupted(stop.signal_number, "no rows were finished; nothing was written") from None
        finished = "1 finished unit is" if units == 1 else f"{units:,} finished units are"
        raise Interrupted(stop.signal_number, f"{finished} kept in {sink.folder}; rerun with resume=True to finish") from None
    except BadInput:
        sink.discard(before)  # a refused input: nothing of this run stays behind
        _remove_new_problems(problems_file, had_problems_file, settings.resume)
        raise
    except BaseException:
        _drop_empty(sink, before, problems_file, had_problems_file, counts)
        raise
    final = sink.finish()
    if counts["problems"] == 0 and not had_problems_file:
        problems_file.unlink(missing_ok=True)
    return DatasetSummary(final, counts["items"], counts["skipped"], counts["rows"], counts["problems"],
                          str(problems_file) if problems_file.exists() else None, counts["builds"], tally)


def _drop_empty(sink: TableSink, before: set[str], problems_file: Path, had_problems_file: bool, counts: dict[str, int]) -> None:
    """A stopped run that finished no unit and met no problem leaves nothing behind."""
    if set(sink.entries) == before and not before:
        sink.discard(before)
        if counts["problems"] == 0:
            _remove_new_problems(problems_file, had_problems_file, False)


def _remove_new_problems(problems_file: Path, had_problems_file: bool, resume: bool) -> None:
    if not had_problems_file:
        problems_file.unlink(missing_ok=True)


def _logged_problems(problems_file: Path) -> set[str]:
    """The lines already in ``problems.jsonl`` (as written: one JSON object a line)."""
    try:
        with open(problems_file, encoding="utf-8", errors="replace") as handle:
            return {line.rstrip("\n") for line in handle if line.strip()}
    except FileNotFoundError:
        return set()
    except OSError as error:
        raise BadInput(f"{problems_file} cannot be read ({error.strerror}); move it away to start its log afresh",
                       parameter="output", value=str(problems_file)) from None


def _commit_units(job: DatasetJob, sink: TableSink, summaries: Iterator[dict[str, Any]], problems_file: Path,
                  settings: DatasetSettings, counts: dict[str, int], progress: Callable[[int], None] | None,
                  tally: dict[str, int]) -> None:
    seen = UniqueKeys()  # 8 bytes an id, not a set's ~90
    log = None
    logged = _logged_problems(problems_file) if settings.resume else set()  # a resumed run meets them again

    def on_problem(problem: dict[str, Any]) -> None:
        nonlocal log
        counts["problems"] += 1
        line = json.dumps(problem, ensure_ascii=False)
        if line in logged:
            return
        logged.add(line)
        if log is None:
            log = open(problems_file, "a" if settings.resume else "w", encoding="utf-8")  # noqa: SIM115 (closed below)
        log.write(line + "\n")
        log.flush()
        if settings.on_error == "stop":
            where = problem.get(job.key) or problem.get("image") or problem.get("annotations_file")
            raise RunFailure(f"{where}: {problem['problem']} (on_error=stop; finished units are kept: rerun with resume=True)")

    try:
        for problem in job.early_problems:
            on_problem(problem)
        for summary in summaries:
            signals.raise_if_interrupted()
            repeated = seen.add(summary["keys"], sink.keys)
            if repeated is not None:
                raise BadInput(f"id {repeated!r} appears twice; ids must be unique (check id_column=COLUMN)")
            for problem in summary["problems"]:
                on_problem(problem)
            if summary["entry"] is not None:
                sink.record(summary["entry"])
                counts["rows"] += int(summary["entry"]["rows"])
            for name, count in summary.get("tally", {}).items():
                tally[name] = tally.get(name, 0) + int(count)
            counts["items"] += len(summary["keys"])
            if progress is not None:
                progress(len(summary["keys"]))
    finally:
        if log is not None:
            log.close()
