"""How results are serialised: text records, arrays, and the schema names they carry.

File schemas (stable):

* ``json``  – one JSON document (an object or an array of row objects).
* ``jsonl`` – one JSON object per line.
* ``csv`` / ``tsv`` – a header row, then one row per record; floats written with ``repr``
  so they round-trip exactly.
* ``npy``   – one array; its metadata goes to a sidecar ``FILE.json``.
* ``npz``   – named arrays plus ``metadata``: a 0-d unicode array holding a JSON object.
* ``safetensors`` – named tensors; header metadata is a str→str map whose values are JSON.
* ``pt``    – ``{"tensors": {...}, "metadata": {...}}``, loadable with
  ``torch.load(path, weights_only=True)``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from vizcli.common.errors import BadInput, RunFailure
from vizcli.common.files import atomic_output, open_destination, seekable_destination, writes_side_files

TEXT_FORMATS = ("json", "jsonl", "csv", "tsv")
ARRAY_FORMATS = ("npy", "npz", "safetensors", "pt")

# Schema names written into every machine-readable output; bump the number on a breaking change.
SHAPES_SCHEMA = "vizcli.shapes/1"
ROI_SCHEMA = "vizcli.roi/1"
ROI_DATASET_SCHEMA = "vizcli.roi/2"  # dataset runs: Parquet rows, or shards with a manifest
EMBED_SCHEMA = "vizcli.embed/1"
EMBED_DATASET_SCHEMA = "vizcli.embed/2"  # corpus runs: Parquet rows, or shards with a manifest
EMBED_SIMILARITY_SCHEMA = "vizcli.embed.similarity/1"
APPROX_SCHEMA = "vizcli.approx/1"
APPROX_CLAIMS_SCHEMA = "vizcli.approx.claims/1"


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def to_json(value: Any, indent: int | None = 2) -> str:
    """JSON text for ``value`` (numpy arrays become lists; floats round-trip)."""
    return json.dumps(value, indent=indent, ensure_ascii=False, default=_json_default, allow_nan=True)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def write_records(
    rows: Iterable[dict[str, Any]], fmt: str, stream: IO[str], document: dict[str, Any] | None = None
) -> int:
    """Stream ``rows`` to ``stream`` as json/jsonl/csv/tsv; returns the row count.

    ``json`` writes ``document`` with the rows under ``"rows"`` when a document is given,
    else a bare array. List values in csv/tsv rows are spread into ``name_0, name_1, …``.
    """
    count = 0
    if fmt == "jsonl":
        for row in rows:
            stream.write(to_json(row, indent=None) + "\n")
            count += 1
    elif fmt == "json":
        rows = list(rows)
        count = len(rows)
        body = dict(document or {}, rows=rows) if document is not None else rows
        stream.write(to_json(body) + "\n")
    elif fmt in ("csv", "tsv"):
        writer = None
        for row in rows:
            flat = _flatten_row(row)
            if writer is None:
                writer = csv.writer(stream, delimiter="," if fmt == "csv" else "\t", lineterminator="\n")
                writer.writerow(list(flat))
            writer.writerow([_cell(v) for v in flat.values()])
            count += 1
    else:
        raise BadInput(f"not a record format; use one of {', '.join(TEXT_FORMATS)}", parameter="format", value=fmt)
    return count


def _flatten_row(row: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in row.items():
        if hasattr(value, "tolist"):
            value = value.tolist()
        if isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                flat[f"{key}_{index}"] = item
        else:
            flat[key] = value
    return flat


# ---------------------------------------------------------------- arrays


def write_arrays(arrays: dict[str, Any], metadata: dict[str, Any], fmt: str, path: str | None) -> None:
    """Write named arrays (numpy or torch) with ``metadata`` in an array format.

    ``npy`` takes exactly one array and puts the metadata in ``path + '.json'``.
    """
    import numpy as np

    numpy_arrays = {name: _to_numpy(value) for name, value in arrays.items()}
    if fmt == "npy":
        if len(numpy_arrays) != 1:
            raise BadInput("npy holds one array; use npz or safetensors for several")
        (array,) = numpy_arrays.values()
        with seekable_destination(path) as handle:
            np.save(handle, array, allow_pickle=False)
        if writes_side_files(path):
            with atomic_output(path + ".json", binary=False) as handle:
                handle.write(to_json(metadata, indent=None) + "\n")
    elif fmt == "npz":
        with seekable_destination(path) as handle:
            np.savez(handle, **numpy_arrays, metadata=np.array(to_json(metadata, indent=None)))
    elif fmt == "safetensors":
        from safetensors.numpy import save

        header = {key: value if isinstance(value, str) else to_json(value, indent=None) for key, value in metadata.items()}
        contiguous = {name: np.ascontiguousarray(value) for name, value in numpy_arrays.items()}
        payload = save(contiguous, metadata=header)
        with open_destination(path, binary=True) as handle:
            handle.write(payload)
    elif fmt == "pt":
        import torch

        tensors = {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in numpy_arrays.items()}
        buffer = io.BytesIO()
        torch.save({"tensors": tensors, "metadata": json.loads(to_json(metadata))}, buffer)
        with open_destination(path, binary=True) as handle:
            handle.write(buffer.getvalue())
    else:
        raise BadInput(f"unknown array format '{fmt}'; use one of {', '.join(ARRAY_FORMATS)}")


def _to_numpy(value: Any) -> Any:
    import numpy as np

    if hasattr(value, "detach"):
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":
            value = value.float()
        value = value.numpy()
    return np.asarray(value)




class NpyStreamWriter:
    """Write a 2-D float32 ``.npy`` row by row, without knowing the row count in advance.

    A fixed-size header is reserved and rewritten with the final shape at ``close``; memory
    stays at one row whatever the input's length.
    """

    HEADER_BYTES = 128

    def __init__(self, handle: IO[bytes], width: int):
        self.handle = handle
        self.width = width
        self.rows = 0
        if not handle.seekable():
            raise BadInput("npy output must go to a file (-o FILE.npy), not a pipe")
        handle.write(b"\0" * self.HEADER_BYTES)

    def write(self, vector: Any) -> None:
        import numpy as np

        row = np.asarray(vector, dtype="<f4").reshape(-1)
        if row.shape[0] != self.width:
            raise ValueError(f"row of width {row.shape[0]}, expected {self.width}")
        self.handle.write(row.tobytes())
        self.rows += 1

    def close(self) -> None:
        import numpy as np

        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header, {"descr": "<f4", "fortran_order": False, "shape": (self.rows, self.width)}
        )
        data = header.getvalue()
        if len(data) != self.HEADER_BYTES:  # pragma: no cover - shapes up to 10^40 rows fit
            raise RunFailure("npy header does not fit its reserved space")
        end = self.handle.tell()
        self.handle.seek(0)
        self.handle.write(data)
        self.handle.seek(end)


