"""The dataset flags, declared once for ``roi`` and ``embed``, and the one place they are checked.

Standard library and typer only at import (``vizcli --help`` imports this module).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Annotated, Any

import typer

from vizcli.common.errors import BadInput
from vizcli.common.options import Engine, OnError, ShardFormat
from vizcli.datasets.job import STALL_TIMEOUT, DatasetSettings

DATASET_PANEL = "Dataset run"
RAY_PANEL = "Ray"

ResumeOption = Annotated[bool, typer.Option("--resume", rich_help_panel=DATASET_PANEL,
                                            help="Continue an interrupted run: rows already on disk are skipped.")]
ShardOption = Annotated[str | None, typer.Option("--shard", rich_help_panel=DATASET_PANEL,
                                                 help="K/N: only the rows whose id hashes to K of N (0 <= K < N).")]
ShardFormatOption = Annotated[ShardFormat, typer.Option("--shard-format", rich_help_panel=DATASET_PANEL,
                                                        help="The files of an -o DIR/ output.")]
ShardSizeOption = Annotated[float, typer.Option("--shard-size", rich_help_panel=DATASET_PANEL,
                                                help="Most MB of stored values per unit (a shard, or a Parquet row group; at most "
                                                "512 texts or 256 boxes, so work spreads over workers); memory holds about one per worker.")]
StallTimeoutOption = Annotated[
    float, typer.Option("--stall-timeout", metavar="SECONDS", rich_help_panel=RAY_PANEL,
                        help="End a Ray run that makes no progress (no unit finished, no rows written) for this long: "
                        "one line says why, exit 1; finished units are kept for --resume.")
]
OnErrorOption = Annotated[OnError, typer.Option("--on-error", rich_help_panel=DATASET_PANEL,
                                                help="A bad row: skip it (recorded in problems.jsonl; the run exits 3), ignore "
                                                "(skip it, exit 0), or stop.")]
EngineOption = Annotated[Engine, typer.Option("--engine", rich_help_panel=RAY_PANEL,
                                              help="local (this process) or ray (one streaming Ray Data pipeline; pip install 'vizcli[ray]').")]
WorkersOption = Annotated[int | None, typer.Option("--workers", rich_help_panel=RAY_PANEL,
                                                   help="Ray actors, one model each (default: the CPUs of the cluster).")]
RayAddressOption = Annotated[str | None, typer.Option("--ray-address", rich_help_panel=RAY_PANEL,
                                                      help="Join this Ray cluster (auto = the one RAY_ADDRESS names); default: start a local Ray.")]
RayTimeoutOption = Annotated[float, typer.Option("--ray-timeout", rich_help_panel=RAY_PANEL,
                                                 help="Seconds to join the cluster at --ray-address before giving up.")]


@dataclass(frozen=True)
class DatasetFlags:
    """The dataset flags as typed, with their defaults (the one place they are declared); ``settings`` checks them."""

    resume: bool = False
    shard: str | None = None
    shard_format: ShardFormat = ShardFormat.safetensors
    shard_size: float = 16.0
    on_error: OnError = OnError.skip
    engine: Engine = Engine.local
    workers: int | None = None
    ray_address: str | None = None
    ray_timeout: float = 60.0
    stall_timeout: float = STALL_TIMEOUT

    def settings(self, output: str, threads: int | None = None, quiet: bool = False) -> DatasetSettings:
        """Every dataset flag checked, before any model loads."""
        return dataset_settings(output, self.resume, self.shard, self.shard_format, self.shard_size, self.engine, self.workers,
                                self.ray_address, self.on_error, threads, quiet, self.ray_timeout, self.stall_timeout)

    def given(self) -> list[str]:
        """The flags given a value other than their default (for commands that refuse them without a dataset)."""
        defaults = DatasetFlags()
        return ["--" + item.name.replace("_", "-") for item in fields(self) if getattr(self, item.name) != getattr(defaults, item.name)]


_DATASET_OPTIONS = {"resume": ResumeOption, "shard": ShardOption, "shard_format": ShardFormatOption, "shard_size": ShardSizeOption,
                    "on_error": OnErrorOption, "engine": EngineOption, "workers": WorkersOption, "ray_address": RayAddressOption,
                    "ray_timeout": RayTimeoutOption, "stall_timeout": StallTimeoutOption}


def dataset_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Give ``command`` the dataset flags, declared once: its ``dataset: DatasetFlags`` parameter becomes
    the flags of ``DatasetFlags`` (in the Dataset run and Ray panels of ``--help``).

    Typer reads a command's parameters from its signature, so the wrapper shows the command's own
    parameters followed by the dataset flags, and gathers those back into one ``DatasetFlags``.
    """
    signature = inspect.signature(command, eval_str=True)  # the command's module imports DatasetFlags at top level
    own = [parameter for name, parameter in signature.parameters.items() if name != "dataset"]
    defaults = DatasetFlags()
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=alias, default=getattr(defaults, name))
             for name, alias in _DATASET_OPTIONS.items()]

    @functools.wraps(command)
    def with_dataset(*args: Any, **kwargs: Any) -> Any:
        flags = DatasetFlags(**{name: kwargs.pop(name) for name in _DATASET_OPTIONS if name in kwargs})
        return command(*args, dataset=flags, **kwargs)

    keyword_only = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
    with_dataset.__signature__ = signature.replace(parameters=[*keyword_only, *added])  # type: ignore[attr-defined]
    with_dataset.__annotations__ = {**{p.name: p.annotation for p in own}, **_DATASET_OPTIONS}
    del with_dataset.__wrapped__  # typer and inspect read the signature above, not the wrapped function's
    return with_dataset


DEFAULT_SAMPLE = 8  # vizcli.outputs.verify's default, repeated here so --help imports nothing heavy
SampleOption = Annotated[int, typer.Option("--sample", help="How many stored items (images, texts) to recompute.")]
ToleranceOption = Annotated[float | None, typer.Option("--tolerance", help="The largest difference accepted (default: by the "
                                                       "compute dtype, 1e-4 for float32).")]
MAX_WORKERS = 4096


def dataset_settings(output: str, resume: bool, shard: str | None, shard_format: ShardFormat, shard_size: float,
                     engine: Engine, workers: int | None, ray_address: str | None, on_error: OnError, threads: int | None,
                     quiet: bool, ray_timeout: float = 60.0, stall_timeout: float = STALL_TIMEOUT) -> DatasetSettings:
    """Every dataset flag checked, before any model loads."""
    from vizcli.datasets.keys import Shard
    from vizcli.datasets.sink import check_output, is_table_output

    if not is_table_output(output):
        raise BadInput("a dataset run writes rows: give -o out.parquet or -o DIR/ (a folder of shards)", parameter="output", value=output)
    if not 0.01 <= shard_size <= 65536:
        raise BadInput("use 0.01..65536 (MB)", parameter="shard_size", value=shard_size)
    if engine is Engine.local and ray_address is not None:
        raise BadInput("only for engine='ray' (the Ray cluster to join)", parameter="ray_address", value=ray_address)
    if engine is Engine.local and workers is not None:
        raise BadInput("is the number of Ray actors, only for engine='ray'; a local run takes threads=N (torch's threads) "
                       "and, for roi and detect, decode_threads=N", parameter="workers", value=workers)
    if not 1 <= ray_timeout <= 86400:
        raise BadInput("use 1..86400 seconds", parameter="ray_timeout", value=ray_timeout)
    if not 1 <= stall_timeout <= 604800:
        raise BadInput("use 1..604800 seconds", parameter="stall_timeout", value=stall_timeout)
    actors = 1
    if engine is Engine.ray:
        from vizcli.datasets.ray_engine import check_ray_installed, worker_count

        check_ray_installed()
        if workers is not None and not 1 <= workers <= MAX_WORKERS:
            raise BadInput(f"use 1..{MAX_WORKERS} actors", parameter="workers", value=workers)
        actors = worker_count(workers)
    parsed = Shard.parse(shard)
    check_output(output)
    return DatasetSettings(output=output, resume=resume, shard=parsed, shard_format=shard_format.value, unit_megabytes=shard_size,
                           engine=engine.value, workers=actors, threads=threads or 1, ray_address=ray_address, ray_timeout=ray_timeout,
                           on_error=on_error.value, quiet=quiet, stall_timeout=stall_timeout)


def summary_exit(problems: int, skipped_rows_note: str, on_error: str) -> int:
    """The run's exit status: 0, or ``SKIPPED_ROWS_EXIT`` when rows were skipped (``--on-error ignore``: 0)."""
    from vizcli.common.console import warn
    from vizcli.datasets.run import SKIPPED_ROWS_EXIT

    if not problems or on_error == "ignore":
        return 0
    records = "1 problem was" if problems == 1 else f"{problems:,} problems were"
    warn(f"{records} recorded and the rows they name skipped ({skipped_rows_note}); exit status {SKIPPED_ROWS_EXIT} "
         "(--on-error ignore exits 0)")
    return SKIPPED_ROWS_EXIT
