"""``run_dataset(job, source, settings)``: the one pipeline both ``roi`` and ``embed`` run over datasets.

A command says what is particular to it in a ``DatasetJob``: the key column, the rows' schema and
metadata, its callable class (``RoIExtractor``, ``Embedder``) with the constructor arguments, how
items become the class's input batch, and how a result batch becomes rows. The engine does the
rest, once, for both commands and both engines:

1. **Plan.** The ``source`` is a list of pieces (a Parquet row group, a file, a chunk of images),
   each able to yield its items. Each piece is read, the ``--shard`` and ``--resume`` filters drop
   what is not this run's, and the rest is cut into units of about ``--shard-size`` MB of rows.
2. **Compute and write.** A ``UnitTask`` (built once per worker, ``datasets.task``) runs the
   callable class on a unit and writes the unit itself (``UnitWriter``), whole or not at all; a
   unit that runs longer than ``commit_seconds`` (30 s) writes its finished rows as it goes, so a
   signal keeps them. A batch that raises is split in halves until the row that raises is found:
   that row goes to ``problems.jsonl``.
3. **Commit.** The driver records each unit in the manifest, checks ids never repeat (in 8 bytes
   an id), writes problems, and at the end joins the units (Parquet) or completes the manifest.

The local engine runs the planner (``datasets.plan``) and one ``UnitTask`` in this process; the Ray
engine (``vizcli.datasets.ray_engine``) runs the same planner in Ray tasks and the same ``UnitTask`` in
Ray actors, so both engines compute the same units with the same code. Imports run one way: this
module picks the Ray engine (lazily); the engine imports ``job``, ``plan`` and ``task``, never this.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vizcli.common import signals
from vizcli.common.choices import OnError, values
from vizcli.common.errors import BadInput, Interrupted, RunFailure
from vizcli.datasets.job import DatasetJob, DatasetSettings, Item, ItemsPiece, Piece
from vizcli.datasets.keys import UniqueKeys
from vizcli.datasets.plan import Plan, plan_units, unit_rows_for
from vizcli.datasets.sink import TableSink, UnitWriter, problems_path_for
from vizcli.datasets.task import UnitTask

__all__ = ["DatasetJob", "DatasetSettings", "DatasetSummary", "Item", "ItemsPiece", "Piece", "SKIPPED_ROWS_EXIT", "run_dataset"]

ON_ERROR = values(OnError)
SKIPPED_ROWS_EXIT = 3  # a run that finished but skipped rows (see problems.jsonl); --on-error ignore gives 0


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


# ---------------------------------------------------------------- the run


Engine = Callable[[DatasetJob, Sequence[Piece], Plan, UnitWriter, DatasetSettings, dict[str, int]], Iterator[dict[str, Any]]]


def local_engine(job: DatasetJob, pieces: Sequence[Piece], plan: Plan, writer: UnitWriter, settings: DatasetSettings,
                 counts: dict[str, int]) -> Iterator[dict[str, Any]]:
    """Every unit computed in this process by one ``UnitTask``."""
    task = UnitTask(job, writer, build=False, commit_seconds=settings.commit_seconds)
    counts["builds"] = counts.get("builds", 0) + (0 if job.local_worker is not None else 1)
    for unit in plan_units(pieces, plan, job.to_batch, counts):
        yield from task.run(unit)


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
        sink.adopt_written()  # the finished parts of units still running: kept for --resume
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
        try:  # tidying up after a failure must not replace it (the output folder may itself be what went wrong)
            sink.adopt_written()
            _drop_empty(sink, before, problems_file, had_problems_file, counts)
        except OSError:
            pass
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
                fix = "check id_column=COLUMN" if job.key == "id" else f"give each {job.key} once"  # the flag only embed has
                raise BadInput(f"{job.key} {repeated!r} appears twice; {job.key}s must be unique ({fix})")
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
