"""Boxes: parse them from text and files, validate them against an image, map them to cells.

Coordinates are ``x1, y1, x2, y2`` in the original image's pixels (after EXIF orientation),
x to the right and y down, as torchvision's ops expect.
"""

from __future__ import annotations

import csv
import io
import math
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from vizcli.common.errors import BadInput, shorten
from vizcli.common.files import checked_os_call, require_file
from vizcli.common.parsing import parse_json

DEFAULT_MAX_BOXES = 1_000_000  # per image; --max-boxes raises it
BYTES_PER_BOX = 256  # a boxes file may hold at most this many bytes per allowed box (labels included)


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


def load_boxes_file(path: str, image_names: list[str], max_boxes: int = DEFAULT_MAX_BOXES) -> dict[str, list[Box]]:
    """Boxes per image from a JSON or CSV file (``-`` reads JSON or CSV from stdin).

    JSON: a list of ``[x1,y1,x2,y2]`` or ``{"box": [...], "label": "..."}`` (applies to every
    image), or an object keyed by image file name with such lists. CSV: header
    ``x1,y1,x2,y2[,label][,image]``, or no header and 4 or 5 columns ``x1,y1,x2,y2[,label]``.
    The file's size is checked against ``max_boxes`` before it is read (at most ``BYTES_PER_BOX``
    bytes a box), and the box count while it is parsed.
    """
    keyed, every = read_keyed_boxes(path, max_boxes * max(len(image_names), 1))
    result: dict[str, list[Box]] = {}
    for key, boxes in keyed.items():
        image = match_image(key, image_names, f"boxes_file={path!r} key {key!r}")
        result.setdefault(image, []).extend(boxes)
    if every:
        for image in image_names:
            result.setdefault(image, []).extend(every)
    count = sum(len(boxes) for boxes in result.values())
    if count > max_boxes * max(len(image_names), 1):
        raise BadInput(f"{count:,} boxes, more than max_boxes={max_boxes:,}; raise it if that is right", parameter="boxes_file", value=path)
    return result


BadBox = Callable[[dict[str, Any]], None]  # called with a problem for a box that cannot be a box


def read_keyed_boxes(path: str, max_boxes: int = DEFAULT_MAX_BOXES, parameter: str = "boxes_file",
                     on_bad_box: BadBox | None = None) -> tuple[dict[str, list[Box]], list[Box] | None]:
    """The boxes of a JSON or CSV boxes file: those keyed by an image name, and those for every
    image (``None`` when there are none). Errors name ``parameter``, the option the file came from
    (``boxes_file``, or ``annotations`` for a dataset's CSV/JSON annotations).

    ``on_bad_box``: a box that cannot be a box (no area, coordinates that are not finite numbers)
    is given to it as a problem (``{"annotations_file", "line" or "box", "annotation_id", "image",
    "problem"}``) and left out, instead of being an error: a dataset records it and goes on."""
    check_max_boxes(max_boxes)
    try:
        text = _read_boxes_text(path, max_boxes)
        stripped = text.lstrip()
        if not stripped:
            raise BadInput("is empty; give a JSON list of [x1,y1,x2,y2] or a CSV with x1,y1,x2,y2", parameter="boxes_file", value=path)
        if stripped[0] in "[{" or path.lower().endswith(".json"):
            return _boxes_from_json(text, path, on_bad_box)
        return _boxes_from_csv(text, path, max_boxes, on_bad_box)
    except BadInput as error:
        if parameter == "boxes_file":
            raise
        raise BadInput(error.detail.replace("boxes_file=", f"{parameter}="),
                       parameter=parameter if error.parameter == "boxes_file" else error.parameter,
                       value=error.value) from None


def _read_boxes_text(path: str, max_boxes: int) -> str:
    limit = max_boxes * BYTES_PER_BOX
    if path == "-":
        data = sys.stdin.buffer.read(limit + 1)
    else:
        file = require_file(path, "boxes_file", "a .json or .csv file")
        size = checked_os_call(lambda: file.stat().st_size, "boxes_file", path)
        if size > limit:
            raise BadInput(
                f"{size:,} bytes is more than {max_boxes:,} boxes can take ({BYTES_PER_BOX} bytes a box); "
                "raise max_boxes=N if the file is right", parameter="boxes_file", value=path,
            )
        data = checked_os_call(file.read_bytes, "boxes_file", path)
    if len(data) > limit:
        raise BadInput(f"more than {limit:,} bytes on stdin; raise max_boxes=N if that is right", parameter="boxes_file", value=path)
    try:
        return data.decode("utf-8-sig")  # a byte-order mark is accepted
    except UnicodeDecodeError as error:
        raise BadInput(f"cannot be read as UTF-8 text (byte {error.start + 1})", parameter="boxes_file", value=path) from None


def check_max_boxes(max_boxes: int) -> None:
    if max_boxes < 1:
        raise BadInput("must be at least 1", parameter="max_boxes", value=max_boxes)


def _boxes_from_json(text: str, path: str, on_bad_box: BadBox | None = None) -> tuple[dict[str, list[Box]], list[Box] | None]:
    data = parse_json(text, "boxes_file", path)
    if isinstance(data, dict):
        return {str(key): _box_list(value, f"boxes_file={path!r} [{key!r}]", _reporter(on_bad_box, path, str(key)))
                for key, value in data.items()}, None
    return {}, _box_list(data, f"boxes_file={path!r}", _reporter(on_bad_box, path, None))


def _problem_text(detail: str) -> str:
    """``box 2 (boxes_file='a.csv' line 3): x2 (5) must be …`` → ``x2 (5) must be …``: a problem
    record names the file, line and box in fields of its own."""
    return detail.split("): ", 1)[1] if detail.startswith("box ") and "): " in detail else detail


def _reporter(on_bad_box: BadBox | None, path: str, image: str | None) -> Callable[[int, str], None] | None:
    """``(box number, message) → on_bad_box(problem)`` for the boxes of one JSON list."""
    if on_bad_box is None:
        return None

    def report(number: int, message: str) -> None:
        on_bad_box({"annotations_file": path, "box": number, "annotation_id": str(number),
                    **({"image": image} if image else {}), "problem": message})

    return report


def match_image(key: str, image_names: list[str], where: str) -> str:
    """The image ``key`` names: an exact path first, else a unique file name; ambiguity is an error."""
    if key in image_names:
        return key
    matches = sorted({name for name in image_names if Path(name).name == Path(key).name})
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise BadInput(f"{where}: the file name matches {len(matches)} images ({', '.join(matches)}); key the boxes by the full path")
    shown = ", ".join(image_names[:5]) + (" …" if len(image_names) > 5 else "")
    raise BadInput(f"{where}: names no image given; images: {shown}")


def _box_list(value, source: str, report: Callable[[int, str], None] | None = None) -> list[Box]:
    if not isinstance(value, list):
        raise BadInput(f"{source}: expected a list of boxes, got {type(value).__name__}")
    boxes = []
    for index, item in enumerate(value, start=1):
        if report is not None:  # a dataset's box that is no box (no area, not numbers): a problem, the rest goes on
            try:
                boxes.extend(_box_list([item], source))
                boxes[-1] = boxes[-1]._replace(number=index)
            except BadInput as error:
                report(index, _problem_text(error.detail))
            continue
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
            raise BadInput(f"box {index} ({source}): coordinates must be numbers; got {shorten(str(item))}")
        try:
            x1, y1, x2, y2 = (float(v) for v in item)
        except OverflowError:
            raise BadInput(f"box {index} ({source}): a coordinate is too large to be a pixel position") from None
        boxes.append(_checked(Box(index, x1, y1, x2, y2, label=label), source))
    return boxes


HEADERLESS_COLUMNS = ("x1", "y1", "x2", "y2", "label")


def _boxes_from_csv(text: str, path: str, max_boxes: int,
                    on_bad_box: BadBox | None = None) -> tuple[dict[str, list[Box]], list[Box] | None]:
    first = next(csv.reader(io.StringIO(text.lstrip().splitlines()[0] if text.strip() else "")), [])
    headerless = 4 <= len(first) <= 5 and _all_numbers(first[:4])
    # strict: a quote that is never closed is an error, not one field swallowing the rest of the file
    reader = csv.DictReader(io.StringIO(text), fieldnames=list(HEADERLESS_COLUMNS) if headerless else None, strict=True)
    try:
        header = [name.strip().lower() for name in (reader.fieldnames or [])]
    except csv.Error as error:
        raise BadInput(f"line 1: {error}", parameter="boxes_file", value=path) from None
    if not {"x1", "y1", "x2", "y2"} <= set(header):
        raise BadInput(
            f"CSV needs a header with x1,y1,x2,y2 (and optionally label, image), or no header and 4 or 5 columns "
            f"x1,y1,x2,y2[,label]; got {','.join(header) or 'nothing'}", parameter="boxes_file", value=path,
        )
    reader.fieldnames = header
    keyed: dict[str, list[Box]] = {}
    every: list[Box] = []
    offset = 0 if headerless else 1
    bad = 0
    for index, row in enumerate(_csv_rows(reader, path), start=1):
        source = f"boxes_file={path!r} line {index + offset}"
        if index > max_boxes:
            raise BadInput(f"more than max_boxes={max_boxes:,} boxes; raise it if that is right", parameter="boxes_file", value=path)
        image_key = (row.get("image") or "").strip()
        try:
            try:
                values = [float(row[key]) for key in ("x1", "y1", "x2", "y2")]
            except (TypeError, ValueError):
                shown = shorten(str([row.get(k) for k in ("x1", "y1", "x2", "y2")]))
                raise BadInput(f"box {index} ({source}): x1,y1,x2,y2 must be numbers; got {shown}") from None
            x1, y1, x2, y2 = values
            box = _checked(Box(index, x1, y1, x2, y2, label=(row.get("label") or "").strip()), source)
        except BadInput as error:
            if on_bad_box is None:
                raise
            bad += 1  # a dataset's row that is no box: a problem, and the run goes on
            on_bad_box({"annotations_file": path, "line": index + offset, "annotation_id": str(index),
                        **({"image": image_key} if image_key else {}), "problem": _problem_text(error.detail)})
            continue
        if image_key:
            keyed.setdefault(image_key, []).append(box)
        else:
            every.append(box)
    if not keyed and not every and not bad:
        raise BadInput("no boxes in the file", parameter="boxes_file", value=path)
    return keyed, every or None


def _all_numbers(values: list[str]) -> bool:
    try:
        [float(value) for value in values]
    except ValueError:
        return False
    return True


def _csv_rows(reader: csv.DictReader, path: str) -> Iterator[dict[str, str]]:
    """The reader's rows, its errors (a field past the csv module's limit, a stray quote) as ``BadInput``."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise BadInput(f"line {reader.line_num}: {error}", parameter="boxes_file", value=path) from None
        yield row


def clip_boxes(image: Any, width: int, height: int, strict: bool) -> tuple[list, list[int], list[dict[str, Any]]]:
    """``image``'s boxes in pixels, clipped to the image; those outside it (or, with ``strict``,
    partly outside) become problems."""
    boxes, kept, problems = [], [], []
    for index, annotation in enumerate(image.annotations):
        x1, y1, x2, y2 = annotation.in_pixels(width, height)
        clipped = (max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height)))
        if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
            problems.append({"image": image.image_id, "annotation_id": annotation.annotation_id,
                             "problem": f"box {[x1, y1, x2, y2]} lies outside the {width}×{height} image"})
            continue
        if strict and clipped != (x1, y1, x2, y2):
            problems.append({"image": image.image_id, "annotation_id": annotation.annotation_id,
                             "problem": f"box {[x1, y1, x2, y2]} extends outside the {width}×{height} image (strict=True: not clipped)"})
            continue
        boxes.append(clipped)
        kept.append(index)
    return boxes, kept, problems
