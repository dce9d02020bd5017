"""Any finished vizcli output, opened: what it is, what it records, and its rows a batch at a time.

Three forms, told apart by the output itself:

* ``parquet``: a Parquet file from a dataset run (its settings under the schema metadata key ``vizcli``);
* ``shards``: a folder with ``manifest.json`` and its units;
* ``file``: a single-input file: ``.npz``, ``.safetensors``, ``.pt`` (read with ``weights_only=True``) or
  ``.npy`` with its ``FILE.npy.json`` sidecar, whose metadata names its ``schema``.

Opening reads only metadata and listings; rows are read later, a unit or a row group at a time, so
memory follows what is asked for, not the size of the output.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vizcli.common.errors import BadInput, error_text
from vizcli.datasets.units import MANIFEST, read_manifest, read_unit, read_unit_metadata

SINGLE_FILE_SUFFIXES = (".npz", ".safetensors", ".pt", ".pth", ".npy")
MAX_SIDECAR_BYTES = 64 * 1024 * 1024


@dataclass
class StoredOutput:
    """An output as found on disk (see the module docstring)."""

    path: str
    form: str  # "parquet", "shards" or "file"
    metadata: dict[str, Any]
    units: list[Path] = field(default_factory=list)  # parquet: the file; shards: every listed unit
    declared_rows: int | None = None  # what the manifest (or the file's footer) says it holds
    complete: bool = True
    arrays: dict[str, Any] = field(default_factory=dict)  # form "file": the named arrays
    schema: Any = None  # the rows' pyarrow schema (dataset outputs)
    parameter: str = "output"  # how errors about this output name it

    @property
    def schema_id(self) -> str:
        return str(self.metadata.get("schema") or "")


def open_output(path: str, parameter: str = "output") -> StoredOutput:
    """Open the output at ``path`` (any of the three forms); one ``BadInput`` when it is none of them."""
    stored = _open(Path(path), path, parameter)
    stored.parameter = parameter
    return stored


def _open(place: Path, path: str, parameter: str) -> StoredOutput:
    if place.is_dir():
        return _open_shards(place, path, parameter)
    if not place.exists():
        from vizcli.datasets.sink import PARTS_SUFFIX

        hint = "; it was interrupted: finish it with --resume" if Path(path + PARTS_SUFFIX).is_dir() else ""
        raise BadInput(f"no such output{hint}; give a Parquet file, a shard folder or a file vizcli wrote",
                       parameter=parameter, value=path)
    if not place.is_file():
        raise BadInput("not a regular file; give a Parquet file, a shard folder or a file vizcli wrote", parameter=parameter, value=path)
    if _is_parquet(place):
        return _open_parquet(place, path, parameter)
    if place.suffix.lower() in SINGLE_FILE_SUFFIXES:
        return _open_single(place, path, parameter)
    raise BadInput("is not an output vizcli writes (a Parquet file, a shard folder, or .npz/.safetensors/.pt/.npy); "
                   "give one of those", parameter=parameter, value=path)


def _is_parquet(place: Path) -> bool:
    try:
        with place.open("rb") as handle:
            return handle.read(4) == b"PAR1"
    except OSError:
        return False


def _open_parquet(place: Path, path: str, parameter: str) -> StoredOutput:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        footer = pq.ParquetFile(place)
        schema, rows = footer.schema_arrow, footer.metadata.num_rows
    except (pa.ArrowException, OSError, ValueError) as error:
        raise BadInput(f"a damaged Parquet file ({error_text(error, 80)}); rerun the run that wrote it",
                       parameter=parameter, value=path) from None
    try:
        metadata = read_unit_metadata(place, path, parameter)
    except BadInput:
        raise BadInput("is a Parquet file, but not one written by vizcli (no vizcli metadata); give an output of "
                       "vizcli roi, detect or embed", parameter=parameter, value=path) from None
    return StoredOutput(path, "parquet", metadata, [place], declared_rows=metadata.get("rows", rows), schema=schema.remove_metadata())


def _open_shards(place: Path, path: str, parameter: str) -> StoredOutput:
    manifest_path = place / MANIFEST
    if not manifest_path.is_file():
        raise BadInput(f"a folder without {MANIFEST}; give a shard folder written by vizcli (or a Parquet file)",
                       parameter=parameter, value=path)
    manifest = read_manifest(manifest_path, parameter, path)
    units = [place / shard["file"] for shard in manifest["shards"]]
    for shard, unit in zip(manifest["shards"], units):
        if Path(shard["file"]).name != shard["file"] or not unit.is_file():
            raise BadInput(f"{MANIFEST} lists {shard['file']}, which is missing; rerun its run with --resume",
                           parameter=parameter, value=path)
    metadata = dict(manifest.get("metadata", {}))
    schema = read_unit(units[0], path, parameter).schema.remove_metadata() if units else None
    return StoredOutput(path, "shards", metadata, units, declared_rows=int(manifest.get("rows", 0)),
                        complete=bool(manifest.get("complete")), schema=schema)


def _open_single(place: Path, path: str, parameter: str) -> StoredOutput:
    suffix = place.suffix.lower()
    try:
        if suffix == ".npz":
            arrays, metadata = _read_npz(place)
        elif suffix == ".safetensors":
            arrays, metadata = _read_safetensors(place)
        elif suffix in (".pt", ".pth"):
            arrays, metadata = _read_pt(place, path, parameter)
        else:
            arrays, metadata = _read_npy(place, path, parameter)
    except BadInput:
        raise
    except Exception as error:  # numpy, safetensors and zipfile each raise their own kinds on damaged bytes
        raise BadInput(f"cannot be read as a vizcli {suffix} output ({error_text(error, 100)}); give a file vizcli wrote",
                       parameter=parameter, value=path) from None
    if not isinstance(metadata, dict) or not str(metadata.get("schema", "")).startswith("vizcli."):
        raise BadInput(f"a {suffix} file that records no vizcli schema; give a file vizcli wrote", parameter=parameter, value=path)
    rows = max((int(getattr(value, "shape", (0,))[0]) for value in arrays.values() if getattr(value, "ndim", 0) >= 1), default=0)
    return StoredOutput(path, "file", metadata, [place], declared_rows=rows, arrays=arrays)


def _read_npz(place: Path) -> tuple[dict[str, Any], Any]:
    import numpy as np

    with np.load(place, allow_pickle=False) as loaded:
        arrays = {name: loaded[name] for name in loaded.files}
    text = arrays.pop("metadata", None)
    return arrays, json.loads(str(text)) if text is not None else None


def _read_safetensors(place: Path) -> tuple[dict[str, Any], Any]:
    from safetensors import safe_open

    with safe_open(str(place), "np") as handle:
        header = handle.metadata() or {}
        arrays = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118 (safe_open is not a dict)
    metadata: dict[str, Any] = {}
    for key, value in header.items():
        try:
            metadata[key] = json.loads(value)
        except ValueError:
            metadata[key] = value
    return arrays, metadata


def _read_pt(place: Path, path: str, parameter: str) -> tuple[dict[str, Any], Any]:
    import torch

    from vizcli.common.checkpoints import check_declared_sizes

    check_declared_sizes(place, path, parameter=parameter)
    try:
        loaded = torch.load(str(place), map_location="cpu", weights_only=True)
    except Exception as error:
        raise BadInput(f"cannot be read with weights_only=True ({error_text(error, 100)}); give a file vizcli wrote",
                       parameter=parameter, value=path) from None
    if not isinstance(loaded, dict) or not isinstance(loaded.get("tensors"), dict):
        raise BadInput("a .pt file that is not a vizcli output ({tensors, metadata}); give a file vizcli wrote",
                       parameter=parameter, value=path)
    arrays = {str(name): value.float().numpy() if value.is_floating_point() else value.numpy()
              for name, value in loaded["tensors"].items()}
    return arrays, loaded.get("metadata")


def _read_npy(place: Path, path: str, parameter: str) -> tuple[dict[str, Any], Any]:
    import numpy as np

    sidecar = Path(str(place) + ".json")
    if not sidecar.is_file():
        raise BadInput(f"a .npy without its metadata file {sidecar.name}; vizcli writes both: keep them together",
                       parameter=parameter, value=path)
    if sidecar.stat().st_size > MAX_SIDECAR_BYTES:
        raise BadInput(f"{sidecar.name} is too large to be vizcli's metadata", parameter=parameter, value=path)
    from vizcli.common.parsing import parse_json

    metadata = parse_json(sidecar.read_text(encoding="utf-8"), parameter, path, where=f"{sidecar.name}: ")
    array = np.load(place, allow_pickle=False, mmap_mode="r")
    name = "features"
    if isinstance(metadata, dict):  # the one array's name, as the .npz form of the same output names it
        ops, poolings = metadata.get("ops"), metadata.get("pooling")
        name = str(metadata.get("array") or (f"roi_{ops[0]}" if ops else poolings[0] if poolings else "features"))
    return {name: array}, metadata


def iter_units(stored: StoredOutput, columns: list[str] | None = None, batch_rows: int = 2048) -> Iterator[Any]:
    """The rows of a dataset output as ``pyarrow.Table`` batches: a unit at a time, a Parquet file by row groups."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for unit in stored.units:
        if unit.suffix == ".parquet" or stored.form == "parquet":
            try:
                handle = pq.ParquetFile(unit, pre_buffer=False, buffer_size=1 << 20)  # read as batches go, not the whole file
                for batch in handle.iter_batches(batch_size=batch_rows, columns=columns):
                    yield pa.Table.from_batches([batch])
            except (pa.ArrowException, OSError, ValueError) as error:
                raise BadInput(f"{unit.name} cannot be read ({error_text(error, 80)}); rerun the run that wrote it",
                               parameter=stored.parameter, value=stored.path) from None
        else:
            table = read_unit(unit, stored.path, stored.parameter)
            yield table.select(columns) if columns else table
