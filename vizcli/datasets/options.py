"""The dataset flags, declared once for ``roi`` and ``embed``, and the one place they are checked.

Standard library and typer only at import (``vizcli --help`` imports this module).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from vizcli.common.errors import BadInput
from vizcli.common.options import Engine, OnError, ShardFormat
from vizcli.datasets.run import DatasetSettings

ResumeOption = Annotated[bool, typer.Option("--resume", help="Continue an interrupted dataset run: rows already on disk are skipped.")]
ShardOption = Annotated[str | None, typer.Option("--shard", help="K/N: only the rows whose id hashes to K of N (0 <= K < N).")]
ShardFormatOption = Annotated[ShardFormat, typer.Option("--shard-format", help="Shards of -o DIR/.")]
ShardSizeOption = Annotated[float, typer.Option("--shard-size", help="Most MB of stored values per unit (a shard, or a Parquet row group; at most 512 texts or 256 boxes, so work spreads over workers); memory holds about one per worker.")]
EngineOption = Annotated[
    Engine, typer.Option("--engine", help="local (this process) or ray (one streaming Ray Data pipeline; pip install 'vizcli[ray]').")
]
RayAddressOption = Annotated[
    str | None,
    typer.Option("--ray-address", help="--engine ray: join this Ray cluster (auto = the one RAY_ADDRESS names); default: start a local Ray."),
]
RayTimeoutOption = Annotated[
    float, typer.Option("--ray-timeout", help="--ray-address: seconds to join the cluster before giving up.")
]
OnErrorOption = Annotated[
    OnError, typer.Option("--on-error", help="A bad row: skip it (recorded in problems.jsonl; the run exits 3), ignore (skip it, exit 0), or stop.")
]

DEFAULT_SAMPLE = 8  # vizcli.datasets.verify's default, repeated here so --help imports nothing heavy
SampleOption = Annotated[int, typer.Option("--sample", help="verify: how many stored items (images, texts) to recompute.")]
ToleranceOption = Annotated[float | None, typer.Option("--tolerance", help="verify: the largest difference accepted (default by "
                                                       "dtype/precision: 1e-4 for float32).")]
MAX_WORKERS = 4096


def dataset_settings(output: str, resume: bool, shard: str | None, shard_format: ShardFormat, shard_size: float,
                     engine: Engine, workers: int | None, ray_address: str | None, on_error: OnError, threads: int | None,
                     quiet: bool, ray_timeout: float = 60.0) -> DatasetSettings:
    """Every dataset flag checked, before any model loads."""
    from vizcli.datasets.keys import Shard
    from vizcli.datasets.sink import check_output, is_table_output

    if not is_table_output(output):
        raise BadInput("a dataset run writes rows: give -o out.parquet or -o DIR/ (a folder of shards)", parameter="output", value=output)
    if not 0.01 <= shard_size <= 65536:
        raise BadInput("use 0.01..65536 (MB)", parameter="shard_size", value=shard_size)
    if engine is Engine.local and ray_address is not None:
        raise BadInput("only for engine='ray' (the Ray cluster to join)", parameter="ray_address", value=ray_address)
    if not 1 <= ray_timeout <= 86400:
        raise BadInput("use 1..86400 seconds", parameter="ray_timeout", value=ray_timeout)
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
                           on_error=on_error.value, quiet=quiet)


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


def verify_command(outputs: list[str], verify: Any) -> None:
    """``vizcli roi|embed verify OUTPUT``: the report on stdout; ``RunFailure`` (exit 1) unless reproduced."""
    from vizcli.common.errors import RunFailure

    if len(outputs) != 1:
        raise BadInput(f"verify takes one output (a Parquet file or a shard folder), got {len(outputs)}")
    verification = verify(outputs[0])
    print("\n".join(verification.lines()))
    if not verification.ok:
        worst = max(verification.differences.values(), default=0.0)
        reason = verification.mismatches[0] if verification.mismatches else f"largest difference {worst:.3g}"
        raise RunFailure(f"not reproduced: {reason} (tolerance {verification.tolerance:g})", parameter="output",
                         value=outputs[0])
