"""Boxes: parse them from text and files, validate them against an image, map them to cells.

Coordinates are ``x1, y1, x2, y2`` in the original image's pixels (after EXIF orientation),
x to the right and y down, as torchvision's ops expect.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import sys
from pathlib import Path
from typing import NamedTuple

from vizcli.common.errors import BadInput
from vizcli.common.files import require_file


class Box(NamedTuple):
    """One box; ``number`` is 1-based, as messages and tables show it. (A NamedTuple: 10,000
    boxes are created in milliseconds.)"""

    number: int
    x1: float
    y1: float
    x2: float
    y2: float
    label: str = ""

    @property
    def coords(self) -> tuple[float, float, float, float]:
        return (self.x1, self.y1, self.x2, self.y2)

    @property
    def name(self) -> str:
        return self.label or f"box {self.number}"


def parse_box_text(text: str, number: int = 1, source: str = "boxes") -> Box:
    """``"140,80,210,150"`` → ``Box``; four numbers separated by commas or spaces."""
    parts = [part for part in re.split(r"[,\s]+", text.strip()) if part]
    if len(parts) != 4:
        raise BadInput(
            f"box {number} ({source}={text!r}): 4 numbers required (x1,y1,x2,y2); {len(parts)} given"
        )
    try:
        values = [float(part) for part in parts]
    except ValueError:
        raise BadInput(f"box {number} ({source}={text!r}): not numbers; write x1,y1,x2,y2 e.g. 140,80,210,150") from None
    x1, y1, x2, y2 = values
    return _checked(Box(number, x1, y1, x2, y2), f"{source}={text!r}")


def _checked(box: Box, source: str) -> Box:
    where = f"box {box.number} ({source})"
    if not all(math.isfinite(value) for value in box.coords):
        raise BadInput(f"{where}: coordinates must be finite numbers; got {list(box.coords)}")
    if box.x2 <= box.x1:
        raise BadInput(f"{where}: x2 ({box.x2:g}) must be greater than x1 ({box.x1:g})")
    if box.y2 <= box.y1:
        raise BadInput(f"{where}: y2 ({box.y2:g}) must be greater than y1 ({box.y1:g})")
    return box


def load_boxes_file(path: str, image_names: list[str]) -> dict[str, list[Box]]:
    """Boxes per image from a JSON or CSV file (``-`` reads JSON or CSV from stdin).

    JSON: a list of ``[x1,y1,x2,y2]`` or ``{"box": [...], "label": "..."}`` (applies to every
    image), or an object keyed by image file name with such lists. CSV: header
    ``x1,y1,x2,y2[,label][,image]``.
    """
    if path == "-":
        text = sys.stdin.read()
    else:
        file = require_file(path, "boxes_file", "a .json or .csv file")
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise BadInput(f"cannot be read as UTF-8 text ({error})", parameter="boxes_file", value=path) from None
    stripped = text.lstrip()
    if not stripped:
        raise BadInput("is empty; give a JSON list of [x1,y1,x2,y2] or a CSV with x1,y1,x2,y2", parameter="boxes_file", value=path)
    if stripped[0] in "[{" or path.lower().endswith(".json"):
        return _boxes_from_json(text, path, image_names)
    return _boxes_from_csv(text, path, image_names)


def _boxes_from_json(text: str, path: str, image_names: list[str]) -> dict[str, list[Box]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise BadInput(f"invalid JSON at line {error.lineno} column {error.colno} ({error.msg})", parameter="boxes_file", value=path) from None
    if isinstance(data, dict):
        result = {}
        by_name = {Path(name).name: name for name in image_names}
        for key, value in data.items():
            image = by_name.get(Path(key).name, key if key in image_names else None)
            if image is None:
                raise BadInput(f"key {key!r} names no image given; images: {', '.join(by_name)}", parameter="boxes_file", value=path)
            result[image] = _box_list(value, f"boxes_file={path!r} [{key!r}]")
        return result
    boxes = _box_list(data, f"boxes_file={path!r}")
    return {name: boxes for name in image_names}


def _box_list(value, source: str) -> list[Box]:
    if not isinstance(value, list):
        raise BadInput(f"{source}: expected a list of boxes, got {type(value).__name__}")
    boxes = []
    for index, item in enumerate(value, start=1):
        label = ""
        if isinstance(item, dict):
            if "box" not in item:
                raise BadInput(f"box {index} ({source}): object without a \"box\" key; write {{\"box\": [x1,y1,x2,y2], \"label\": \"…\"}}")
            label = str(item.get("label", ""))
            item = item["box"]
        if not isinstance(item, list) or len(item) != 4:
            count = len(item) if isinstance(item, list) else type(item).__name__
            raise BadInput(f"box {index} ({source}): 4 numbers required (x1,y1,x2,y2); got {count}")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in item):
            raise BadInput(f"box {index} ({source}): coordinates must be numbers; got {item}")
        x1, y1, x2, y2 = (float(v) for v in item)
        boxes.append(_checked(Box(index, x1, y1, x2, y2, label=label), source))
    return boxes


def _boxes_from_csv(text: str, path: str, image_names: list[str]) -> dict[str, list[Box]]:
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip().lower() for name in (reader.fieldnames or [])]
    if not {"x1", "y1", "x2", "y2"} <= set(header):
        raise BadInput(f"CSV needs a header with x1,y1,x2,y2 (and optionally label, image); got {','.join(header) or 'nothing'}", parameter="boxes_file", value=path)
    reader.fieldnames = header
    result: dict[str, list[Box]] = {}
    by_name = {Path(name).name: name for name in image_names}
    for index, row in enumerate(reader, start=1):
        source = f"boxes_file={path!r} line {index + 1}"
        try:
            values = [float(row[key]) for key in ("x1", "y1", "x2", "y2")]
        except (TypeError, ValueError):
            raise BadInput(f"box {index} ({source}): x1,y1,x2,y2 must be numbers; got {[row.get(k) for k in ('x1','y1','x2','y2')]}") from None
        image_key = (row.get("image") or "").strip()
        targets = image_names
        if image_key:
            image = by_name.get(Path(image_key).name)
            if image is None:
                raise BadInput(f"box {index} ({source}): image {image_key!r} is not among the images given")
            targets = [image]
        x1, y1, x2, y2 = values
        box = _checked(Box(index, x1, y1, x2, y2, label=(row.get("label") or "").strip()), source)
        for image in targets:
            result.setdefault(image, []).append(box)
    if not result:
        raise BadInput("no boxes in the file", parameter="boxes_file", value=path)
    return result


def fit_boxes(boxes: list[Box], width: int, height: int, strict: bool, image: str, warn) -> list[Box]:
    """Clip boxes partly outside a ``width`` × ``height`` image (warning, or error if strict).

    A box entirely outside the image is always an error.
    """
    fitted = []
    for box in boxes:
        if box.x2 <= 0 or box.y2 <= 0 or box.x1 >= width or box.y1 >= height:
            raise BadInput(
                f"box {box.number} {_fmt(box.coords)}: entirely outside {image} ({width}×{height}); "
                "coordinates are image pixels x1,y1,x2,y2"
            )
        if box.x1 >= 0 and box.y1 >= 0 and box.x2 <= width and box.y2 <= height:
            fitted.append(box)
            continue
        clipped = box._replace(x1=max(box.x1, 0.0), y1=max(box.y1, 0.0), x2=min(box.x2, float(width)), y2=min(box.y2, float(height)))
        if clipped.coords != box.coords:
            message = f"box {box.number} {_fmt(box.coords)}: partly outside {image} ({width}×{height})"
            if strict:
                raise BadInput(message + "; fix it, or leave out strict=True to clip it")
            warn(message + f"; clipped to {_fmt(clipped.coords)}")
        fitted.append(clipped)
    return fitted


def _fmt(coords) -> str:
    return "(" + ", ".join(f"{value:g}" for value in coords) + ")"
