"""``vizcli roi export OUTPUT --layout butd-tsv|butd-npz -o DEST``: a finished roi output in the
layouts vision-language code reads bottom-up-attention features in.

* ``butd-tsv``: one line per image, tab-separated, the fields of peteanderson80/bottom-up-attention's
  ``tools/generate_tsv.py``: ``image_id, image_w, image_h, num_boxes, boxes, features``, where
  ``boxes`` (``[K, 4]`` x1,y1,x2,y2 in image pixels) and ``features`` (``[K, D]``) are base64 of
  float32 bytes; then ``objects_id`` (int64) and ``objects_conf`` (float32), as in LXMERT's
  ``obj36`` files. Readers that name the first six fields (hengyuan-hu/bottom-up-attention-vqa's
  ``detection_features_converter.py``, self-critical.pytorch's ``make_bu_data.py``) read it as it is.
* ``butd-npz``: one ``IMAGE.npz`` per image (the id without its extension; subfolders kept), the
  arrays of MILVLG/bottom-up-attention.pytorch's ``extract_features.py`` (read by MCAN-VQA and
  OpenVQA): ``x`` ``[K, D]``, ``bbox`` ``[K, 4]``, ``num_bbox``, ``image_w``, ``image_h``; the
  classes and scores as top-level ``objects_id`` and ``objects_conf``, not inside a pickled
  ``info`` dict, so ``np.load(..., allow_pickle=False)`` reads every file.

``D`` is the box head's 1024 values (``features_box_head``) or, with ``feature="align"``, the
RoIAlign map averaged over its bins (``C`` values, as the original's ``pool5_flat``).
"""

from __future__ import annotations

import base64
import csv
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from vizcli.common.errors import BadInput
from vizcli.common.formats import ROI_DATASET_SCHEMA

LAYOUTS = ("butd-tsv", "butd-npz")
TSV_FIELDS = ["image_id", "image_w", "image_h", "num_boxes", "boxes", "features", "objects_id", "objects_conf"]


@dataclass
class ImageFeatures:
    """One image's rows in the bottom-up-attention shape."""

    image_id: str
    width: int
    height: int
    boxes: Any  # float32 [K, 4]
    features: Any  # float32 [K, D]
    objects_id: Any  # int64 [K] (-1: a given box, no class)
    objects_conf: Any  # float32 [K] (NaN: a given box, no score)


def export_command(output: str, layout: str, destination: str | None, feature: str | None) -> tuple[str, int]:
    """Write ``output``'s rows in ``layout`` to ``destination``; returns (destination, images)."""
    from vizcli.datasets.merge import read_output

    if layout not in LAYOUTS:
        raise BadInput(f"use one of {', '.join(LAYOUTS)}", parameter="layout", value=layout)
    if not destination:
        raise BadInput(f"give where to write: -o feats.tsv ({LAYOUTS[0]}) or -o FOLDER/ ({LAYOUTS[1]})")
    if layout == "butd-npz" and destination == "-":
        raise BadInput("butd-npz writes a folder of files, which stdout cannot hold; give -o FOLDER/ (or --layout "
                       "butd-tsv for stdout)", parameter="destination", value=destination)
    from vizcli.common.files import refuse_overwriting_inputs

    refuse_overwriting_inputs(destination, [output], parameter="destination")  # a shard folder: every file in it
    schema, metadata, units = read_output(output, ROI_DATASET_SCHEMA)
    column = _feature_column(schema, feature, output)
    categories = _categories(metadata)
    shape = metadata.get("feature_shapes", {}).get("align") or metadata.get("feature_shape") or [0, 1, 1]
    images = image_features(units, output, column, categories, bins=int(shape[1]) * int(shape[2]))
    if layout == "butd-tsv":
        return destination, write_tsv(images, destination)
    return destination, write_npz_folder(images, destination)


def _feature_column(schema: Any, feature: str | None, output: str) -> str:
    names = [] if schema is None else [name for name in schema.names if name.startswith("features_")]
    wanted = {"box-head": "features_box_head", "align": "features_align", "pool": "features_pool"}
    if feature is None:
        for choice in ("features_box_head", "features_align", "features_pool"):
            if choice in names:
                return choice
        raise BadInput("holds no features (a boxes-only detector run); run with --op box-head or align", parameter="stored",
                       value=output)
    if feature not in wanted or wanted[feature] not in names:
        stored = ", ".join(name.removeprefix("features_").replace("_", "-") for name in names) or "none"
        raise BadInput(f"is not stored in {output} (it holds: {stored})", parameter="feature", value=feature)
    return wanted[feature]


def _categories(metadata: dict[str, Any]) -> dict[str, int]:
    """Class name → the detector's class index: the names the output recorded (unique, so each maps
    back to one index), else torchvision's for its detector."""
    from vizcli.roi.detectors import DETECTORS, detector_categories

    recorded = metadata.get("categories")
    if isinstance(recorded, list) and all(isinstance(name, str) for name in recorded):
        return {name: index for index, name in enumerate(recorded)}
    model = str(metadata.get("model", ""))
    if model not in DETECTORS:
        return {}
    return {name: index for index, name in enumerate(detector_categories(model))}


def image_features(units: list[Path], output: str, column: str, categories: dict[str, int],
                   bins: int = 49) -> Iterator[ImageFeatures]:
    """The output's rows gathered per image, in stored order (an image's rows are stored together);
    a pooled map (``bins`` values a channel) is averaged to one value a channel."""
    import numpy as np

    from vizcli.datasets.units import read_unit

    done: set[str] = set()
    current: list[dict[str, Any]] = []

    def finish(rows: list[dict[str, Any]]) -> ImageFeatures:
        image = str(rows[0]["image"])
        if image in done:
            raise BadInput(f"the rows of image {image!r} are not stored together; merge the output first", parameter="stored",
                           value=output)
        done.add(image)
        vectors = np.asarray([row[column] for row in rows], dtype=np.float32)
        if column == "features_align" or column == "features_pool":
            vectors = vectors.reshape(len(rows), -1, bins).mean(axis=2)
        scores = [row.get("score") for row in rows]
        return ImageFeatures(
            image, int(rows[0]["width"]), int(rows[0]["height"]), np.asarray([row["box"] for row in rows], dtype=np.float32),
            vectors, np.asarray([categories.get(str(row["label"]), -1) for row in rows], dtype=np.int64),
            np.asarray([np.nan if score is None else score for score in scores], dtype=np.float32))

    for unit in units:
        table = read_unit(unit, output, "output")
        wanted = [name for name in ("image", "width", "height", "box", "label", "score", column) if name in table.schema.names]
        for row in table.select(wanted).to_pylist():
            if current and row["image"] != current[0]["image"]:
                yield finish(current)
                current = []
            current.append(row)
    if current:
        yield finish(current)


def _b64(array: Any) -> str:
    import numpy as np

    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def write_tsv(images: Iterator[ImageFeatures], destination: str) -> int:
    """The bottom-up-attention TSV, written atomically (``-``: to stdout, as every command writes
    there); returns the image count."""
    from vizcli.common.files import check_writable, open_destination

    check_writable(destination, parameter="destination")
    count = 0
    with open_destination(destination, binary=False) as handle:
        writer = csv.DictWriter(handle, fieldnames=TSV_FIELDS, delimiter="\t", lineterminator="\n")
        for image in images:
            writer.writerow({"image_id": image.image_id, "image_w": image.width, "image_h": image.height,
                             "num_boxes": len(image.boxes), "boxes": _b64(image.boxes), "features": _b64(image.features),
                             "objects_id": _b64(image.objects_id), "objects_conf": _b64(image.objects_conf)})
            count += 1
    return count


def npz_name(image_id: str) -> PurePosixPath:
    """``a/b.jpg`` → ``a/b.npz``; an id that is an absolute path or leaves the folder (a dataset made from a list of image
    paths) is named by its file name alone: ``/data/x.png`` → ``x.npz`` (two images sharing a name are refused)."""
    path = PurePosixPath(image_id)
    if path.is_absolute() or ".." in path.parts:
        path = PurePosixPath(path.name)
    if not path.parts or path.name in ("", ".", ".."):
        raise BadInput(f"image id {image_id!r} cannot name a file inside the folder", parameter="destination")
    return path.with_suffix(".npz")


def write_npz_folder(images: Iterator[ImageFeatures], destination: str) -> int:
    """One ``.npz`` per image, written into a temporary folder renamed to ``destination`` when whole.

    ``destination`` must not exist (a user's folder, even an empty one, or a link, even a dangling one,
    is never replaced); the folders are made as ``mkdir`` makes them (0777 less the umask). Two images
    whose names differ only in their extension (``x.png``, ``x.jpg``) would both be ``x.npz``: refused.
    """
    import numpy as np

    target = Path(destination.rstrip("/") or destination)
    if os.path.lexists(target):
        what = "a link" if target.is_symlink() else "a folder" if target.is_dir() else "a file"
        raise BadInput(f"exists ({what}); butd-npz writes a new folder and never replaces one: give a new name, or "
                       "remove it", parameter="destination", value=destination)
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise BadInput(f"its folder {parent} does not exist", parameter="destination", value=destination)
    from vizcli.common.files import checked_os_call

    temporary = Path(checked_os_call(lambda: tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent),
                                     "destination", destination))
    count = 0
    written: dict[PurePosixPath, str] = {}  # file name → the image id it holds
    try:
        for image in images:
            name = npz_name(image.image_id)
            if name in written:
                raise BadInput(f"images {written[name]!r} and {image.image_id!r} would both be {name}, which readers look up "
                               "by the name without its extension; rename one, or export --layout butd-tsv (full ids)",
                               parameter="destination", value=destination)
            written[name] = image.image_id
            file = temporary / name
            file.parent.mkdir(parents=True, exist_ok=True)
            np.savez(file, x=image.features, bbox=image.boxes, num_bbox=np.int64(len(image.boxes)),
                     image_w=np.int64(image.width), image_h=np.int64(image.height), objects_id=image.objects_id,
                     objects_conf=image.objects_conf)
            count += 1
        os.chmod(temporary, 0o777 & ~_umask())  # mkdtemp's 0700, as mkdir would have made it
        if os.path.lexists(target):  # made while the files were written: still never replaced
            raise BadInput("appeared while the files were written; nothing was replaced: give a new name",
                           parameter="destination", value=destination)
        temporary.rename(target)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)
    return count


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
