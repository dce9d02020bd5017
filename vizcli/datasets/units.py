"""Reading a dataset output's units and manifest back (resume, merge, the Ray driver): each file checked
as it is read, every failure one ``BadInput`` naming the file and what to do.

A unit is a Parquet file or a shard (safetensors or npz) with the run's settings in its metadata
(key ``vizcli``); a shard folder's ``manifest.json`` lists the shards with their rows and sha256.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from vizcli.common.errors import BadInput

MANIFEST = "manifest.json"
METADATA_KEY = b"vizcli"


def _unreadable(path: Path, output: str, parameter: str = "output") -> BadInput:
    return BadInput(f"{path.name} cannot be read (truncated or not written by vizcli); delete it and rerun with resume=True "
                    "to compute its rows again", parameter=parameter, value=output)


def read_parquet(path: Path, output: str, columns: list[str] | None = None, parameter: str = "output") -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path, columns=columns)
    except (pa.ArrowException, OSError, ValueError):
        raise _unreadable(path, output, parameter) from None


def read_unit(path: Path, output: str | None = None, parameter: str = "output") -> Any:
    """A unit (a Parquet part or file, or a shard) back as a ``pyarrow.Table``; one that cannot be
    read is a ``BadInput`` naming it (``output``: the output it belongs to)."""
    try:
        return _read_unit(path, output or str(path), parameter)
    except BadInput:
        raise
    except Exception:  # safetensors, numpy and Arrow each raise their own kinds on damaged bytes
        raise _unreadable(path, output or str(path), parameter) from None


def _read_unit(path: Path, output: str, parameter: str) -> Any:
    import pyarrow as pa

    if path.suffix == ".parquet":
        return read_parquet(path, output, parameter=parameter)
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
    for column_field in schema:
        if column_field.name in texts:
            columns.append(pa.array(texts[column_field.name], type=column_field.type))
        elif pa.types.is_fixed_size_list(column_field.type):
            values = arrays[column_field.name].reshape(-1)
            columns.append(pa.FixedSizeListArray.from_arrays(pa.array(values, type=column_field.type.value_type),
                                                             column_field.type.list_size))
        else:
            data = arrays[column_field.name]
            columns.append(pa.array(data.tolist() if data.dtype.kind == "U" else data, type=column_field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def read_unit_metadata(path: Path, output: str | None = None, parameter: str = "output") -> dict[str, Any]:
    """The settings recorded in a unit."""
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            metadata = pq.read_schema(path).metadata or {}
        except (pa.ArrowException, OSError, ValueError):
            raise _unreadable(path, output or str(path), parameter) from None
        return _settings(metadata, path, output, parameter)
    return _settings(read_unit(path, output, parameter).schema.metadata or {}, path, output, parameter)


def _settings(metadata: dict[bytes, bytes], path: Path, output: str | None, parameter: str) -> dict[str, Any]:
    try:
        settings = json.loads(metadata[METADATA_KEY])
    except (KeyError, ValueError):
        settings = None
    if not isinstance(settings, dict):
        raise BadInput(f"{path.name} was not written by a vizcli dataset run", parameter=parameter, value=output or str(path))
    return settings


def read_manifest(path: Path, parameter: str, value: str) -> dict[str, Any]:
    """A shard folder's ``manifest.json``, checked for the fields vizcli relies on."""
    from vizcli.common.files import checked_os_call

    text = checked_os_call(lambda: path.read_text(encoding="utf-8"), parameter, value)
    try:
        manifest = json.loads(text)
    except ValueError:
        manifest = None
    shards = manifest.get("shards") if isinstance(manifest, dict) else None
    if not isinstance(manifest, dict) or not isinstance(shards, list) or not all(
            isinstance(shard, dict) and isinstance(shard.get("file"), str) and isinstance(shard.get("sha256"), str)
            and isinstance(shard.get("rows"), int) for shard in shards):
        raise BadInput(f"{MANIFEST} is damaged (not a vizcli manifest: each shard needs file, rows and sha256); "
                       "rerun the folder's run with resume=True", parameter=parameter, value=value)
    if not isinstance(manifest.get("metadata", {}), dict) or not isinstance(manifest.get("rows", 0), int):
        raise BadInput(f"{MANIFEST} is damaged (metadata and rows); rerun the folder's run with resume=True",
                       parameter=parameter, value=value)
    return manifest
