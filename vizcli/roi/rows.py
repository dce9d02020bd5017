"""The roi dataset job: ``vizcli roi DATASET -o out.parquet`` (or ``-o DIR/``), one row per box.

Schema ``vizcli.roi/2``, one row per box:

==============  ==========================  ==============================================
column          type                        meaning
==============  ==========================  ==============================================
image           string                      the image's id (COCO id, else its relative path)
path            string                      the file it was read from
width, height   int32                       the image's size in pixels (after EXIF rotation)
annotation_id   string                      COCO's id, ``FILE#N`` (VOC, YOLO), box number (CSV/JSON)
label           string                      category name (class index when no names are known)
iscrowd         bool                        COCO's flag (false elsewhere)
difficult       bool                        VOC's flag (false elsewhere)
box             fixed_size_list<double, 4>  x1,y1,x2,y2 in image pixels, clipped to the image
feature_box     fixed_size_list<double, 4>  the box in cells of its level's feature map
level           string                      the stage or pyramid level pooled from (``layer3``, ``0``…``3``)
features_<op>   fixed_size_list<float, C·h·w>  the pooled features, C-major (reshape to C×h×w)
==============  ==========================  ==============================================

The file's metadata (key ``vizcli``, JSON) records model, weights, layer and levels with their
spatial scales, ops, output size, sampling ratio, aligned, dtype and the shard. Everything else —
units, resume, shards, problems, Ray — is ``vizcli.datasets``.
"""

from __future__ import annotations

import json
import math
from typing import Any

from vizcli.datasets.run import DatasetJob, Item, ItemsPiece
from vizcli.roi.annotations import AnnotatedImage

IMAGES_PER_PIECE = 4096  # images a Ray read task plans at a time


def roi_schema(feature_sizes: dict[str, int], scored: bool = False) -> Any:
    """The rows' schema: the columns above, ``features_<op>`` per op (``{op: C·h·w}``), and with a
    detector (``scored``) the detection's ``score``."""
    import pyarrow as pa

    from vizcli.roi.detectors import feature_column

    fields = [
        pa.field("image", pa.string()), pa.field("path", pa.string()),
        pa.field("width", pa.int32()), pa.field("height", pa.int32()),
        pa.field("annotation_id", pa.string()), pa.field("label", pa.string()),
        pa.field("iscrowd", pa.bool_()), pa.field("difficult", pa.bool_()),
        pa.field("box", pa.list_(pa.float64(), 4)), pa.field("feature_box", pa.list_(pa.float64(), 4)),
        pa.field("level", pa.string()),
    ]
    if scored:
        fields.append(pa.field("score", pa.float32()))
    fields += [pa.field(feature_column(op), pa.list_(pa.float32(), size)) for op, size in feature_sizes.items()]
    return pa.schema(fields)


def image_batch(images: list[AnnotatedImage]) -> dict[str, list[Any]]:
    """``RoIExtractor``'s input batch for ``images``, with what the rows need besides its results."""
    return {
        "id": [image.image_id for image in images], "image": [image.path for image in images],
        "boxes": [[list(annotation.box) for annotation in image.annotations] for image in images],
        "normalized": [[annotation.normalized for annotation in image.annotations] for image in images],
        "annotation_ids": [[annotation.annotation_id for annotation in image.annotations] for image in images],
        "labels": [[annotation.label for annotation in image.annotations] for image in images],
        "iscrowd": [[annotation.iscrowd for annotation in image.annotations] for image in images],
        "difficult": [[annotation.difficult for annotation in image.annotations] for image in images],
    }


def box_rows(result: dict[str, Any], schema: Any) -> Any:
    """One row per pooled box of an ``RoIExtractor`` result batch."""
    import numpy as np
    import pyarrow as pa

    columns: dict[str, list[Any]] = {name: [] for name in schema.names if not name.startswith("features_")}
    ops = [name for name in schema.names if name.startswith("features_")]
    features: dict[str, list[Any]] = {name: [] for name in ops}
    for row, image_id in enumerate(result["id"]):
        kept = [int(k) for k in result["kept"][row]]
        if not kept:
            continue
        for position, index in enumerate(kept):
            columns["image"].append(str(image_id))
            columns["path"].append(str(result["image"][row]))
            columns["width"].append(int(result["width"][row]))
            columns["height"].append(int(result["height"][row]))
            given = bool(result["annotation_ids"][row])  # a detector's boxes have no annotation behind them
            columns["annotation_id"].append(str(result["annotation_ids"][row][index]) if given else str(index))
            label = result["labels"][row][index] if given else result["class_name"][row][position]
            columns["label"].append(None if label is None else str(label))
            columns["iscrowd"].append(bool(result["iscrowd"][row][index]) if given else False)
            columns["difficult"].append(bool(result["difficult"][row][index]) if given else False)
            if "score" in columns:
                score = float(result["score"][row][position])
                columns["score"].append(None if math.isnan(score) else score)
            columns["box"].append([float(value) for value in result["box"][row][position]])
            columns["feature_box"].append([float(value) for value in result["feature_box"][row][position]])
            columns["level"].append(str(result["levels"][row][position]))
        for name in ops:
            features[name].append(np.asarray(result[name][row], dtype=np.float32).reshape(len(kept), -1))
    arrays = [pa.array(columns[field.name], type=field.type) for field in schema if not field.name.startswith("features_")]
    for name in ops:
        size = schema.field(name).type.list_size
        stacked = np.concatenate(features[name]) if features[name] else np.zeros((0, size), np.float32)
        arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(stacked.reshape(-1)), size))
    return pa.Table.from_arrays(arrays, schema=schema)


def extractor_problems(batch: dict[str, Any], result: dict[str, Any]) -> list[dict[str, Any]]:
    """The problems of a result batch; a box's ``annotation_id`` (its index among the image's boxes,
    as ``RoIExtractor`` numbers them) becomes the dataset's id for that box."""
    problems = []
    for row, text in enumerate(result["problems"]):
        ids = result["annotation_ids"][row] if "annotation_ids" in result else None
        for problem in json.loads(str(text)):
            index = problem.get("annotation_id")
            if ids is not None and isinstance(index, str) and index.isdigit() and int(index) < len(ids):
                problem["annotation_id"] = str(ids[int(index)])
            problems.append(problem)
    return problems


UNIT_BOXES = 256  # boxes a unit holds at most (about 12 MB of ResNet-18 layer3 7×7 features): work spreads over workers


def roi_job(settings: dict[str, Any], extractor: Any, annotation_problems: list[dict[str, Any]],
            batch_size: int = 8, decode_workers: int = 2, threads: int | None = None) -> DatasetJob:
    """The job for ``run_dataset``: ``type(extractor)(**settings)`` (``RoIExtractor`` or ``Detector``) on units of images.

    ``extractor``: one already built from ``settings`` (the local engine uses it; Ray actors build their own).
    """
    from vizcli.common.runtime import flat_heap_env
    from vizcli.roi.detect import Detector
    from vizcli.roi.detectors import feature_column
    from vizcli.roi.kind import ROI_KIND

    shapes: dict[str, tuple[int, ...]] = extractor.feature_shapes
    sizes = {op: math.prod(shape) for op, shape in shapes.items()}
    kwargs = {**settings, "threads": threads, "on_error": "skip", "batch_size": batch_size, "decode_workers": decode_workers}
    extractor.on_error, extractor.batch_size, extractor.decode_workers = "skip", batch_size, decode_workers
    return DatasetJob(
        command="roi", key=ROI_KIND.key, schema=roi_schema(sizes, scored=isinstance(extractor, Detector)),
        metadata={**extractor.metadata(), "settings": recorded_settings(settings), "settings_version": ROI_KIND.settings_version},
        worker=type(extractor), worker_kwargs=kwargs, to_batch=image_batch, to_rows=box_rows,
        row_bytes=4 * max(1, sum(sizes.values())), max_unit_rows=UNIT_BOXES, problems_of=extractor_problems,
        array_shapes={feature_column(op): shape for op, shape in shapes.items()},
        actor_env=flat_heap_env(mapped_blocks=not isinstance(extractor, Detector)), early_problems=list(annotation_problems), local_worker=extractor,
    )


def build_worker(settings: dict[str, Any]) -> Any:
    """The worker ``settings`` describe: a ``Detector`` when they name one, else an ``RoIExtractor``."""
    if "detector" in settings:
        from vizcli.roi.detect import Detector

        return Detector(**settings)
    from vizcli.roi.extract import RoIExtractor

    return RoIExtractor(**settings)


def recorded_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The worker's settings as the output records them (``verify`` rebuilds the worker from them)."""
    import os

    kept = {name: value for name, value in settings.items() if name not in ("device", "threads")}
    for name in ("weights", "class_names"):  # files, as absolute paths: verify finds them from any folder (or with --root)
        if isinstance(kept.get(name), str) and os.path.isfile(kept[name]):
            kept[name] = os.path.abspath(kept[name])
    return json.loads(json.dumps(kept))  # as JSON reads it back (tuples as lists): resume compares the two


def image_pieces(images: list[AnnotatedImage], rows_per_image: int | None = None) -> list[ItemsPiece]:
    """The dataset's images, as pieces for ``run_dataset``. With given boxes an image without boxes
    has no rows; a detector (``rows_per_image``: its ``max_detections``) runs on every image."""
    items = [Item(image.image_id, position, rows_per_image or len(image.annotations), image)
             for position, image in enumerate(images) if image.annotations or rows_per_image]
    return [ItemsPiece(tuple(items[start:start + IMAGES_PER_PIECE])) for start in range(0, len(items), IMAGES_PER_PIECE)]
