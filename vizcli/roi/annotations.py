"""Annotation files → images with their boxes: COCO JSON, Pascal VOC XML, YOLO txt, CSV and JSON.

Every box keeps its identity to the output: the image's id (COCO's id, else its path relative
to the dataset), the annotation's id (COCO's id, ``FILE#N`` for VOC and YOLO, the box number for
CSV/JSON), its label and the ``iscrowd`` / ``difficult`` flags. Coordinates are x1,y1,x2,y2 in
image pixels; YOLO's normalised cx,cy,w,h stay normalised until the image's real size is known
(``Annotation.in_pixels``). A box that cannot be a box (zero area, not numbers) does not stop a
dataset: it is returned as a problem, which the run records in ``problems.jsonl``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vizcli.common.errors import BadInput
from vizcli.common.files import checked_os_call, is_folder, require_file
from vizcli.common.parsing import is_unicode, parse_json

FORMATS = ("coco", "voc", "yolo", "csv", "json")
MAX_ANNOTATION_BYTES = 4 << 30  # an annotations file larger than this is refused before it is read
MAX_XML_BYTES = 16 << 20  # one VOC file
COCO_PARSE_FACTOR = 14  # bytes of Python objects per byte of COCO JSON, about (13.3 measured at most, with a margin)
YOLO_CLASS_FILES = ("classes.txt", "obj.names", "classes.names")
COCO_IMAGES = re.compile(rb'"images"\s*:\s*\[\s*(\{|\])')  # COCO's images are objects; box lists hold numbers


@dataclass(frozen=True, slots=True)
class Annotation:
    """One box of one image."""

    box: tuple[float, float, float, float]  # x1,y1,x2,y2 in pixels, or cx,cy,w,h in 0..1 when ``normalized``
    annotation_id: str
    label: str = ""
    iscrowd: bool = False
    difficult: bool = False
    normalized: bool = False  # YOLO: convert with the image's size

    def in_pixels(self, width: int, height: int) -> tuple[float, float, float, float]:
        if not self.normalized:
            return self.box
        cx, cy, w, h = self.box
        return ((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height)


@dataclass(slots=True)
class AnnotatedImage:
    """An image of the dataset, the file it is read from, and its boxes."""

    image_id: str
    path: str
    annotations: list[Annotation] = field(default_factory=list)


@dataclass
class Annotations:
    """What an annotations file says: images (when it names them), boxes per image key, problems."""

    format: str
    images: list[AnnotatedImage] | None  # None when the file does not name images (YOLO, CSV/JSON without names)
    by_key: dict[str, list[Annotation]] = field(default_factory=dict)  # image key → boxes, when images is None
    every_image: list[Annotation] | None = None  # boxes that apply to every image (a plain box list)
    problems: list[dict[str, Any]] = field(default_factory=list)


def detect_format(path: str) -> str:
    """The format of ``path`` from its content: a folder of .xml (VOC) or .txt (YOLO), a JSON with
    ``images`` and ``annotations`` (COCO), an XML file (VOC), other JSON, else CSV."""
    file = Path(path)
    if is_folder(file):
        suffixes = _suffixes_under(file)
        if ".xml" in suffixes:
            return "voc"
        if ".txt" in suffixes:
            return "yolo"
        raise BadInput("a folder with neither .xml (Pascal VOC) nor .txt (YOLO) files, in it or in its subfolders "
                       "(such as labels/train/)", parameter="annotations", value=path)
    require_file(path, "annotations", "an annotations file or folder")
    with open(file, "rb") as handle:
        head = handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        return "voc"
    if head.startswith(b"{") and COCO_IMAGES.search(_read_limited(file, 1 << 20)):
        return "coco"
    if head.startswith(b"{") or head.startswith(b"["):
        return "json"
    return "csv"


def _suffixes_under(folder: Path) -> set[str]:
    """The suffixes of the files in ``folder`` and its subfolders (YOLO's ``labels/train/*.txt``),
    walking down until a folder with .xml or .txt files is met."""
    import os

    found: set[str] = set()
    try:
        for _, _, names in os.walk(folder):
            found.update(Path(name).suffix.lower() for name in names)
            if found & {".xml", ".txt"}:
                break
    except OSError:
        pass
    return found


def _read_limited(file: Path, limit: int) -> bytes:
    with open(file, "rb") as handle:
        return handle.read(limit)


def read_annotations(path: str, fmt: str | None = None, max_boxes: int = 1_000_000) -> Annotations:
    """Read ``path`` as ``fmt`` (detected when None)."""
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise BadInput(f"use one of {', '.join(FORMATS)}", parameter="annotations_format", value=fmt)
    if fmt == "coco":
        return _read_coco(path)
    if fmt == "voc":
        return _read_voc(path)
    if fmt == "yolo":
        return _read_yolo(path)
    return _read_boxes_file(path, fmt, max_boxes)


# ---------------------------------------------------------------- COCO


def _read_coco(path: str) -> Annotations:
    file = require_file(path, "annotations", "a COCO JSON file")
    size = checked_os_call(lambda: file.stat().st_size, "annotations", path)
    if size > MAX_ANNOTATION_BYTES:
        raise BadInput(f"{size:,} bytes; at most {MAX_ANNOTATION_BYTES:,}", parameter="annotations", value=path)
    check_parse_memory(size, path)
    text = checked_os_call(lambda: file.read_text(encoding="utf-8-sig"), "annotations", path)
    data = parse_json(text, "annotations", path)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) or not isinstance(data.get("annotations"), list):
        raise BadInput("not COCO JSON: needs \"images\" and \"annotations\" lists", parameter="annotations", value=path)
    listed = data.get("categories")
    categories = {item.get("id"): str(item.get("name", item.get("id"))) for item in (listed if isinstance(listed, list) else [])
                  if isinstance(item, dict) and isinstance(item.get("id"), (int, str))}
    images: dict[Any, AnnotatedImage] = {}
    problems: list[dict[str, Any]] = []
    for number, item in enumerate(data["images"], start=1):
        place = f"images[{number - 1}]"
        if not isinstance(item, dict) or "id" not in item or not isinstance(item.get("file_name"), str):
            raise BadInput(f"{place}: needs \"id\" and \"file_name\"", parameter="annotations", value=path)
        image_id = _coco_id(item["id"], f"{place}.id", path)
        if image_id in images:
            raise BadInput(f"{place}: image id {image_id!r} appears twice; every image needs its own id", parameter="annotations", value=path)
        name = item["file_name"]
        if not name.strip() or "\x00" in name or not is_unicode(name):
            raise BadInput(f"{place}.file_name {name!r} is not a file name (empty, a NUL byte or a lone surrogate)",
                           parameter="annotations", value=path)
        images[image_id] = AnnotatedImage(image_id=image_id, path=name)
    annotation_ids: set[str] = set()
    for number, item in enumerate(data["annotations"], start=1):
        where = {"annotations_file": path, "annotation": number - 1}
        given = item.get("image_id") if isinstance(item, dict) else None
        image_key = _coco_id(given, f"annotations[{number - 1}].image_id", path) if given is not None else None
        if not isinstance(item, dict) or image_key not in images:
            problems.append({**where, "problem": "names no image of \"images\""})
            continue
        annotation_id = _coco_id(item["id"], f"annotations[{number - 1}].id", path) if "id" in item else str(number)
        if annotation_id in annotation_ids:
            raise BadInput(f"annotations[{number - 1}]: annotation id {annotation_id!r} appears twice; every box needs its own id",
                           parameter="annotations", value=path)
        annotation_ids.add(annotation_id)
        bbox = item.get("bbox")
        if not _numbers(bbox, 4):
            problems.append({**where, "image": image_key, "annotation_id": annotation_id, "problem": "bbox is not 4 numbers"})
            continue
        x, y, w, h = (float(v) for v in bbox or ())
        if w <= 0 or h <= 0:
            problems.append({**where, "image": image_key, "annotation_id": annotation_id,
                             "problem": f"bbox {bbox} has no area"})
            continue
        crowd = _coco_flag(item.get("iscrowd", 0))
        if crowd is None:
            problems.append({**where, "image": image_key, "annotation_id": annotation_id,
                             "problem": f"iscrowd {item.get('iscrowd')!r} is not 0 or 1"})
            continue
        category = item.get("category_id")
        label = categories.get(category) if isinstance(category, (int, str)) else None
        images[image_key].annotations.append(
            Annotation((x, y, x + w, y + h), annotation_id, label if label is not None else str(category if category is not None else ""),
                       iscrowd=crowd)
        )
    return Annotations("coco", list(images.values()), problems=problems)


def _coco_id(value: Any, where: str, path: str) -> str:
    """A COCO id as the text the output keys on: an integer or a non-empty string, nothing else."""
    if isinstance(value, bool) or not isinstance(value, (int, str)) or (isinstance(value, str) and not value.strip()):
        raise BadInput(f"{where} is {value!r}; COCO ids are integers (or non-empty strings)", parameter="annotations", value=path)
    text = str(value)
    if "\x00" in text or not is_unicode(text):
        raise BadInput(f"{where} {text!r} holds a NUL byte or a lone surrogate", parameter="annotations", value=path)
    return text


def _coco_flag(value: Any) -> bool | None:
    """COCO's 0/1 flags (``iscrowd``): 0, 1, false, true, or those as text; None for anything else."""
    if value in (0, 1) or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("0", "1", "false", "true"):
        return value.strip().lower() in ("1", "true")
    return None


def check_parse_memory(size: int, path: str) -> None:
    """Refuse, before reading it, a COCO file that Python's JSON parser could not hold here: parsing
    takes about ``COCO_PARSE_FACTOR`` times the file's size (a 249 MB instances file took 2.6–3.3 GB),
    measured against what this process may still use (``ulimit -v``, the memory available)."""
    from vizcli.common.runtime import memory_budget

    needed = size * COCO_PARSE_FACTOR
    budget = memory_budget()
    if budget is not None and needed > budget:
        raise BadInput(f"{size / 1e6:,.0f} MB of JSON takes about {needed / 1e9:,.1f} GB to parse, and this process may use "
                       f"{budget / 1e9:,.1f} GB more (ulimit -v, free memory); split it by image (one file per shard of "
                       "images) or run where more memory is free", parameter="annotations", value=path)


def _numbers(value: Any, count: int) -> bool:
    return (
        isinstance(value, list) and len(value) == count
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    )


# ---------------------------------------------------------------- Pascal VOC


def _read_voc(path: str) -> Annotations:
    folder = Path(path)
    files = sorted(folder.rglob("*.xml")) if is_folder(folder) else [require_file(path, "annotations", "a VOC .xml file")]
    images: list[AnnotatedImage] = []
    problems: list[dict[str, Any]] = []
    for file in files:
        if not file.is_file():  # a folder named x.xml, a dangling symlink
            problems.append({"annotations_file": str(file), "problem": "not a readable file (a folder, or a link to nothing)"})
            continue
        image, found = _read_voc_file(file)
        problems.extend(found)
        if image is not None:
            images.append(image)
    return Annotations("voc", images, problems=problems)


def _read_voc_file(file: Path) -> tuple[AnnotatedImage | None, list[dict[str, Any]]]:
    from defusedxml import ElementTree  # forbids entity expansion and external entities

    try:
        size = file.stat().st_size
    except OSError as error:
        return None, [{"annotations_file": str(file), "problem": error.strerror or type(error).__name__}]
    if size > MAX_XML_BYTES:
        return None, [{"annotations_file": str(file), "problem": f"{size:,} bytes; a VOC file is at most {MAX_XML_BYTES:,}"}]
    try:
        root = ElementTree.parse(str(file)).getroot()
    except Exception as error:  # ParseError, and defusedxml's EntitiesForbidden / DTDForbidden
        return None, [{"annotations_file": str(file), "problem": f"not readable XML ({type(error).__name__}: {error})"}]
    name = (root.findtext("filename") or "").strip()
    if not name:
        return None, [{"annotations_file": str(file), "problem": "no <filename>"}]
    folder = (root.findtext("folder") or "").strip()
    image = AnnotatedImage(image_id=Path(name).stem, path=name)
    problems = []
    for number, item in enumerate(root.findall("object"), start=1):
        annotation_id = f"{file.stem}#{number}"
        box = item.find("bndbox")
        try:
            coords: tuple[float, ...] = tuple(float((box.findtext(key) or "").strip()) for key in ("xmin", "ymin", "xmax", "ymax")) if box is not None else ()
        except ValueError:
            coords = ()
        if len(coords) != 4 or not all(math.isfinite(v) for v in coords) or coords[2] <= coords[0] or coords[3] <= coords[1]:
            problems.append({"annotations_file": str(file), "image": image.image_id, "annotation_id": annotation_id,
                             "problem": "<bndbox> is not xmin < xmax, ymin < ymax"})
            continue
        difficult = (item.findtext("difficult") or "0").strip() == "1"
        label = (item.findtext("name") or "").strip()
        image.annotations.append(Annotation((coords[0], coords[1], coords[2], coords[3]), annotation_id, label, difficult=difficult))
    del folder  # VOC's <folder> names the VOC year, not a path; images resolve against --images-root
    return image, problems


# ---------------------------------------------------------------- YOLO


def _read_yolo(path: str) -> Annotations:
    folder = Path(path)
    if not is_folder(folder):
        raise BadInput("YOLO labels are a folder of .txt files, one per image", parameter="annotations", value=path)
    classes = _yolo_classes(folder)
    by_key: dict[str, list[Annotation]] = {}
    problems: list[dict[str, Any]] = []
    for file in sorted(folder.rglob("*.txt")):
        if file.name in YOLO_CLASS_FILES:
            continue
        try:
            if not file.is_file():
                raise IsADirectoryError(0, "not a readable file (a folder, or a link to nothing)")
            text = file.read_text(encoding="utf-8-sig", errors="replace")
        except OSError as error:
            problems.append({"annotations_file": str(file), "problem": error.strerror or type(error).__name__})
            continue
        key = file.relative_to(folder).with_suffix("").as_posix()
        boxes: list[Annotation] = []
        for number, line in enumerate(text.splitlines(), start=1):
            parts = line.split()
            if not parts:
                continue
            annotation_id = f"{key}#{number}"
            try:
                values = [float(part) for part in parts[1:5]]
                index = int(parts[0])
            except ValueError:
                values, index = [], -1
            if len(values) != 4 or index < 0 or not all(math.isfinite(v) for v in values) or values[2] <= 0 or values[3] <= 0:
                problems.append({"annotations_file": str(file), "line": number, "annotation_id": annotation_id,
                                 "problem": "not 'class cx cy w h' with normalised numbers and w, h > 0"})
                continue
            label = classes[index] if index < len(classes) else str(index)
            boxes.append(Annotation(tuple(values), annotation_id, label, normalized=True))  # type: ignore[arg-type]
        by_key[key] = boxes
    return Annotations("yolo", None, by_key=by_key, problems=problems)


def _yolo_classes(folder: Path) -> list[str]:
    for place in (folder, folder.parent):
        for name in YOLO_CLASS_FILES:
            file = place / name
            if file.is_file():
                data = checked_os_call(file.read_bytes, "annotations", str(file))
                try:
                    text = data.decode("utf-8-sig")
                except UnicodeDecodeError as error:
                    line = data[: error.start].count(b"\n") + 1
                    raise BadInput(f"{file.name} is not UTF-8 text (line {line}); save it as UTF-8",
                                   parameter="annotations", value=str(file)) from None
                return [line.strip() for line in text.splitlines() if line.strip()]
    return []


# ---------------------------------------------------------------- CSV / JSON boxes files


def _read_boxes_file(path: str, fmt: str, max_boxes: int) -> Annotations:
    """Today's ``--boxes-file`` formats (and a CSV without a header line), keyed by image name."""
    from vizcli.roi.boxes import read_keyed_boxes

    problems: list[dict[str, Any]] = []
    keyed, every = read_keyed_boxes(path, max_boxes, parameter="annotations", on_bad_box=problems.append)
    by_key = {key: [_from_box(box) for box in boxes] for key, boxes in keyed.items()}
    return Annotations(fmt, None, by_key=by_key, every_image=[_from_box(box) for box in every] if every is not None else None,
                       problems=problems)


def _from_box(box: Any) -> Annotation:
    return Annotation(box.coords, str(box.number), box.label)


def attach(annotations: Annotations, images: Iterable[AnnotatedImage]) -> list[AnnotatedImage]:
    """``images`` (listed from a folder or a list file) with their boxes from ``annotations``,
    matched by relative path without extension, then by file stem."""
    listed = list(images)
    if annotations.every_image is not None:
        for image in listed:
            image.annotations = list(annotations.every_image)
        return listed
    by_key = annotations.by_key
    stems: dict[str, list[Annotation]] = {}
    for key, boxes in by_key.items():
        if not Path(key).suffix:  # YOLO's keys name no extension; a key with one (x.png) is not x.jpg's
            stems.setdefault(Path(key).stem, []).extend(boxes)
    for image in listed:
        key = Path(image.image_id).with_suffix("").as_posix()
        found = by_key.get(image.image_id) or by_key.get(key) or by_key.get(Path(image.image_id).name)
        image.annotations = list(found if found is not None else stems.get(Path(key).name, []))
    return listed
