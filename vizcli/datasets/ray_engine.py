"""``--engine ray``: the dataset pipeline as one streaming Ray Data plan.

::

    from_items(pieces) → map_batches(read and plan units)        Ray tasks of 0 CPUs: the input is read on the
                                                                   cluster, the --shard and --resume filters run
                                                                   there; each unit leaves as a block of its own
                       → map_batches(UnitTask, ActorPoolStrategy)  actors, built once for the run: compute a unit
                                                                   and write it into the shared output
                       → iter_batches() on the driver              a few bytes per unit: its manifest entry,
                                                                   keys and problems; the driver commits

Each actor builds the command's callable class (``RoIExtractor``, ``Embedder``) once and keeps it
for the whole run; Ray restarts an actor whose process dies and retries its unit on it. A unit
that kills its worker on every try fails the plan; the driver then reads the attempt counts the
workers left (``.claim-*`` markers), splits that unit in halves and runs again, until the one row
that kills its worker is found: it goes to ``problems.jsonl``, every other row is kept. When nodes are
lost for good and the live ones hold fewer actors (``ray_cluster.Watchdog``), the plan stops and runs again
with as many actors as they hold, its committed units kept; a run that cannot progress at all ends saying why.

The output folder must be one that every node can write (a shared file system), and the inputs
the workers open (image files, corpus files) must be at paths every node can read. Ray's own
checkpointing (``CheckpointConfig``) is not used: it records finished ids apart from the data, so a
crash between writing a block and recording its ids writes those rows twice; vizcli's units are
their own checkpoint (a unit is renamed in whole, and ``--resume`` reads the ids from the units).
Ray is an optional dependency (``pip install 'vizcli[ray]'``); nothing here imports it until a run starts.

**Why a cluster whose CPUs all hold actors still runs** (Ray 2.60's source and docs, as read for this design).
Ray Core places a task or actor only on a node where the sum of the requests of what runs there stays within
the node's logical resources, and a task asks for 1 CPU unless told otherwise (docs.ray.io: ray-core/scheduling/
resources.html, ray-core/patterns/limit-running-tasks.html). Ray Data adds its own budget: each eligible operator
reserves ``reservation_ratio`` of the limits and shares the rest, and launches a task only when the task's request
fits (``ReservationOpResourceAllocator.can_submit_new_task`` in ``ray/data/_internal/execution/resource_manager.py``).
With ``workers`` actors holding every CPU, any task asking for a CPU, or a fraction of one, waits for ever: the read
reported ``backpressured:tasks(ResourceBudget)``, and ``repartition(target_num_rows_per_block=1)`` added a
``StreamingRepartition`` operator whose tasks take the default 1 CPU (``logical/operators/map_operator.py``; it fuses
with the read only when their remote args agree, ``rules/operator_fusion.py``). So nothing but the actors asks for
CPUs: the read tasks ask for ``num_cpus=0`` (they parse rows and cut units, light beside a model; ``concurrency=``
caps them at ``READ_TASKS``), and each unit leaves its read task as a block of its own because the plan is built
with ``DataContext.target_max_block_size`` at 1 byte (data/performance-tips.html: the output block size; a dataset
keeps the context it was built with, and the caller's value is put back at once), so no repartition is needed.
``DataContext.execution_options.resource_limits`` and ``exclude_resources`` (data/execution-configurations.html)
are left alone: they change Ray Data's budget, not what Ray Core can place, so neither could free a CPU for a read.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from vizcli.common.errors import _UNSET, BadInput, Interrupted, RunFailure, VizcliError
from vizcli.datasets.job import COMMIT_SECONDS, DatasetJob, DatasetSettings, Piece
from vizcli.datasets.plan import Plan, decode_unit, encode_unit, plan_units
from vizcli.datasets.ray_cluster import Shrunk, Stalled, Watchdog, check_placeable, node_cpus, room_for, stall_message
from vizcli.datasets.ray_connect import ray_session
from vizcli.datasets.sink import UnitWriter
from vizcli.datasets.task import UnitTask

INSTALL = "pip install 'vizcli[ray]'"
ACTOR_RESTARTS = 4  # a worker process that dies is restarted this many times …
TASK_RETRIES = 3  # … and the unit it held is run again on a live one
MAX_SPLITS = 64  # rounds of halving a unit that kills its worker, at most
READ_TASKS = 2  # read tasks running at once (0 CPUs each: they never wait for the actors' CPUs)


def check_ray_installed() -> None:
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError:
        raise BadInput(f"engine='ray' needs Ray Data, which is not installed here; install it with: {INSTALL}") from None


def ray_engine(job: DatasetJob, pieces: Sequence[Piece], plan: Plan, writer: UnitWriter, settings: DatasetSettings,
               counts: dict[str, int]) -> Iterator[dict[str, Any]]:
    """The units of ``pieces`` computed on Ray (see the module's docstring), as the driver's summaries."""
    import ray

    # a local Ray started here passes the actors' environment to its workers itself, so the actors need no
    # runtime_env and start on the workers Ray has already started (a runtime_env makes Ray start new ones)
    inherited = settings.ray_address is None and not ray.is_initialized()
    # a local Ray gets exactly the CPUs the actors take: the read tasks ask for none (see the module's docstring)
    with ray_session(settings.ray_address, settings.workers * settings.threads, settings.quiet, settings.ray_timeout,
                     env=job.actor_env):
        yield from _rounds(replace(job, actor_env={}) if inherited else job, pieces, plan, writer, settings, counts)


def _rounds(job: DatasetJob, pieces: Sequence[Piece], plan: Plan, writer: UnitWriter, settings: DatasetSettings,
            counts: dict[str, int]) -> Iterator[dict[str, Any]]:
    import ray

    from vizcli.datasets.keys import KeyIndex

    check_placeable(ray, settings.workers, settings.threads)
    refs = [ray.put(piece) for piece in pieces]  # each read task fetches only its own piece
    folder = Path(writer.folder)
    kept = {path.name for path in folder.glob("part-*")}  # units on disk before this run, and those committed since
    for round_number in range(MAX_SPLITS):
        for stale in folder.glob(".claim-*"):  # markers of a plan that was stopped: not crashes
            stale.unlink(missing_ok=True)
        committed: list[str] = []
        try:
            # a later round's plan skips what earlier rounds wrote: only the first round counts what --resume skipped
            for summary in _one_plan(job, refs, plan, writer, settings, counts, round_number == 0):
                if summary["entry"] is not None:
                    committed.append(summary["entry"]["file"])
                yield summary
            return
        except Interrupted:
            raise
        except Shrunk as lost:  # nodes were lost for good: the actors they held cannot come back
            crashed = []
            if not settings.quiet:
                from vizcli.common.console import warn

                warn(f"the Ray cluster lost nodes and now holds {lost.room} of the workers={settings.workers} actors; "
                     f"the run goes on with {lost.room} (finished units are kept)")
            settings = replace(settings, workers=lost.room)
        except Exception as error:
            failure = _ray_failure(error)
            crashed = _crashed_units(folder)
            if isinstance(failure, BadInput) or not crashed or _vizcli_error(error) is not None:
                raise failure from None
        kept.update(committed)
        for orphan in folder.glob("part-*"):  # written while the plan failed, never committed: computed again
            if orphan.name not in kept:
                orphan.unlink(missing_ok=True)
        poisoned = set(plan.poisoned)
        split = list(plan.split)
        for claim in crashed:
            if claim["items"] == 1:  # one row that kills its worker every time
                poisoned.add(int(claim["first"]))
                key = claim["keys"][0] if claim["keys"] else str(claim["first"])
                yield {"entry": None, "keys": [], "position": int(claim["first"]),
                       "problems": [{job.key: key, "problem": f"the {job.command} worker process died on this row on "
                                     f"every one of {claim['attempts']} tries; it was left out"}]}
            else:
                split.append((int(claim["first"]), int(claim["last"]), max(1, int(claim["items"]) // 2)))
        finished = KeyIndex(_unit_keys(folder, committed, writer.key)) if committed else None
        plan = replace(plan, split=tuple(split), poisoned=frozenset(poisoned), done=_both(plan.done, finished))
    raise RunFailure(f"workers kept dying after {MAX_SPLITS} rounds of splitting their units; see the Ray logs")


def _unit_keys(folder: Path, names: list[str], key: str) -> Iterator[list[str]]:
    from vizcli.datasets.units import read_unit

    for name in names:
        yield [str(value) for value in read_unit(folder / name).column(key).to_pylist()]


class _EitherIndex:
    """``key in a or key in b`` for the read tasks (the units on disk before, and those of earlier rounds)."""

    def __init__(self, first: Any, second: Any) -> None:
        self.first, self.second = first, second

    def __contains__(self, key: object) -> bool:
        return key in self.first or key in self.second


def _both(first: Any, second: Any) -> Any:
    if first is None or second is None:
        return first if second is None else second
    return _EitherIndex(first, second)


def _crashed_units(folder: Path) -> list[dict[str, Any]]:
    """The claims of units tried more than once: a worker died on them."""
    crashed = []
    for claim in folder.glob(".claim-*"):
        try:
            record = json.loads(claim.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if int(record.get("attempts", 0)) > 1:
            crashed.append(record)
        claim.unlink(missing_ok=True)
    return crashed


def _one_plan(job: DatasetJob, refs: list[Any], plan: Plan, writer: UnitWriter, settings: DatasetSettings,
              counts: dict[str, int], count_skipped: bool) -> Iterator[dict[str, Any]]:
    import ray.data
    from ray.data import DataContext

    plan_ref = ray.put(plan)
    env = dict(job.actor_env)
    context = DataContext.get_current()
    saved = context.target_max_block_size
    context.target_max_block_size = 1  # every unit a block of its own (the dataset keeps the context it was built with)
    try:
        dataset: Any = ray.data.from_items([{"piece": index} for index in range(len(refs))], override_num_blocks=max(1, len(refs)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Ray's deprecation notes about its own arguments
            dataset = dataset.map_batches(_read_units, fn_kwargs={"refs": refs, "plan": plan_ref, "to_batch": job.to_batch},
                                          batch_size=1, batch_format="pandas", num_cpus=0, concurrency=min(READ_TASKS, max(1, len(refs))))
            dataset = _with_actors(dataset, job, writer, settings, env)
    finally:
        context.target_max_block_size = saved
    batches = iter(dataset.iter_batches(batch_size=None, batch_format="pandas"))
    def room() -> int | None:
        cpus = node_cpus(ray)
        return None if cpus is None else room_for(cpus, settings.threads)

    watchdog = Watchdog(Path(writer.folder), settings.stall_timeout,
                        lambda idle: stall_message(ray, idle, settings.workers, settings.threads), room, settings.workers)
    try:
        with watchdog:
            for batch in batches:
                for row in batch.itertuples(index=False):
                    watchdog.progressed()
                    summary = json.loads(row.summary)
                    skipped = int(summary.pop("skipped", 0))
                    counts["skipped"] += skipped if count_skipped else 0
                    counts["builds"] += int(summary.pop("builds", 0))
                    if "error" in summary:
                        raise error_from_record(summary["error"])
                    yield summary
    except Stalled as stall:
        raise RunFailure(stall.message) from None
    finally:
        close = getattr(batches, "close", None)
        if close is not None:  # stop Ray Data's executor while Ray is still up (else its threads log tracebacks)
            close()


def _with_actors(dataset: Any, job: DatasetJob, writer: UnitWriter, settings: DatasetSettings, env: dict[str, str]) -> Any:
    import ray.data

    return dataset.map_batches(
            _UnitActor, fn_constructor_kwargs={"job": _remote_job(job), "writer": writer,
                                               "commit_seconds": settings.commit_seconds},
            batch_size=1, batch_format="pandas", compute=ray.data.ActorPoolStrategy(size=settings.workers, max_tasks_in_flight_per_actor=1),
            # one unit at a time an actor: a unit queued behind a busy actor would wait while another idles
            num_cpus=settings.threads, max_restarts=ACTOR_RESTARTS, max_task_retries=TASK_RETRIES,
            **({"runtime_env": {"env_vars": env}} if env else {}),
        )


def _remote_job(job: DatasetJob) -> DatasetJob:
    return replace(job, local_worker=None, early_problems=[])


def _read_units(batch: Any, refs: list[Any], plan: Any, to_batch: Any) -> Iterator[dict[str, list[Any]]]:
    """A read task: its pieces' units, each as one row of bytes (``encode_unit``)."""
    import ray

    plan_value = ray.get(plan) if isinstance(plan, ray.ObjectRef) else plan
    for index in batch["piece"]:
        counts: dict[str, int] = {}
        units = [encode_unit(unit) for unit in plan_units([ray.get(refs[int(index)])], plan_value, to_batch, counts)]
        skipped = [0] * len(units)
        if units:
            skipped[0] = counts.get("skipped", 0)
            yield {"unit": units, "skipped": skipped}
        elif counts.get("skipped"):
            yield {"unit": [b""], "skipped": [counts["skipped"]]}


class _UnitActor:
    """One Ray actor: a ``UnitTask`` built once; a unit in, its summary (JSON) out."""

    def __init__(self, job: DatasetJob, writer: UnitWriter, commit_seconds: float = COMMIT_SECONDS) -> None:
        self.task = UnitTask(job, writer, claims=True, commit_seconds=commit_seconds)
        self.builds = 1

    def __call__(self, batch: Any) -> dict[str, list[str]]:
        summaries = []
        for data, skipped in zip(batch["unit"], batch["skipped"]):
            parts: list[dict[str, Any]] = []
            if data:
                try:
                    parts = list(self.task.run(decode_unit(bytes(data))))
                except VizcliError as error:  # sent back as data: Ray's wrappers drop an exception's cause
                    parts = [{"entry": None, "keys": [], "problems": [], "position": -1, "error": error_record(error)}]
            parts = parts or [{"entry": None, "keys": [], "problems": [], "position": -1}]
            parts[0]["skipped"], parts[0]["builds"] = int(skipped), self.builds
            self.builds = 0  # counted once, with this actor's first unit
            summaries += [json.dumps(part, ensure_ascii=False) for part in parts]
        return {"summary": summaries}


def error_record(error: VizcliError) -> dict[str, Any]:
    """A vizcli error as JSON-safe data (``error_from_record`` raises it again on the driver)."""
    value = getattr(error, "value", None)
    has_value = value is not _UNSET
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        value = str(value)
    return {"kind": "BadInput" if isinstance(error, BadInput) else "RunFailure", "detail": error.detail,
            "parameter": error.parameter, "value": value if has_value else None, "has_value": has_value}


def error_from_record(record: dict[str, Any]) -> VizcliError:
    kind = BadInput if record.get("kind") == "BadInput" else RunFailure
    if record.get("has_value"):
        return kind(record["detail"], parameter=record.get("parameter"), value=record.get("value"))
    return kind(record["detail"], parameter=record.get("parameter"))


def _vizcli_error(error: BaseException) -> VizcliError | None:
    cause: BaseException | None = error
    seen = 0
    while cause is not None and seen < 10:
        if isinstance(cause, VizcliError):
            return cause
        cause = cause.__cause__ or getattr(cause, "cause", None)
        seen += 1
    return None


def _ray_failure(error: BaseException) -> Exception:
    """vizcli's own error when a worker raised one (``BadInput`` stays exit 2), else one line of Ray's."""
    ours = _vizcli_error(error)
    if ours is not None:
        return ours if type(ours) in (BadInput, RunFailure) else RunFailure(ours.detail)
    text = [line for line in str(error).strip().splitlines() if line.strip()]
    return RunFailure(f"the Ray job failed: {text[-1].strip() if text else type(error).__name__}")


def worker_count(workers: int | None) -> int:
    """Ray actors for ``workers`` (default: this machine's CPUs)."""
    if workers is None:
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    return workers
