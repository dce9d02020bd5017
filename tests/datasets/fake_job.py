"""A numpy-only dataset job for the engine's tests: no model, so the engine's own behaviour is fast to test.

Each item ``k<i>`` becomes the row ``(id, index, vector = [i·scale, i·scale + 1, i·scale + 2, i·scale + 3])``,
so every value can be checked exactly. ``Squares`` can raise on one id (a poison row that raises),
kill its process on one id (a poison row that crashes its worker), sleep per batch and per item (a model's cost), log its builds, and record
the value ``ENV_NAME`` has in its process (``env_log``: the job's ``actor_env`` reaching the Ray workers).

Run as ``python -m tests.datasets.fake_job OUT COUNT [--engine ray] …`` for the tests that signal a process.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from vizcli.common import signals
from vizcli.common.errors import BadInput, Interrupted, VizcliError, one_line
from vizcli.datasets.keys import Shard
from vizcli.datasets.run import DatasetJob, DatasetSettings, Item, ItemsPiece, run_dataset

SCHEMA = pa.schema([pa.field("id", pa.string()), pa.field("index", pa.int64()), pa.field("vector", pa.list_(pa.float32(), 4))])
ROW_BYTES = 16
ENV_NAME = "VIZCLI_FAKE_ACTOR_ENV"


class Squares:
    def __init__(self, scale: float = 1.0, raise_on: str | None = None, crash_on: str | None = None,
                 crash_once_marker: str | None = None, delay: float = 0.0, log: str | None = None,
                 env_log: str | None = None, item_delay: float = 0.0) -> None:
        self.scale, self.raise_on, self.crash_on, self.delay, self.item_delay = scale, raise_on, crash_on, delay, item_delay
        self.crash_once_marker = crash_once_marker
        if log:
            with open(log, "a", encoding="utf-8") as handle:
                handle.write(f"{os.getpid()}\n")
        if env_log:
            with open(env_log, "a", encoding="utf-8") as handle:
                handle.write(f"{os.environ.get(ENV_NAME, '<unset>')}\n")

    def __call__(self, batch: dict) -> dict:
        ids = [str(key) for key in batch["id"]]
        if self.raise_on in ids:
            raise ValueError(f"cannot compute {self.raise_on}")
        if self.crash_on in ids:
            os._exit(3)  # noqa: SLF001 (a worker process that dies, as a segfault would)
        if self.crash_once_marker and not Path(self.crash_once_marker).exists():
            Path(self.crash_once_marker).write_text("crashed once")
            os._exit(4)
        if self.delay or self.item_delay:  # a model's cost: per batch, and per item
            time.sleep(self.delay + self.item_delay * len(ids))
        index = np.asarray(batch["index"], dtype=np.int64)
        return {"id": ids, "index": index, "vector": expected_vectors(index, self.scale)}


def expected_vectors(index: np.ndarray, scale: float = 1.0) -> np.ndarray:
    return (np.asarray(index)[:, None] * scale + np.arange(4)[None, :]).astype(np.float32)


def check_every_row_once(path, count: int, scale: float = 1.0) -> None:
    """The Parquet file at ``path`` holds ``k0 … k{count-1}`` once each, in input order, with their exact vectors."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    ids = table.column("id").to_pylist()
    assert sorted(ids, key=lambda key: int(key[1:])) == [f"k{i}" for i in range(count)]
    assert ids == sorted(ids, key=lambda key: int(key[1:]))  # joined in input order, whatever order units came in
    index = np.array(table.column("index").to_pylist())
    np.testing.assert_array_equal(np.array(table.column("vector").to_pylist(), dtype=np.float32),
                                  expected_vectors(index, scale))


def to_batch(values: list) -> dict:
    return {"id": [value[0] for value in values], "index": [value[1] for value in values]}


def to_rows(result: dict, schema: pa.Schema) -> pa.Table:
    flat = np.ascontiguousarray(result["vector"], dtype=np.float32).reshape(-1)
    return pa.Table.from_arrays([pa.array(list(result["id"]), pa.string()), pa.array(result["index"], pa.int64()),
                                 pa.FixedSizeListArray.from_arrays(pa.array(flat), 4)], schema=schema)


def job(actor_env: dict[str, str] | None = None, **kwargs) -> DatasetJob:
    return DatasetJob("fake", "id", SCHEMA, {"schema": "fake/1", "scale": kwargs.get("scale", 1.0)}, Squares, kwargs,
                      to_batch, to_rows, row_bytes=ROW_BYTES, actor_env=dict(actor_env or {}))


def pieces(count: int, per_piece: int = 100, keys: list[str] | None = None) -> list[ItemsPiece]:
    keys = keys or [f"k{i}" for i in range(count)]
    items = [Item(key, i, 1, (key, i)) for i, key in enumerate(keys)]
    return [ItemsPiece(tuple(items[start:start + per_piece])) for start in range(0, len(items), per_piece)]


def settings(output: str, rows_per_unit: int, **kwargs) -> DatasetSettings:
    return DatasetSettings(output, unit_megabytes=rows_per_unit * ROW_BYTES / (1 << 20), **kwargs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("output")
    parser.add_argument("count", type=int)
    parser.add_argument("--rows-per-unit", type=int, default=10)
    parser.add_argument("--engine", default="local")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--ray-address")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--item-delay", type=float, default=0.0)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--shard")
    parser.add_argument("--log")
    parser.add_argument("--raise-on")
    parser.add_argument("--crash-on")
    parser.add_argument("--crash-once-marker")
    parser.add_argument("--env-log")
    parser.add_argument("--actor-env", help=f"the value the job asks for {ENV_NAME} in its workers")
    parser.add_argument("--commit-seconds", type=float, default=30.0)
    parser.add_argument("--stall-timeout", type=float, default=600.0)
    arguments = parser.parse_args()
    made = job(delay=arguments.delay, item_delay=arguments.item_delay, log=arguments.log, raise_on=arguments.raise_on, crash_on=arguments.crash_on,
               crash_once_marker=arguments.crash_once_marker, env_log=arguments.env_log,
               actor_env={ENV_NAME: arguments.actor_env} if arguments.actor_env else None)
    signals.install()
    try:
        summary = run_dataset(made, pieces(arguments.count),
                              settings(arguments.output, arguments.rows_per_unit, engine=arguments.engine, workers=arguments.workers,
                                       ray_address=arguments.ray_address, resume=arguments.resume,
                                       shard=Shard.parse(arguments.shard), quiet=True, commit_seconds=arguments.commit_seconds,
                                       stall_timeout=arguments.stall_timeout))
    except (VizcliError, Interrupted) as error:  # as vizcli's error boundary does: one line, the exit status
        print(f"Error: {one_line(error.detail)}", file=sys.stderr, flush=True)
        raise SystemExit(128 + error.signal_number if isinstance(error, Interrupted) else 2 if isinstance(error, BadInput) else 1) from None
    print(json.dumps({"driver_env": os.environ.get(ENV_NAME), "rows": summary.rows, "skipped": summary.skipped, "builds": summary.builds, "problems": summary.problems}),
          flush=True)


if __name__ == "__main__":
    main()
