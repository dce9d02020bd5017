"""``vizcli roi DATASET -o out.parquet`` (or ``-o DIR/``): every box of a dataset, streamed to rows.

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
spatial scales, ops, output size, sampling ratio, aligned, dtype and the shard.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vizcli.common.errors import Interrupted, RunFailure
from vizcli.common.sharding import Shard
from vizcli.common.tables import TableSink, is_directory_output
from vizcli.common.unique_keys import KeyIndex
from vizcli.roi.extract import Prepared, RoIExtractor, _same_size_groups, prepared_stream

ON_ERROR = ("skip", "stop")


def roi_schema(ops: tuple[str, ...], feature_size: int) -> Any:
    import pyarrow as pa

    fields = [
        pa.field("image", pa.string()), pa.field("path", pa.string()),
        pa.field("width", pa.int32()), pa.field("height", pa.int32()),
        pa.field("annotation_id", pa.string()), pa.field("label", pa.string()),
        pa.field("iscrowd", pa.bool_()), pa.field("difficult", pa.bool_()),
        pa.field("box", pa.list_(pa.float64(), 4)), pa.field("feature_box", pa.list_(pa.float64(), 4)),
        pa.field("level", pa.string()),
    ]
    fields += [pa.field(f"features_{op}", pa.list_(pa.float32(), feature_size)) for op in ops]
    return pa.schema(fields)


def rows_table(items: list[Prepared], results: list[dict[str, Any]], ops: tuple[str, ...], schema: Any) -> Any:
    """One row per pooled box of ``items``."""
    import numpy as np
    import pyarrow as pa

    columns: dict[str, list[Any]] = {name: [] for name in schema.names if not name.startswith("features_")}
    for item, result in zip(items, results):
        for position, index in enumerate(item.kept):
            annotation = item.image.annotations[index]
            columns["image"].append(item.image.image_id)
            columns["path"].append(item.image.path)
            columns["width"].append(item.size[0])
            columns["height"].append(item.size[1])
            columns["annotation_id"].append(annotation.annotation_id)
            columns["label"].append(annotation.label)
            columns["iscrowd"].append(annotation.iscrowd)
            columns["difficult"].append(annotation.difficult)
            columns["box"].append(list(item.boxes[position]))
            columns["feature_box"].append(result["cells"][position].astype(float).tolist())
            columns["level"].append(result["levels"][position])
    arrays = [pa.array(columns[field.name], type=field.type) for field in schema if not field.name.startswith("features_")]
    for op in ops:
        stacked = np.concatenate([result[op].reshape(len(result[op]), -1) for result in results]) if results else np.zeros((0, 1))
        size = schema.field(f"features_{op}").type.list_size
        arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(stacked.reshape(-1).astype(np.float32)), size))
    return pa.Table.from_arrays(arrays, schema=schema)


@dataclass
class DatasetSummary:
    output: str
    images: int  # images pooled in this run
    skipped: int  # images already on disk (--resume)
    rows: int  # rows written in this run
    problems: int
    problems_path: str | None


def problems_path_for(output: str) -> Path:
    """``DIR/problems.jsonl`` for a shard folder, ``out.problems.jsonl`` beside a Parquet file."""
    if is_directory_output(output):
        return Path(output) / "problems.jsonl"
    path = Path(output)
    return path.with_name(path.stem + ".problems.jsonl")


def run_dataset(
    images: list[Any],
    annotation_problems: list[dict[str, Any]],
    extractor: RoIExtractor,
    output: str,
    shard: Shard | None = None,
    resume: bool = False,
    shard_format: str = "safetensors",
    unit_megabytes: float = 16.0,
    batch_size: int = 8,
    workers: int = 2,
    on_error: str = "skip",
    progress: Callable[[int], None] | None = None,
    warn: Callable[[str], None] = lambda message: None,
    engine: Engine | None = None,
) -> DatasetSummary:
    """Pool every box of ``images`` into ``output``, a unit of about ``unit_megabytes`` at a time.

    ``engine`` turns the images into pooled groups: ``local_engine`` (the default: decode threads
    and the backbone in this process) or ``ray_engine`` (``RoIExtractor`` actors on Ray).
    """
    import math

    shard = shard or Shard()
    metadata = {**extractor.metadata(), "shard": str(shard)}
    feature_size = math.prod(extractor.feature_shape)
    schema = roi_schema(extractor.ops, feature_size)
    shapes: dict[str, tuple[int, ...]] = {f"features_{op}": extractor.feature_shape for op in extractor.ops}
    sink = TableSink(output, schema, metadata, "image", shard_format, resume, shapes)
    done = sink.done_keys() if resume else KeyIndex([])
    todo = [image for image in images if image.image_id not in done and image.annotations]
    rows_per_unit = max(1, int(unit_megabytes * (1 << 20) // (4 * feature_size * len(extractor.ops))))
    problems_file = problems_path_for(output)
    count = {"problems": 0, "rows": 0, "images": 0}
    try:
        groups = (engine or local_engine(extractor, batch_size, workers))
        _run(sink, todo, annotation_problems, groups, problems_file, resume, on_error, rows_per_unit, schema, extractor.ops,
             count, progress)
    except Interrupted as stop:
        kept = f"{len(sink.units)} finished units are kept in {sink.folder}; rerun with --resume to finish"
        raise Interrupted(stop.signal_number, kept) from None
    final = sink.finish()
    if count["problems"] == 0 and (not resume or problems_file.stat().st_size == 0):
        problems_file.unlink(missing_ok=True)
    return DatasetSummary(final, count["images"], len(images) - len(todo), count["rows"], count["problems"],
                          str(problems_file) if problems_file.exists() else None)


Engine = Callable[[list[Any], Callable[[dict[str, Any]], None]], Iterator[tuple[list[Prepared], list[dict[str, Any]]]]]


def local_engine(extractor: RoIExtractor, batch_size: int, workers: int) -> Engine:
    """Groups of images of one padded size (at most ``batch_size``), decoded in ``workers`` threads
    and pooled in this process."""

    def run(todo: list[Any], on_problem: Callable[[dict[str, Any]], None]) -> Iterator[tuple[list[Prepared], list[dict[str, Any]]]]:
        stream = prepared_stream(extractor, todo, workers, on_problem)
        # an image whose boxes all fell outside it has its problems recorded and nothing to pool
        for group in _same_size_groups((item for item in stream if item.boxes), batch_size):
            yield group, extractor.pool(group)

    return run


def ray_engine(settings: dict[str, Any], ops: tuple[str, ...], batch_size: int, actors: int, threads: int) -> Engine:
    """The same groups computed by ``RoIExtractor(**settings)`` actors on Ray: blocks of ``batch_size``
    images (paths every node can read) go out, pooled boxes and problems come back."""

    def run(todo: list[Any], on_problem: Callable[[dict[str, Any]], None]) -> Iterator[tuple[list[Prepared], list[dict[str, Any]]]]:
        from vizcli.common.ray_engine import map_blocks

        by_id = {image.image_id: image for image in todo}
        blocks = ({"id": [image.image_id for image in chunk], "image": [image.path for image in chunk],
                   "boxes": [[list(annotation.box) for annotation in image.annotations] for image in chunk],
                   "normalized": [[annotation.normalized for annotation in image.annotations] for image in chunk]}
                  for chunk in (todo[start:start + batch_size] for start in range(0, len(todo), batch_size)))
        kwargs = {**settings, "threads": threads, "on_error": "skip"}  # problems come back; the driver applies --on-error
        for batch in map_blocks(blocks, RoIExtractor, kwargs, actors, threads):
            items, results = [], []
            for row, image_id in enumerate(batch["id"]):
                for problem in json.loads(str(batch["problems"][row])):
                    on_problem(problem)
                kept = [int(k) for k in batch["kept"][row]]
                if not kept:
                    continue
                boxes = [(float(box[0]), float(box[1]), float(box[2]), float(box[3])) for box in batch["box"][row]]
                size = (int(batch["width"][row]), int(batch["height"][row]))
                items.append(Prepared(by_id[str(image_id)], None, size, 1.0, boxes, kept))
                result = {"levels": [str(level) for level in batch["levels"][row]], "cells": batch["feature_box"][row]}
                for op in ops:
                    result[op] = batch[f"features_{op}"][row]
                results.append(result)
            if items:
                yield items, results

    return run


def _run(sink: TableSink, todo: list[Any], annotation_problems: list[dict[str, Any]], groups: Engine,
         problems_file: Path, resume: bool, on_error: str, rows_per_unit: int, schema: Any, ops: tuple[str, ...],
         count: dict[str, int], progress: Callable[[int], None] | None) -> None:
    with open(problems_file, "a" if resume else "w", encoding="utf-8") as log:

        def on_problem(problem: dict[str, Any]) -> None:
            count["problems"] += 1
            log.write(json.dumps(problem, ensure_ascii=False) + "\n")
            log.flush()
            if on_error == "stop":
                raise RunFailure(f"{problem.get('image') or problem.get('annotations_file')}: {problem['problem']} "
                                 f"(--on-error stop; finished units are kept: rerun with --resume)")

        for problem in annotation_problems:
            on_problem(problem)
        pending: list[tuple[list[Prepared], list[dict[str, Any]]]] = []
        pending_rows = 0
        for group, results in groups(todo, on_problem):
            pending.append((group, results))
            pending_rows += sum(len(item.boxes) for item in group)
            count["images"] += len(group)
            if progress is not None:
                progress(len(group))
            if pending_rows >= rows_per_unit:
                count["rows"] += _flush(sink, pending, ops, schema)
                pending, pending_rows = [], 0
        count["rows"] += _flush(sink, pending, ops, schema)


def _flush(sink: TableSink, pending: list[tuple[list[Prepared], list[dict[str, Any]]]], ops: tuple[str, ...], schema: Any) -> int:
    if not pending:
        return 0
    items = [item for group, _ in pending for item in group]
    results = [result for _, group_results in pending for result in group_results]
    table = rows_table(items, results, ops, schema)
    sink.write(table)
    return int(table.num_rows)
