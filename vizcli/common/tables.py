"""Row tables written in units that survive being stopped: one Parquet file, or a folder of shards.

``-o out.parquet``: each unit is a complete Parquet file in ``out.parquet.parts/`` (written
beside, then renamed in, so a unit is either whole or absent — whatever kills the process); when
the run ends they are joined into ``out.parquet`` (one row group per unit) and the folder goes.
``-o DIR/``: each unit is a shard ``part-00000.safetensors`` (or ``.npz``), renamed in whole, and
``manifest.json`` lists every shard with its rows and sha256; ``complete`` turns true at the end.

A rerun with ``resume=True`` reads the keys already on disk (from the units themselves, not from
a counter) so the caller skips them; the settings recorded in the units must equal the new run's.
``merge_outputs`` joins finished outputs after checking their manifests, settings and keys.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vizcli.common.errors import BadInput
from vizcli.common.files import sha256_of
from vizcli.common.unique_keys import KeyIndex

MANIFEST = "manifest.json"
PARTS_SUFFIX = ".parts"
SHARD_FORMATS = ("safetensors", "npz")
METADATA_KEY = b"vizcli"


def is_directory_output(output: str) -> bool:
    from vizcli.common.files import is_folder

    return output.endswith(("/", os.sep)) or is_folder(output)


def is_table_output(output: str) -> bool:
    """Whether ``-o`` asks for a dataset output: a ``.parquet`` file or a shard folder."""
    return output.lower().endswith(".parquet") or is_directory_output(output)


def merge_command(inputs: list[str], output: str | None, command: str, key_columns: tuple[str, ...],
                  shard_format: str) -> tuple[str, int]:
    """``vizcli COMMAND merge A B ... -o OUT``: check the arguments, then ``merge_outputs``."""
    from vizcli.common.files import check_not_an_input

    if not output or not is_table_output(output):
        raise BadInput(f"vizcli {command} merge A B ... -o out.parquet (or -o DIR/): give where the joined rows go")
    check_not_an_input(output, inputs)
    return merge_outputs(inputs, output, key_columns, shard_format, ignore=("shard", "versions"))


def check_output(output: str) -> None:
    """Exit 2 before any model work when ``output`` (a Parquet file, or a shard folder) cannot be
    written: a missing parent folder, no permission, a file where a folder should be."""
    from vizcli.common.files import check_writable

    if is_directory_output(output):
        folder = Path(output)
        if folder.exists() and not folder.is_dir():
            raise BadInput("is a file; a shard folder is a folder (or write -o out.parquet)", parameter="output", value=output)
        check_writable(str(folder / MANIFEST) if folder.is_dir() else output.rstrip("/" + os.sep))
        return
    check_writable(output)


def _fsync_directory(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _replace_durably(temporary: Path, target: Path) -> None:
    with open(temporary, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, target)
    _fsync_directory(target.parent)


class TableSink:
    """Where a dataset run's rows go, one unit at a time (see the module's docstring).

    ``metadata`` is recorded with every unit; ``key`` names the column whose values identify
    finished work; ``array_shapes`` gives the per-row shape of fixed-size-list columns in shards
    (``{"features_align": (256, 7, 7)}``).
    """

    def __init__(self, output: str, schema: Any, metadata: dict[str, Any], key: str,
                 shard_format: str = "safetensors", resume: bool = False,
                 array_shapes: dict[str, tuple[int, ...]] | None = None) -> None:
        if shard_format not in SHARD_FORMATS:
            raise BadInput(f"use one of {', '.join(SHARD_FORMATS)}", parameter="shard_format", value=shard_format)
        self.output, self.key, self.shard_format = output, key, shard_format
        self.metadata = metadata
        self.schema = schema.with_metadata({METADATA_KEY: json.dumps(metadata, sort_keys=True).encode()})
        self.array_shapes = array_shapes or {}
        self.directory = is_directory_output(output)
        self.folder = Path(output) if self.directory else Path(output + PARTS_SUFFIX)
        self.units: list[Path] = []
        self.rows_written = 0
        self._prepare(resume)

    # ------------------------------------------------------------ starting or resuming

    def _prepare(self, resume: bool) -> None:
        existing = self._existing_units()
        final = Path(self.output)
        if not resume:
            if existing:
                raise BadInput(f"holds {len(existing)} finished units of an earlier run; add --resume to continue it, "
                               "or write elsewhere", parameter="output", value=self.output)
            self.folder.mkdir(parents=True, exist_ok=True)
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        for stale in self.folder.glob(".*.tmp"):  # a unit a SIGKILL caught half-written: never recorded, redone
            stale.unlink(missing_ok=True)
        if not self.directory and final.is_file() and not existing:
            shutil.copyfile(final, self.folder / "part-00000.parquet")  # a finished file: continue from it
            existing = self._existing_units()
        for unit in existing:
            recorded = read_unit_metadata(unit)
            if recorded != self.metadata:
                differing = sorted(k for k in set(recorded) | set(self.metadata) if recorded.get(k) != self.metadata.get(k))
                raise BadInput(f"was written with other settings ({', '.join(differing)} differ); resume with the same "
                               "options, or write elsewhere", parameter="output", value=self.output)
        self.units = existing

    def _existing_units(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        suffix = f".{self.shard_format}" if self.directory else ".parquet"
        return sorted(path for path in self.folder.glob(f"part-*{suffix}") if path.is_file())

    def done_keys(self) -> KeyIndex:
        """The ``key`` values of every unit on disk, as an exact and compact ``in`` index."""
        return KeyIndex(self._unit_keys())

    def keys(self) -> Iterator[str]:
        """The ``key`` values of every unit on disk, unit by unit."""
        for keys in self._unit_keys():
            yield from keys

    def _unit_keys(self) -> Iterator[list[str]]:
        for unit in self.units:
            if unit.suffix == ".parquet":
                import pyarrow.parquet as pq

                column = pq.read_table(unit, columns=[self.key]).column(self.key)
            else:
                column = read_unit(unit).column(self.key)
            yield [str(value) for value in column.to_pylist()]

    # ------------------------------------------------------------ writing

    def write(self, table: Any) -> None:
        """Write ``table`` as one unit: whole or not at all, then recorded."""
        if table.num_rows == 0:
            return
        table = table.cast(self.schema)
        number = int(self.units[-1].stem.split("-")[1]) + 1 if self.units else 0
        suffix = self.shard_format if self.directory else "parquet"
        target = self.folder / f"part-{number:05d}.{suffix}"
        temporary = self.folder / f".part-{number:05d}.{suffix}.tmp"
        try:
            if self.directory:
                write_shard(table, temporary, self.shard_format, self.array_shapes)
            else:
                import pyarrow.parquet as pq

                pq.write_table(table, temporary)
            _replace_durably(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
        self.units.append(target)
        self.rows_written += table.num_rows
        if self.directory:
            self._write_manifest(complete=False)

    def _write_manifest(self, complete: bool) -> None:
        shards = []
        for unit in self.units:
            table = read_unit(unit)
            keys = table.column(self.key).to_pylist()
            shards.append({"file": unit.name, "rows": table.num_rows, "sha256": sha256_of(unit),
                           "first": str(keys[0]) if keys else None, "last": str(keys[-1]) if keys else None})
        manifest = {"schema": self.metadata.get("schema"), "format": self.shard_format, "complete": complete,
                    "rows": sum(shard["rows"] for shard in shards), "metadata": self.metadata, "shards": shards}
        temporary = self.folder / f".{MANIFEST}.tmp"
        temporary.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        _replace_durably(temporary, self.folder / MANIFEST)

    def finish(self) -> str:
        """Mark the output complete (a manifest, or the joined Parquet file); returns its path."""
        if self.directory:
            self._write_manifest(complete=True)
            return str(self.folder)
        import pyarrow.parquet as pq

        final = Path(self.output)
        temporary = final.with_name(f".{final.name}.tmp")
        try:
            with pq.ParquetWriter(temporary, self.schema) as writer:
                for unit in self.units:
                    writer.write_table(pq.read_table(unit).cast(self.schema))
            _replace_durably(temporary, final)
        finally:
            temporary.unlink(missing_ok=True)
        shutil.rmtree(self.folder, ignore_errors=True)
        return str(final)


# ---------------------------------------------------------------- shards


def write_shard(table: Any, path: Path, shard_format: str, array_shapes: dict[str, tuple[int, ...]]) -> None:
    """``table`` as named arrays (fixed-size lists reshaped per ``array_shapes``); text columns go
    into the metadata (safetensors) or unicode arrays (npz); the Arrow schema rides along."""
    import numpy as np
    import pyarrow as pa

    arrays: dict[str, Any] = {}
    texts: dict[str, list[str]] = {}
    for field in table.schema:
        column = table.column(field.name).combine_chunks()
        if pa.types.is_fixed_size_list(field.type):
            flat = column.values.to_numpy(zero_copy_only=False).reshape(len(column), field.type.list_size)
            arrays[field.name] = np.ascontiguousarray(flat.reshape(len(column), *array_shapes.get(field.name, (field.type.list_size,))))
        elif pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            texts[field.name] = [str(value) for value in column.to_pylist()]
        else:
            arrays[field.name] = np.ascontiguousarray(column.to_numpy(zero_copy_only=False))
    schema_text = base64.b64encode(table.schema.serialize().to_pybytes()).decode("ascii")
    metadata = (table.schema.metadata or {}).get(METADATA_KEY, b"{}").decode()
    with open(path, "wb") as handle:
        if shard_format == "safetensors":
            from safetensors.numpy import save

            handle.write(save(arrays, metadata={"vizcli": metadata, "arrow_schema": schema_text,
                                                "texts": json.dumps(texts, ensure_ascii=False)}))
        else:
            text_arrays = {name: np.array(values, dtype=str) for name, values in texts.items()}
            everything = {**arrays, **text_arrays, "vizcli": np.array(metadata), "arrow_schema": np.array(schema_text)}
            np.savez(handle, **everything)  # type: ignore[arg-type]  # numpy's stub types **kwds as its allow_pickle


def read_unit(path: Path) -> Any:
    """A unit (a Parquet part or file, or a shard) back as a ``pyarrow.Table``."""
    import pyarrow as pa

    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path)
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), "np") as handle:
            header = handle.metadata() or {}
            arrays = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118 (safe_open is not a dict)
        texts = json.loads(header.get("texts", "{}"))
        schema_text = header["arrow_schema"]
    else:
        import numpy as np

        with np.load(path, allow_pickle=False) as loaded:
            arrays = {name: loaded[name] for name in loaded.files}
        schema_text = str(arrays.pop("arrow_schema"))
        arrays.pop("vizcli", None)
        texts = {}
    schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(schema_text)))
    columns = []
    for field in schema:
        if field.name in texts:
            columns.append(pa.array(texts[field.name], type=field.type))
        elif pa.types.is_fixed_size_list(field.type):
            values = arrays[field.name].reshape(-1)
            columns.append(pa.FixedSizeListArray.from_arrays(pa.array(values, type=field.type.value_type), field.type.list_size))
        else:
            columns.append(pa.array(arrays[field.name].tolist() if arrays[field.name].dtype.kind == "U" else arrays[field.name], type=field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def read_unit_metadata(path: Path) -> dict[str, Any]:
    """The settings recorded in a unit."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        metadata = pq.read_schema(path).metadata or {}
        return dict(json.loads(metadata.get(METADATA_KEY, b"{}")))
    return dict(json.loads((read_unit(path).schema.metadata or {}).get(METADATA_KEY, b"{}")))


# ---------------------------------------------------------------- merging


def read_output(path: str) -> tuple[Any, dict[str, Any], list[Path]]:
    """A finished output's schema, recorded settings and units, after checking it is whole:
    a Parquet file, or a folder whose manifest is complete and whose shards match their sha256."""
    import pyarrow.parquet as pq

    place = Path(path)
    if place.is_dir():
        manifest_path = place / MANIFEST
        if not manifest_path.is_file():
            raise BadInput(f"a folder without {MANIFEST}; give finished outputs", parameter="inputs", value=path)
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if not manifest.get("complete"):
            raise BadInput("is incomplete (an interrupted run); finish it with --resume first", parameter="inputs", value=path)
        units = []
        for shard in manifest.get("shards", []):
            unit = place / shard["file"]
            if not unit.is_file():
                raise BadInput(f"lists {shard['file']}, which is missing", parameter="inputs", value=path)
            if sha256_of(unit) != shard["sha256"]:
                raise BadInput(f"{shard['file']} does not match its sha256 in {MANIFEST}; it changed or is damaged",
                               parameter="inputs", value=path)
            units.append(unit)
        first = read_unit(units[0]) if units else None
        return (first.schema if first is not None else None), dict(manifest.get("metadata", {})), units
    if not place.is_file():
        parts = Path(path + PARTS_SUFFIX)
        hint = "; it was interrupted: finish it with --resume" if parts.is_dir() else ""
        raise BadInput(f"no such output{hint}", parameter="inputs", value=path)
    schema = pq.read_schema(place)
    return schema, dict(json.loads((schema.metadata or {}).get(METADATA_KEY, b"{}"))), [place]


def merge_outputs(inputs: list[str], output: str, key_columns: tuple[str, ...], shard_format: str = "safetensors",
                  ignore: tuple[str, ...] = ("shard",)) -> tuple[str, int]:
    """Join finished outputs into ``output`` (Parquet or a shard folder). Their settings must agree
    (except ``ignore``) and no row key may repeat. Returns (path, rows)."""
    if not inputs:
        raise BadInput("give the outputs to merge", parameter="inputs")
    read = [(path, *read_output(path)) for path in inputs]
    base_path, schema, base, _ = next(item for item in read)
    wanted = {k: v for k, v in base.items() if k not in ignore}
    for path, _, metadata, _ in read:
        other = {k: v for k, v in metadata.items() if k not in ignore}
        if other != wanted:
            differing = sorted(k for k in set(other) | set(wanted) if other.get(k) != wanted.get(k))
            raise BadInput(f"was made with other settings than {base_path} ({', '.join(differing)} differ)",
                           parameter="inputs", value=path)
    schema = next((item[1] for item in read if item[1] is not None), schema)
    shapes = {f"features_{op}": tuple(wanted["feature_shape"]) for op in wanted.get("ops", [])} if "feature_shape" in wanted else {}
    sink = TableSink(output, schema.remove_metadata(), wanted, key_columns[0], shard_format, array_shapes=shapes)
    seen: set[tuple[Any, ...]] = set()
    for path, _, _, units in read:
        for unit in units:
            table = read_unit(unit)
            keys = list(zip(*(table.column(name).to_pylist() for name in key_columns)))
            repeated = next((k for k in keys if k in seen), None)
            if repeated is not None or len(set(keys)) != len(keys):
                raise BadInput(f"row {repeated} appears in more than one input; merge each shard once",
                               parameter="inputs", value=path)
            seen.update(keys)
            sink.write(table)
    return sink.finish(), sink.rows_written
