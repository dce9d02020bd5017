"""Row tables written in units that survive being stopped: one Parquet file, or a folder of shards.

``-o out.parquet``: each unit is a complete Parquet file in ``out.parquet.parts/`` (written
beside, then renamed in, so a unit is either whole or absent — whatever kills the process); when
the run ends they are joined into ``out.parquet`` (one row group per unit) and the folder goes.
``-o DIR/``: each unit is a shard ``part-<position>.safetensors`` (or ``.npz``), renamed in whole,
and ``manifest.json`` lists every shard with its rows and sha256; ``complete`` turns true at the end.

A unit is named after the input position of its first row (``part-000000012288.parquet``), so
units written in any order, by any worker on any node, join in input order. ``UnitWriter`` writes
one unit (it runs wherever the rows were computed: this process, or a Ray actor on another node);
``TableSink`` is the driver's side: it starts or resumes the output, records each unit written,
keeps the manifest, and commits (or discards) the run.

A rerun with ``resume=True`` reads the keys already on disk (from the units themselves, not from
a counter) so the run skips them; the settings recorded in the units must equal the new run's, and
shards listed in the manifest must still match their sha256 before anything is recorded again.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vizcli.common.choices import ShardFormat, values
from vizcli.common.errors import BadInput, RunFailure
from vizcli.common.files import os_error_reason, sha256_of
from vizcli.datasets.keys import KeyIndex
from vizcli.datasets.units import MANIFEST, METADATA_KEY, read_manifest, read_parquet, read_unit, read_unit_metadata

PARTS_SUFFIX = ".parts"
SHARD_FORMATS = values(ShardFormat)
POSITION_DIGITS = 12


def is_directory_output(output: str) -> bool:
    from vizcli.common.files import is_folder

    return output.endswith(("/", os.sep)) or is_folder(output)


def is_table_output(output: str) -> bool:
    """Whether ``-o`` asks for a dataset output: a ``.parquet`` file or a shard folder."""
    return output.lower().endswith(".parquet") or is_directory_output(output)


def problems_path_for(output: str) -> Path:
    """``DIR/problems.jsonl`` for a shard folder, ``out.problems.jsonl`` beside a Parquet file."""
    if is_directory_output(output):
        return Path(output) / "problems.jsonl"
    path = Path(output)
    return path.with_name(path.stem + ".problems.jsonl")


def check_output(output: str) -> None:
    """Exit 2 before any model work when ``output`` (a Parquet file, or a shard folder) cannot be
    written: a missing parent folder, no permission, a file where a folder should be, or a folder
    where one of its side files (``out.parquet.parts``, ``out.problems.jsonl``) should be."""
    from vizcli.common.files import check_writable

    if is_directory_output(output):
        folder = Path(output)
        if folder.exists() and not folder.is_dir():
            raise BadInput("is a file; a shard folder is a folder (or write -o out.parquet)", parameter="output", value=output)
        check_writable(str(folder / MANIFEST) if folder.is_dir() else output.rstrip("/" + os.sep))
        if folder.is_dir():
            check_writable(str(problems_path_for(output)))
        return
    check_writable(output)
    check_writable(str(problems_path_for(output)))
    parts = Path(output + PARTS_SUFFIX)
    if parts.exists() and not parts.is_dir():
        raise BadInput(f"{parts} is a file, where this run keeps its finished units; remove it", parameter="output", value=output)


def unit_name(position: int, suffix: str) -> str:
    return f"part-{position:0{POSITION_DIGITS}d}.{suffix}"


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


def write_failure(error: OSError, output: str) -> RunFailure:
    """An OS error while writing a dataset output, as one line naming it (the run's one mapping)."""
    where = f" ({error.filename})" if error.filename else ""
    return RunFailure(f"could not write{where}: {os_error_reason(error)}; finished units are kept: rerun with resume=True",
                      parameter="output", value=output)


@dataclass(frozen=True)
class UnitWriter:
    """Writes one unit into ``folder``: whole or not at all. Picklable, so a Ray actor writes its
    own units where the output is shared; returns the entry the manifest records."""

    output: str
    folder: str
    directory: bool
    shard_format: str
    schema: Any  # pyarrow.Schema, with the run's metadata
    key: str
    array_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)

    @property
    def suffix(self) -> str:
        return self.shard_format if self.directory else "parquet"

    def write(self, table: Any, position: int) -> dict[str, Any]:
        """``table`` (rows of schema) as the unit of input position ``position``."""
        table = table.cast(self.schema)
        target = Path(self.folder) / unit_name(position, self.suffix)
        temporary = target.with_name(f".{target.name}.tmp")
        try:
            try:
                if self.directory:
                    write_shard(table, temporary, self.shard_format, self.array_shapes)
                else:
                    import pyarrow.parquet as pq

                    pq.write_table(table, temporary)
                _replace_durably(temporary, target)
            finally:
                temporary.unlink(missing_ok=True)
            digest = sha256_of(target)
        except OSError as error:
            raise write_failure(error, self.output) from None
        keys = table.column(self.key).to_pylist()
        return {"file": target.name, "rows": table.num_rows, "sha256": digest,
                "first": str(keys[0]) if keys else None, "last": str(keys[-1]) if keys else None}


class TableSink:
    """Where a dataset run's rows go (see the module's docstring): the driver's side.

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
        self.directory = is_directory_output(output)
        self.folder = Path(output) if self.directory else Path(output + PARTS_SUFFIX)
        self.writer = UnitWriter(output, str(self.folder), self.directory, shard_format, self.schema, key, array_shapes or {})
        self.entries: dict[str, dict[str, Any]] = {}  # unit file name → its manifest entry
        self.created_folder = False
        self.rows_written = 0
        try:
            self._prepare(resume)
        except OSError as error:
            raise write_failure(error, output) from None
        except BadInput:
            if self.created_folder:  # a refused start or resume leaves nothing behind
                shutil.rmtree(self.folder, ignore_errors=True)
            raise

    # ------------------------------------------------------------ starting or resuming

    def _prepare(self, resume: bool) -> None:
        existing = self._existing_units()
        final = Path(self.output)
        if not resume:
            if existing:
                raise BadInput(f"holds {len(existing)} finished units of an earlier run; add resume=True to continue it, "
                               "or write elsewhere", parameter="output", value=self.output)
            if self.directory and final.is_dir() and self._other_format_units():
                raise BadInput(f"holds shards in another format than shard_format={self.shard_format!r}; use that "
                               "format, or write elsewhere", parameter="output", value=self.output)
            self._make_folder()
            return
        if self.directory and self._other_format_units():
            raise BadInput(f"holds shards in another format than shard_format={self.shard_format!r}; resume with "
                           "the format it was written in", parameter="output", value=self.output)
        self._make_folder()
        for stale in self.folder.glob(".*.tmp"):  # a unit a SIGKILL caught half-written: never recorded, redone
            stale.unlink(missing_ok=True)
        if not self.directory and final.is_file() and not existing:
            self._check_settings(final)  # before anything is copied: a refused resume leaves nothing behind
            shutil.copyfile(final, self.folder / unit_name(0, "parquet"))  # a finished file: continue from it
            existing = self._existing_units()
        listed = self._listed_entries() if self.directory else {}
        for unit in existing:
            self._check_settings(unit)
            entry = listed.get(unit.name)
            if entry is not None and sha256_of(unit) != entry.get("sha256"):
                raise BadInput(f"{unit.name} does not match its sha256 in {MANIFEST}: it changed or is damaged; delete it "
                               "and rerun with resume=True to compute its rows again", parameter="output", value=self.output)
            self.entries[unit.name] = entry if entry is not None else self._entry_of(unit)

    def _make_folder(self) -> None:
        if not self.folder.is_dir():
            self.folder.mkdir(parents=True, exist_ok=True)
            self.created_folder = True

    def _check_settings(self, unit: Path) -> None:
        recorded = read_unit_metadata(unit, self.output)
        recorded.pop("rows", None)  # a finished file's total (what it held when it was finished), not a setting
        if recorded != self.metadata:
            differing = sorted(k for k in set(recorded) | set(self.metadata) if recorded.get(k) != self.metadata.get(k))
            raise BadInput(f"was written with other settings ({', '.join(differing)} differ); resume with the same "
                           "options, or write elsewhere", parameter="output", value=self.output)

    def _listed_entries(self) -> dict[str, dict[str, Any]]:
        path = self.folder / MANIFEST
        if not path.is_file():
            return {}
        manifest = read_manifest(path, "output", self.output)
        return {str(shard["file"]): shard for shard in manifest["shards"]}

    def _entry_of(self, unit: Path) -> dict[str, Any]:
        table = read_unit(unit, self.output)
        keys = table.column(self.key).to_pylist()
        return {"file": unit.name, "rows": table.num_rows, "sha256": sha256_of(unit),
                "first": str(keys[0]) if keys else None, "last": str(keys[-1]) if keys else None}

    def _existing_units(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(path for path in self.folder.glob(f"part-*.{self.writer.suffix}") if path.is_file())

    def _other_format_units(self) -> bool:
        others = [name for name in SHARD_FORMATS if name != self.shard_format]
        return any(next(self.folder.glob(f"part-*.{name}"), None) is not None for name in others)

    @property
    def units(self) -> list[Path]:
        return [self.folder / name for name in sorted(self.entries)]

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
                column = read_parquet(unit, self.output, columns=[self.key]).column(self.key)
            else:
                column = read_unit(unit, self.output).column(self.key)
            yield [str(value) for value in column.to_pylist()]

    # ------------------------------------------------------------ recording and committing

    def write(self, table: Any, position: int) -> None:
        """Write ``table`` here as the unit of ``position`` (merge, and tests), and record it."""
        if table.num_rows:
            self.record(self.writer.write(table, position))

    def record(self, entry: dict[str, Any]) -> None:
        """A unit a writer finished (here or on a worker): into the manifest."""
        self.entries[entry["file"]] = entry
        self.rows_written += int(entry["rows"])
        if self.directory:
            self._write_manifest(complete=False)

    def _write_manifest(self, complete: bool) -> None:
        shards = [self.entries[name] for name in sorted(self.entries)]
        manifest = {"schema": self.metadata.get("schema"), "format": self.shard_format, "complete": complete,
                    "rows": sum(int(shard["rows"]) for shard in shards), "metadata": self.metadata, "shards": shards}
        temporary = self.folder / f".{MANIFEST}.tmp"
        try:
            temporary.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            _replace_durably(temporary, self.folder / MANIFEST)
        except OSError as error:
            raise write_failure(error, self.output) from None
        finally:  # a signal while writing (Interrupted) leaves no half-written manifest either
            temporary.unlink(missing_ok=True)

    def adopt_written(self) -> int:
        """Record the units on disk that no summary reported yet (a Ray worker writes the finished part of
        a long unit before its unit is done), and write the manifest again (a signal may have stopped its
        last write): a stopped run keeps them. Returns how many were adopted."""
        found = [unit for unit in self._existing_units() if unit.name not in self.entries]
        for unit in found:
            try:
                entry = self._entry_of(unit)
            except BadInput:  # damaged beyond reading: --resume's own check names it
                continue
            self.entries[entry["file"]] = entry
        if self.directory and self.entries and self.folder.is_dir():
            self._write_manifest(complete=False)
        return len(found)

    def finish(self) -> str:
        """Mark the output complete (a manifest, or the joined Parquet file); returns its path."""
        try:
            return self._finish()
        except OSError as error:
            raise write_failure(error, self.output) from None

    def _finish(self) -> str:
        if self.directory:
            self._write_manifest(complete=True)
            return str(self.folder)
        import pyarrow.parquet as pq

        final = Path(self.output)
        temporary = final.with_name(f".{final.name}.tmp")
        rows = sum(pq.ParquetFile(unit).metadata.num_rows for unit in self.units)
        schema = _with_recorded_rows(self.schema, rows)  # verify cross-checks the footer against it (a deleted row)
        try:
            with pq.ParquetWriter(temporary, schema) as writer:
                for unit in self.units:
                    writer.write_table(read_parquet(unit, self.output).cast(schema))
            _replace_durably(temporary, final)
        finally:
            temporary.unlink(missing_ok=True)
        shutil.rmtree(self.folder, ignore_errors=True)
        return str(final)

    def discard(self, before: set[str]) -> None:
        """Undo a refused run: remove the units it wrote (all but ``before``), and the folder if it made it."""
        if self.created_folder and not before:
            shutil.rmtree(self.folder, ignore_errors=True)
            return
        for name in set(self.entries) - before:
            (self.folder / name).unlink(missing_ok=True)
        for stale in self.folder.glob(".*.tmp"):
            stale.unlink(missing_ok=True)
        self.entries = {name: entry for name, entry in self.entries.items() if name in before}
        if self.directory and self.entries:
            self._write_manifest(complete=False)


# ---------------------------------------------------------------- shards


def write_shard(table: Any, path: Path, shard_format: str, array_shapes: dict[str, tuple[int, ...]]) -> None:
    """``table`` as named arrays (fixed-size lists reshaped per ``array_shapes``); text columns go
    into the metadata (safetensors) or unicode arrays (npz); the Arrow schema rides along."""
    import numpy as np
    import pyarrow as pa

    arrays: dict[str, Any] = {}
    texts: dict[str, list[str]] = {}
    for column_field in table.schema:
        column = table.column(column_field.name).combine_chunks()
        if pa.types.is_fixed_size_list(column_field.type):
            flat = column.values.to_numpy(zero_copy_only=False).reshape(len(column), column_field.type.list_size)
            shape = array_shapes.get(column_field.name, (column_field.type.list_size,))
            arrays[column_field.name] = np.ascontiguousarray(flat.reshape(len(column), *shape))
        elif pa.types.is_string(column_field.type) or pa.types.is_large_string(column_field.type):
            texts[column_field.name] = [str(value) for value in column.to_pylist()]
        else:
            arrays[column_field.name] = np.ascontiguousarray(column.to_numpy(zero_copy_only=False))
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


def _with_recorded_rows(schema: Any, rows: int) -> Any:
    """``schema`` whose vizcli metadata also records the output's row total."""
    recorded = json.loads((schema.metadata or {}).get(METADATA_KEY, b"{}"))
    return schema.with_metadata({**(schema.metadata or {}), METADATA_KEY: json.dumps({**recorded, "rows": rows}).encode()})
