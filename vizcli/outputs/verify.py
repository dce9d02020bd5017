"""``vizcli verify OUTPUT``: recompute a seeded sample of an output's rows from the settings it records.

1. The output is opened and its kind read from it; its row total is cross-checked (a shard folder's
   manifest against its shards and their sha256, a Parquet file's recorded total against its footer).
2. The recorded settings are validated (version, names, types) before any worker is rebuilt.
3. ``sample`` items (images, texts), chosen by a seeded generator from the key column alone, are read
   back with all their rows, a unit or row group at a time: memory follows the sample, not the output.
4. The kind's worker computes those items again; rows are matched by the kind's merge keys, and every
   stored column is compared: vectors and scores within the tolerance of the recorded compute dtype,
   everything else exactly. Rows on one side only are mismatches.
5. Files other commands built beside the output (a ``vizcli search`` index) must still match it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from vizcli.common.errors import BadInput
from vizcli.datasets.kinds import OutputKind

DEFAULT_SAMPLE = 8


@dataclass
class Verification:
    """What ``verify_output`` found: per compared numeric column its largest absolute difference."""

    output: str
    kind: str
    items: int  # sampled items (images, texts)
    rows: int  # stored rows of those items
    differences: dict[str, float]
    tolerance: float
    mismatches: list[str] = field(default_factory=list)  # rows on one side only, columns that differ, settings

    @property
    def ok(self) -> bool:
        return not self.mismatches and all(value <= self.tolerance for value in self.differences.values())

    def lines(self) -> list[str]:
        worst = max(self.differences.values(), default=0.0)
        items = "1 sampled item" if self.items == 1 else f"{self.items:,} sampled items"
        rows = "1 row" if self.rows == 1 else f"{self.rows:,} rows"
        lines = [f"{self.output}: {self.kind} output; recomputed {rows} of {items} from the recorded settings"]
        lines += [f"  {name}: largest difference {value:.3g}" for name, value in self.differences.items()]
        lines += [f"  mismatch: {text}" for text in self.mismatches]
        verdict = "reproduced" if self.ok else "NOT reproduced"
        lines.append(f"{verdict}: largest difference {worst:.3g} (tolerance {self.tolerance:g})")
        return lines


def verify_output(path: str, sample: int = DEFAULT_SAMPLE, seed: int = 0, tolerance: float | None = None,
                  device: str = "auto", root: str | None = None) -> Verification:
    """Recompute ``sample`` items of the output at ``path`` and compare every stored column (see the module docstring)."""
    from vizcli.outputs.reading import about_stored, open_with_kind

    if tolerance is not None and not tolerance >= 0:
        raise BadInput("use a difference of at least 0", parameter="tolerance", value=tolerance)
    if sample < 1:
        raise BadInput("use at least 1", parameter="sample", value=sample)
    with about_stored():
        stored, kind, rows_of = open_with_kind(path)
        mismatches = check_totals(stored)
        settings = kind.check_settings(stored.metadata, path)
        chosen_rows, chosen = sampled_rows(rows_of, kind.key, sample, seed, path)
        recomputed, found = kind.function("recompute")(chosen_rows, stored.metadata, settings, {"device": device, "root": root})
        if stored.form != "file":
            from vizcli.outputs.registry import companion_problems

            found += companion_problems(kind, path)  # a search index built beside it must still match it
    differences, differing = compare_rows(chosen_rows, recomputed, kind)
    limit = tolerance if tolerance is not None else float(kind.function("tolerance")(stored.metadata))
    return Verification(path, kind.command, len(chosen), chosen_rows.num_rows, differences, limit, [*mismatches, *found, *differing])


def check_totals(stored: Any) -> list[str]:
    """Row totals that do not add up (a deleted or added row): the manifest or the recorded total against the data."""
    from functools import partial
    from pathlib import Path

    from vizcli.common.files import checked_os_call, sha256_of

    if stored.form == "file":
        return []
    if stored.form == "parquet":
        import pyarrow.parquet as pq

        footer = pq.ParquetFile(stored.units[0]).metadata.num_rows
        recorded = stored.metadata.get("rows")
        if isinstance(recorded, int) and recorded != footer:
            return [f"the file holds {footer:,} rows but its run recorded {recorded:,}: rows were added or deleted"]
        return []
    if not stored.complete:
        raise BadInput("is incomplete (an interrupted run); finish it with --resume first", parameter="stored", value=stored.path)
    from vizcli.datasets.units import MANIFEST, read_manifest

    manifest = read_manifest(Path(stored.path) / MANIFEST, "stored", stored.path)
    found = []
    for shard in manifest["shards"]:
        unit = Path(stored.path) / shard["file"]
        if checked_os_call(partial(sha256_of, unit), "stored", stored.path) != shard["sha256"]:
            found.append(f"{shard['file']} does not match its sha256 in {MANIFEST}: it changed after the run")
    listed = sum(int(shard["rows"]) for shard in manifest["shards"])
    if listed != manifest.get("rows"):
        found.append(f"{MANIFEST} lists {listed:,} rows in its shards but {manifest.get('rows')} in all: rows were added or deleted")
    return found


def sample_keys(keys: list[str], sample: int, seed: int) -> list[str]:
    """``sample`` distinct keys (all when fewer), chosen by a generator seeded with ``seed``, in stored order."""
    distinct = list(dict.fromkeys(keys))
    if len(distinct) <= sample:
        return distinct
    chosen = set(random.Random(seed).sample(distinct, sample))
    return [key for key in distinct if key in chosen]


def sampled_rows(rows_of: Any, key: str, sample: int, seed: int, path: str) -> tuple[Any, list[str]]:
    """Every row of ``sample`` items: the key column read first, then only the chosen items' rows."""
    import pyarrow as pa
    import pyarrow.compute as pc

    keys = [str(value) for batch in rows_of([key]) for value in batch.column(key).to_pylist()]
    if not keys:
        raise BadInput("holds 0 rows; there is nothing to verify", parameter="stored", value=path)
    chosen = sample_keys(keys, sample, seed)
    wanted = pa.array(chosen, type=pa.string())
    parts = [batch.filter(pc.is_in(batch.column(key).cast(pa.string()), value_set=wanted)) for batch in rows_of(None)]
    return pa.concat_tables([part for part in parts if part.num_rows] or parts[:1]), chosen


def compare_rows(stored: Any, recomputed: Any, kind: OutputKind) -> tuple[dict[str, float], list[str]]:
    """Per numeric column the largest absolute difference between rows of equal keys; every other column exactly;
    and the keys found on one side only."""
    def by_key(table: Any) -> dict[tuple[str, ...], int]:
        columns = [table.column(name).to_pylist() for name in kind.merge_keys]
        return {tuple(str(value) for value in values): number for number, values in enumerate(zip(*columns))}

    left, right = by_key(stored), by_key(recomputed)
    mismatches = [f"row {'/'.join(k)} is stored but was not recomputed" for k in left if k not in right]
    mismatches += [f"row {'/'.join(k)} was recomputed but is not stored: a row was deleted" for k in right if k not in left]
    if len(left) < stored.num_rows:
        mismatches.append(f"{stored.num_rows - len(left)} stored rows repeat a key ({', '.join(kind.merge_keys)})")
    common = [k for k in left if k in right]
    differences: dict[str, float] = {}
    for name in stored.schema.names:
        if name in kind.merge_keys or name in kind.derived_columns:
            continue
        if name not in recomputed.schema.names:
            mismatches.append(f"column {name} is stored but the recorded settings do not compute it")
            continue
        first = stored.column(name).take([left[k] for k in common])
        second = recomputed.column(name).take([right[k] for k in common])
        if _is_numeric(stored.schema.field(name).type):
            differences[name] = _largest_difference(first, second)
        else:
            mismatches.extend(_exact_differences(name, first, second, common))
    return differences, mismatches


def _is_numeric(arrow_type: Any) -> bool:
    import pyarrow as pa

    while pa.types.is_list(arrow_type) or pa.types.is_fixed_size_list(arrow_type) or pa.types.is_large_list(arrow_type):
        arrow_type = arrow_type.value_type
    return bool(pa.types.is_floating(arrow_type))


def _largest_difference(first: Any, second: Any) -> float:
    """The largest |a - b| over the values; a null (or NaN) on one side only is an infinite difference."""
    import numpy as np

    def values(column: Any) -> Any:
        rows = column.to_pylist()
        width = max((len(row) for row in rows if isinstance(row, list)), default=1)
        out = np.full((len(rows), width), np.nan)
        for number, row in enumerate(rows):
            if row is None:
                continue
            flat = row if isinstance(row, list) else [row]
            out[number, :len(flat)] = [np.nan if value is None else value for value in flat]
        return out

    a, b = values(first), values(second)
    if a.size == 0:
        return 0.0
    gap = np.abs(a - b)
    gap[np.isnan(a) & np.isnan(b)] = 0.0
    return float("inf") if np.isnan(gap).any() else float(gap.max())


def _exact_differences(name: str, first: Any, second: Any, keys: list[tuple[str, ...]]) -> list[str]:
    left, right = first.to_pylist(), second.to_pylist()
    differing = [number for number, (a, b) in enumerate(zip(left, right)) if a != b]
    if not differing:
        return []
    number = differing[0]
    rows = "1 row" if len(differing) == 1 else f"{len(differing):,} rows"
    return [f"column {name} differs in {rows} (first: row {'/'.join(keys[number])}: {str(left[number])[:40]!r} stored, "
            f"{str(right[number])[:40]!r} recomputed)"]
