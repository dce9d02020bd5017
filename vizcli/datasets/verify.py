"""``vizcli roi verify`` / ``vizcli embed verify``: recompute a sample of a finished output's rows
from the settings it records, and report the largest difference.

The output is read as ``merge`` reads it (whole: a Parquet file, or a shard folder whose shards
match their sha256). ``sample`` items (images, texts), chosen with a seeded generator, are read
back with all their rows; the command's ``recompute`` builds its worker from the recorded
settings and computes those rows again; rows are matched by their key columns and every vector
column is compared. Exit 0 when every difference is within the tolerance, 1 otherwise.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vizcli.common.errors import BadInput

DEFAULT_SAMPLE = 8


@dataclass
class Verification:
    """What ``verify_output`` found: per compared column its largest absolute difference."""

    output: str
    items: int  # sampled items (images, texts)
    rows: int  # stored rows of those items
    differences: dict[str, float]
    tolerance: float
    mismatches: list[str] = field(default_factory=list)  # rows missing on one side, settings that differ

    @property
    def ok(self) -> bool:
        return not self.mismatches and all(value <= self.tolerance for value in self.differences.values())

    def lines(self) -> list[str]:
        worst = max(self.differences.values(), default=0.0)
        lines = [f"{self.output}: recomputed {self.rows:,} rows of {self.items:,} sampled items from the recorded settings"]
        lines += [f"  {name}: largest difference {value:.3g}" for name, value in self.differences.items()]
        lines += [f"  mismatch: {text}" for text in self.mismatches]
        verdict = "reproduced" if self.ok else "NOT reproduced"
        lines.append(f"{verdict}: largest difference {worst:.3g} (tolerance {self.tolerance:g})")
        return lines


def sample_keys(keys: list[str], sample: int, seed: int) -> list[str]:
    """``sample`` distinct keys (all when fewer), chosen by a generator seeded with ``seed``, in stored order."""
    if sample < 1:
        raise BadInput("use at least 1", parameter="sample", value=sample)
    distinct = list(dict.fromkeys(keys))
    if len(distinct) <= sample:
        return distinct
    chosen = set(random.Random(seed).sample(distinct, sample))
    return [key for key in distinct if key in chosen]


def stored_rows(path: str, schema_name: str, key: str, sample: int, seed: int) -> tuple[Any, dict[str, Any], list[str]]:
    """The rows of ``sample`` items of the output at ``path``, its metadata, and the sampled keys."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from vizcli.datasets.merge import read_output
    from vizcli.datasets.units import read_unit

    _, metadata, units = read_output(path, schema_name)
    tables = [read_unit(unit, path, "output") for unit in units]
    tables = [table for table in tables if table.num_rows]
    if not tables:
        raise BadInput("holds 0 rows; there is nothing to verify", parameter="output", value=path)
    keys = [str(value) for table in tables for value in table.column(key).to_pylist()]
    chosen = sample_keys(keys, sample, seed)
    wanted = pa.array(chosen, type=pa.string())
    rows = pa.concat_tables([table.filter(pc.is_in(table.column(key).cast(pa.string()), value_set=wanted)) for table in tables])
    return rows, metadata, chosen


def compare_rows(stored: Any, recomputed: Any, key_columns: tuple[str, ...], vector_columns: list[str]) -> tuple[dict[str, float], list[str]]:
    """Per vector column the largest absolute difference between rows of equal keys, and the keys
    found on one side only."""
    import numpy as np

    def by_key(table: Any) -> dict[tuple[str, ...], int]:
        columns = [table.column(name).to_pylist() for name in key_columns]
        return {tuple(str(value) for value in values): number for number, values in enumerate(zip(*columns))}

    left, right = by_key(stored), by_key(recomputed)
    mismatches = [f"row {'/'.join(k)} is stored but was not recomputed" for k in left if k not in right]
    mismatches += [f"row {'/'.join(k)} was recomputed but is not stored" for k in right if k not in left]
    common = [k for k in left if k in right]
    differences: dict[str, float] = {}
    for name in vector_columns:
        if name not in stored.schema.names or name not in recomputed.schema.names:
            mismatches.append(f"column {name} is missing from the {'stored' if name not in stored.schema.names else 'recomputed'} rows")
            continue
        a = stored.column(name).take([left[k] for k in common]).to_pylist()
        b = recomputed.column(name).take([right[k] for k in common]).to_pylist()
        if not common:
            differences[name] = 0.0
            continue
        first = np.asarray([np.nan if v is None else v for v in a], dtype=np.float64)
        second = np.asarray([np.nan if v is None else v for v in b], dtype=np.float64)
        gap = np.abs(first - second)
        both_missing = np.isnan(first) & np.isnan(second)
        gap[both_missing] = 0.0
        differences[name] = float(np.nanmax(gap)) if not np.isnan(gap).any() else float("inf")
    return differences, mismatches


def verify_output(path: str, schema_name: str, key: str, key_columns: tuple[str, ...], vector_columns: Callable[[Any], list[str]],
                  recompute: Callable[[Any, dict[str, Any]], tuple[Any, list[str]]], sample: int = DEFAULT_SAMPLE, seed: int = 0,
                  tolerance: float | None = None, default_tolerance: Callable[[dict[str, Any]], float] = lambda metadata: 1e-4,
                  ) -> Verification:
    """Recompute ``sample`` items of the output at ``path``: ``recompute(rows, metadata)`` gives the
    rows again (and any mismatch it found itself, such as other weights); compared on
    ``vector_columns(schema)``."""
    if tolerance is not None and not tolerance >= 0:
        raise BadInput("use a difference of at least 0", parameter="tolerance", value=tolerance)
    stored, metadata, chosen = stored_rows(path, schema_name, key, sample, seed)
    recomputed, found = recompute(stored, metadata)
    differences, mismatches = compare_rows(stored, recomputed, key_columns, vector_columns(stored.schema))
    limit = tolerance if tolerance is not None else default_tolerance(metadata)
    return Verification(path, len(chosen), stored.num_rows, differences, limit, [*found, *mismatches])
