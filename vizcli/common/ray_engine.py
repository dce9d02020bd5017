"""``--engine ray``: the same per-batch work as the local engine, on a pool of Ray Data actors.

The driver (the ``vizcli`` process) reads the input with the local engine's readers, cuts it into
the batches the local engine would run, and hands them to Ray Data as blocks; each actor builds
the model once (``vizcli.embed.Embedder`` or ``vizcli.roi.RoIExtractor``) and maps blocks to
result batches; the driver writes the results through the same sink as the local engine, so
the schema, ``--resume``, ``--shard`` and ``merge`` are the same. Inputs the actors open (image
files) must be at a path every node can read.

Ray restarts an actor whose process dies and retries its batch (``max_restarts``,
``max_task_retries``), so a killed worker costs time, not rows. Ray is an optional dependency
(``pip install 'vizcli[ray]'``); nothing here imports it until a Ray run starts.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

from vizcli.common.errors import BadInput, RunFailure
from vizcli.common.runtime import flat_heap_env

INSTALL = "pip install 'vizcli[ray]'"
ENGINES = ("local", "ray")
ACTOR_RESTARTS = 4  # a worker process that dies is restarted this many times …
TASK_RETRIES = 4  # … and the batch it held is run again on a live one
BLOCKS_PER_WINDOW = 64  # blocks handed to Ray at a time: the driver holds at most this many batches of input


def check_engine(engine: str, address: str | None) -> None:
    """``--engine`` and ``--ray-address`` before anything loads; Ray must be importable for ``ray``."""
    if engine not in ENGINES:
        raise BadInput("use local or ray", parameter="engine", value=engine)
    if engine == "local":
        if address is not None:
            raise BadInput("--ray-address is for --engine ray", parameter="ray_address", value=address)
        return
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError:
        raise BadInput(f"--engine ray needs Ray Data, which is not installed here; install it with: {INSTALL}") from None


def check_workers(workers: int | None) -> int:
    """Ray actors for ``--workers`` (default: this machine's CPUs)."""
    if workers is None:
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    if not 1 <= workers <= 4096:
        raise BadInput("use 1..4096 actors", parameter="workers", value=workers)
    return workers


@contextlib.contextmanager
def ray_session(address: str | None, cpus: int, quiet: bool = False) -> Iterator[Any]:
    """A connected Ray: a new local one with ``cpus`` CPUs (``address`` None), the cluster that
    ``RAY_ADDRESS`` names (``auto``), or the one at ``address``; shut down again on exit."""
    import logging

    import ray

    if ray.is_initialized():  # a caller's own session (the Python API): use it, leave it running
        yield ray
        return
    options: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": not quiet}
    if address is None:
        options["num_cpus"] = cpus
    else:
        options["address"] = address
    import signal

    ours = signal.getsignal(signal.SIGTERM)
    try:
        ray.init(**options)
    except (ConnectionError, RuntimeError, ValueError) as error:
        where = "a new local Ray" if address is None else f"Ray at {address!r}"
        raise RunFailure(f"could not start or join {where}: {str(error).splitlines()[0] if str(error) else type(error).__name__}; "
                         "check the address (ray status on the head node) or drop --ray-address to start a local Ray") from None
    except BaseException:  # a signal while Ray starts: stop what has started
        ray.shutdown()
        raise
    finally:
        if callable(ours):  # ray.init installs a SIGTERM handler that exits without cleaning up: put ours back
            signal.signal(signal.SIGTERM, ours)
    from ray.data import DataContext

    context = DataContext.get_current()
    context.execution_options.preserve_order = True  # rows come back in input order, as from the local engine
    context.enable_progress_bars = not quiet
    try:
        yield ray
    finally:
        ray.shutdown()


def map_blocks(
    blocks: Iterable[dict[str, Any]],
    callable_class: type,
    constructor_kwargs: dict[str, Any],
    actors: int,
    cpus_per_actor: float,
    actor_env: dict[str, str] | None = None,
) -> Iterator[dict[str, Any]]:
    """Each block (a batch dict) through ``callable_class(**constructor_kwargs)`` on ``actors`` Ray
    actors, yielded as result batches in input order. Blocks are sent ``BLOCKS_PER_WINDOW`` at a time.
    ``actor_env``: the actors' environment variables (default ``flat_heap_env()``: they run as long as the job)."""
    env = actor_env if actor_env is not None else flat_heap_env()
    window: list[dict[str, Any]] = []
    for block in blocks:
        window.append(block)
        if len(window) >= BLOCKS_PER_WINDOW:
            yield from _map_window(window, callable_class, constructor_kwargs, actors, cpus_per_actor, env)
            window = []
    if window:
        yield from _map_window(window, callable_class, constructor_kwargs, actors, cpus_per_actor, env)


def _map_window(window: list[dict[str, Any]], callable_class: type, constructor_kwargs: dict[str, Any], actors: int,
                cpus_per_actor: float, env: dict[str, str]) -> Iterator[dict[str, Any]]:
    import pyarrow as pa
    import ray.data
    from ray.exceptions import RayError

    tables = [pa.Table.from_pydict(block) for block in window]
    # from_blocks keeps one table = one block and reads their metadata here (from_arrow may re-split
    # them, and sends a task per table to read it)
    make = getattr(ray.data, "from_blocks", None) or ray.data.from_arrow
    with warnings.catch_warnings():
        # Ray 2.5x deprecates passing max_restarts/max_task_retries this way without naming a successor; its
        # own default for actor pools is to restart and retry forever, which loops on a row that kills its worker
        warnings.simplefilter("ignore")
        dataset = make(tables).map_batches(
            callable_class,
            fn_constructor_kwargs=constructor_kwargs,
            batch_size=None,  # one block is one batch: the batches the local engine would run
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=max(1, min(actors, len(tables)))),
            num_cpus=cpus_per_actor,
            max_restarts=ACTOR_RESTARTS,
            max_task_retries=TASK_RETRIES,
            runtime_env={"env_vars": env},
        )
    try:
        yield from dataset.iter_batches(batch_size=None, batch_format="numpy")
    except RayError as error:
        raise _ray_failure(error) from error


def _ray_failure(error: BaseException) -> Exception:
    """vizcli's own error when an actor raised one (``BadInput`` stays exit 2), else one line of Ray's."""
    from vizcli.common.errors import VizcliError

    cause: BaseException | None = error
    seen = 0
    while cause is not None and seen < 10:
        if isinstance(cause, VizcliError):
            return BadInput(cause.detail) if isinstance(cause, BadInput) else RunFailure(cause.detail)
        cause = cause.__cause__ or getattr(cause, "cause", None)
        seen += 1
    text = [line for line in str(error).strip().splitlines() if line.strip()]
    return RunFailure(f"the Ray job failed: {text[-1].strip() if text else type(error).__name__}")
