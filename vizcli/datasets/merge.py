"""``vizcli roi|embed merge A B … -o OUT``: finished outputs joined into one, after checking them.

Each input must be whole: a Parquet file written by the same command, or a shard folder whose
manifest is complete, whose shards all match their sha256, and whose row counts add up. Their
settings must agree (except the shard) and no row key may repeat.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

from vizcli.common.errors import BadInput
from vizcli.common.files import checked_os_call, sha256_of
from vizcli.datasets.keys import UniqueKeys
from vizcli.datasets.sink import PARTS_SUFFIX, TableSink, is_table_output
from vizcli.datasets.units import MANIFEST, read_manifest, read_unit, read_unit_metadata


def merge_command(inputs: list[str], output: str | None, command: str, schema_name: str, key_columns: tuple[str, ...],
                  shard_format: str) -> tuple[str, int]:
    """``vizcli COMMAND merge A B ... -o OUT``: check the arguments, then ``merge_outputs``."""
    from vizcli.common.files import check_not_an_input

    if not inputs:
        raise BadInput(f"vizcli {command} merge A B ... -o out.parquet: give the finished outputs to join")
    if not output or not is_table_output(output):
        raise BadInput(f"vizcli {command} merge A B ... -o out.parquet (or -o DIR/): give where the joined rows go")
    check_not_an_input(output, inputs)
    from vizcli.datasets.sink import check_output

    check_output(output)
    return merge_outputs(inputs, output, key_columns, shard_format, ignore=("shard", "versions", "input", "rows"), schema_name=schema_name)


def read_output(path: str, schema_name: str | None = None) -> tuple[Any, dict[str, Any], list[Path]]:
    """A finished output's schema, recorded settings and units, after checking it is whole:
    a Parquet file, or a folder whose manifest is complete and whose shards match their sha256."""
    place = Path(path)
    if place.is_dir():
        manifest_path = place / MANIFEST
        if not manifest_path.is_file():
            raise BadInput(f"a folder without {MANIFEST}; give finished outputs", parameter="inputs", value=path)
        manifest = read_manifest(manifest_path, "inputs", path)
        if not manifest.get("complete"):
            raise BadInput("is incomplete (an interrupted run); finish it with resume=True first", parameter="inputs", value=path)
        units = []
        for shard in manifest["shards"]:
            unit = place / shard["file"]
            if Path(shard["file"]).name != shard["file"] or not unit.is_file():
                raise BadInput(f"lists {shard['file']}, which is missing", parameter="inputs", value=path)
            digest: str = checked_os_call(partial(sha256_of, unit), "inputs", path)
            if digest != shard["sha256"]:
                raise BadInput(f"{shard['file']} does not match its sha256 in {MANIFEST}; it changed or is damaged",
                               parameter="inputs", value=path)
            units.append(unit)
        on_disk = {unit.name for unit in place.glob("part-*") if unit.is_file()}
        unlisted = sorted(on_disk - {unit.name for unit in units})
        if unlisted:
            raise BadInput(f"holds {unlisted[0]}, which {MANIFEST} does not list; the manifest lost an entry: rerun "
                           "the folder's run with resume=True", parameter="inputs", value=path)
        if sum(int(shard["rows"]) for shard in manifest["shards"]) != manifest.get("rows"):
            raise BadInput(f"{MANIFEST}'s row total does not add up; rerun the folder's run with resume=True", parameter="inputs", value=path)
        metadata = dict(manifest.get("metadata", {}))
        _check_schema(metadata, schema_name, path)
        first = read_unit(units[0], path, "inputs") if units else None
        return (first.schema if first is not None else None), metadata, units
    if not place.is_file():
        parts = Path(path + PARTS_SUFFIX)
        hint = "; it was interrupted: finish it with resume=True" if parts.is_dir() else ""
        raise BadInput(f"no such output{hint}", parameter="inputs", value=path)
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(place)
    except (pa.ArrowException, OSError, ValueError):
        raise BadInput("is not a Parquet file written by vizcli; give finished outputs", parameter="inputs", value=path) from None
    metadata = read_unit_metadata(place, path, "inputs")
    _check_schema(metadata, schema_name, path)
    return schema, metadata, [place]


def _check_schema(metadata: dict[str, Any], schema_name: str | None, path: str) -> None:
    if schema_name is not None and metadata.get("schema") != schema_name:
        raise BadInput(f"holds {metadata.get('schema') or 'rows of no vizcli schema'}, not {schema_name}; merge outputs of "
                       "the same command", parameter="inputs", value=path)


def merge_outputs(inputs: list[str], output: str, key_columns: tuple[str, ...], shard_format: str = "safetensors",
                  ignore: tuple[str, ...] = ("shard", "rows"), schema_name: str | None = None) -> tuple[str, int]:
    """Join finished outputs into ``output`` (Parquet or a shard folder). Their settings must agree
    (except ``ignore``) and no row key may repeat. Returns (path, rows)."""
    if not inputs:
        raise BadInput("give the outputs to merge", parameter="inputs")
    read = [(path, *read_output(path, schema_name)) for path in inputs]
    base_path, _, base, _ = read[0]
    wanted = {k: v for k, v in base.items() if k not in ignore}
    for path, _, metadata, _ in read:
        other = {k: v for k, v in metadata.items() if k not in ignore}
        if other != wanted:
            differing = sorted(k for k in set(other) | set(wanted) if other.get(k) != wanted.get(k))
            raise BadInput(f"was made with other settings than {base_path} ({', '.join(differing)} differ)",
                           parameter="inputs", value=path)
    schema = next((item[1] for item in read if item[1] is not None), None)
    if schema is None:
        raise BadInput("every input holds 0 rows; there is nothing to merge", parameter="inputs", value=inputs[0])
    recorded_inputs = [entry for _, _, metadata, _ in read for entry in metadata.get("inputs") or [metadata.get("input")] if entry]
    if recorded_inputs and "input" in ignore:  # where each part read its texts: verify reads them again from these
        wanted["inputs"] = [dict(entry) for entry in {json.dumps(entry, sort_keys=True): entry for entry in recorded_inputs}.values()]
    shapes = {f"features_{op}": tuple(wanted["feature_shape"]) for op in wanted.get("ops", [])} if "feature_shape" in wanted else {}
    shapes.update({"features_" + op.replace("-", "_"): tuple(shape) for op, shape in wanted.get("feature_shapes", {}).items()})
    _refuse_earlier_units(output)
    sink = TableSink(output, schema.remove_metadata(), wanted, key_columns[0], shard_format, array_shapes=shapes)
    seen = UniqueKeys()
    position = 0
    try:
        for path, _, _, units in read:
            for table in (part for unit in units for part in _parts(unit, path)):
                keys = [json.dumps(key, default=str) for key in zip(*(table.column(name).to_pylist() for name in key_columns))]
                repeated = seen.add(keys, lambda: _keys_written(sink, key_columns))
                if repeated is not None:
                    shown = ", ".join(str(part) for part in json.loads(repeated))
                    raise BadInput(f"row ({shown}) appears in more than one input; merge each shard once", parameter="inputs", value=path)
                sink.write(table, position)
                position += table.num_rows
        return sink.finish(), sink.rows_written
    except BaseException:
        sink.discard(set())
        raise


def _refuse_earlier_units(output: str) -> None:
    """A merge writes a new output: finished units of an earlier run where it would write are refused
    here, before the sink would advise ``resume=True`` (which merge does not take)."""
    from vizcli.datasets.sink import is_directory_output

    folder = Path(output) if is_directory_output(output) else Path(output + PARTS_SUFFIX)
    if folder.is_dir() and any(path.is_file() for path in folder.glob("part-*")):
        raise BadInput(f"{folder} holds finished units of an earlier run; a merge writes a new output: write elsewhere, "
                       "or remove them", parameter="output", value=output)


def _keys_written(sink: TableSink, key_columns: tuple[str, ...]) -> Any:
    for unit in sink.units:
        table = read_unit(unit)
        yield from (json.dumps(key, default=str) for key in zip(*(table.column(name).to_pylist() for name in key_columns)))


def _parts(unit: Path, output: str) -> Any:
    """A unit's rows a row group at a time (a joined Parquet file holds one row group per unit of its run), so merging
    a large file holds one unit's rows in memory, not the file's."""
    if unit.suffix != ".parquet":
        yield read_unit(unit, output, "inputs")
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        handle = pq.ParquetFile(unit)
        for group in range(handle.num_row_groups):
            yield handle.read_row_group(group)
    except (pa.ArrowException, OSError, ValueError):
        yield read_unit(unit, output, "inputs")  # its own one-line error for a damaged file
