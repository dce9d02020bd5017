"""The precision stored vectors keep: the semantics of sentence-transformers' ``quantize_embeddings``.

* ``float32`` as computed; ``float16`` rounded to half; ``bfloat16`` rounded to bfloat16 and kept
  as its raw 16 bits (``uint16``: Parquet has no bfloat16; ``array.view(torch.bfloat16)`` or
  ``(bits.astype(np.uint32) << 16).view(np.float32)`` reads it back);
* ``int8`` / ``uint8``: per dimension, 256 buckets between that dimension's min and max —
  ``clip(floor((v - min) / step), 0, 255)`` with ``step = (max - min) / 255`` (``- 128`` for int8).
  The ranges come from a calibration sample (the first ``--calibration N`` texts) or a ranges file
  saved by an earlier run, never from one batch, so every shard and every later query shares them
  and no vector collapses to zeros;
* ``binary`` / ``ubinary``: one bit per dimension (``v > 0``), packed 8 to a byte (``binary``
  subtracts 128 and stores int8).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vizcli.common.choices import Precision, values
from vizcli.common.errors import BadInput

PRECISIONS = values(Precision)
NEEDS_RANGES = ("int8", "uint8")


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise BadInput(f"use one of {', '.join(PRECISIONS)}", parameter="precision", value=precision)
    return precision


def stored_width(precision: str, dimensions: int) -> int:
    """Values per stored vector: the dimensions, or bytes of packed bits."""
    return (dimensions + 7) // 8 if precision.endswith("binary") else dimensions


def arrow_type(precision: str) -> Any:
    import pyarrow as pa

    return {
        "float32": pa.float32(), "float16": pa.float16(), "bfloat16": pa.uint16(),
        "int8": pa.int8(), "uint8": pa.uint8(), "binary": pa.int8(), "ubinary": pa.uint8(),
    }[precision]


def ranges_of(vectors: Any) -> Any:
    """``float32 [2, D]``: each dimension's min and max over ``vectors`` (``[N, D]``)."""
    import numpy as np

    if len(vectors) < 2:
        raise BadInput("int8/uint8 ranges need at least 2 calibration vectors", parameter="calibration", value=len(vectors))
    return np.stack([vectors.min(axis=0), vectors.max(axis=0)]).astype(np.float32)


def quantize(vectors: Any, precision: str, ranges: Any = None) -> Any:
    """``vectors`` (``float32 [N, D]``) in ``precision`` (see the module's docstring)."""
    import numpy as np

    vectors = np.asarray(vectors, dtype=np.float32)
    if precision == "float32":
        return vectors
    if precision == "float16":
        return vectors.astype(np.float16)
    if precision == "bfloat16":
        import torch

        return torch.from_numpy(np.ascontiguousarray(vectors)).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    if precision in NEEDS_RANGES:
        if ranges is None:
            raise BadInput("int8/uint8 need ranges: a calibration sample or a ranges file", parameter="precision", value=precision)
        ranges = np.asarray(ranges, dtype=np.float32)
        starts = ranges[0, :]
        steps = (ranges[1, :] - starts) / 255
        steps = np.where(steps == 0, 1, steps)
        buckets = np.clip(np.floor((vectors - starts) / steps), 0, 255)
        return (buckets - 128).astype(np.int8) if precision == "int8" else buckets.astype(np.uint8)
    if precision == "binary":
        return (np.packbits(vectors > 0, axis=-1).astype(np.int16) - 128).astype(np.int8)
    if precision == "ubinary":
        return np.packbits(vectors > 0, axis=-1)
    raise BadInput(f"use one of {', '.join(PRECISIONS)}", parameter="precision", value=precision)


def save_ranges(path: Path, ranges: dict[str, Any]) -> None:
    """``{pooling: [2, D]}`` as JSON (``{"ranges": {pooling: [[min…], [max…]]}}``)."""
    path.write_text(json.dumps({"ranges": {name: value.tolist() for name, value in ranges.items()}}) + "\n", encoding="utf-8")


def load_ranges(path: str, poolings: tuple[str, ...], dimensions: int) -> dict[str, Any]:
    """Ranges saved by an earlier run (its ``.ranges.json``, or a Parquet output's metadata)."""
    import numpy as np

    from vizcli.common.files import require_file

    file = require_file(path, "ranges", "a .ranges.json file from an earlier run")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))["ranges"]
        found = {name: np.asarray(data[name], dtype=np.float32) for name in poolings}
    except (ValueError, KeyError, TypeError, IndexError) as error:
        raise BadInput(f"not a ranges file with every pooling asked for ({str(error)[:120]})", parameter="ranges", value=path) from None
    except RecursionError:
        raise BadInput("nested too deeply to be a ranges file", parameter="ranges", value=path) from None
    for name, value in found.items():
        if value.shape != (2, dimensions):
            raise BadInput(f"{name}: shape {list(value.shape)}, expected [2, {dimensions}] (min and max of each dimension)",
                           parameter="ranges", value=path)
        if not np.isfinite(value).all():
            raise BadInput(f"{name}: holds NaN or infinite values; calibrate again", parameter="ranges", value=path)
        inverted = np.flatnonzero(value[0] > value[1])
        if inverted.size:
            raise BadInput(f"{name}: dimension {int(inverted[0])} has min > max; calibrate again", parameter="ranges", value=path)
    return found
