"""What ``vizcli roi`` and ``vizcli detect`` write, in one place: the roi output kind.

Dataset outputs (schema ``vizcli.roi/2``) hold one row per box (``vizcli.roi.rows``); single-image
files (``vizcli.roi/1`` from RoIAlign/RoIPool, ``vizcli.roi.detections/1`` from a detector) hold
the ``[K, C, h, w]`` arrays and a metadata document. ``verify`` rebuilds the recorded worker
(``RoIExtractor`` or ``Detector``) from the validated settings and recomputes every stored column
of the sampled images; ``export`` writes the bottom-up-attention layouts (``vizcli.roi.export``).
"""

from __future__ import annotations

from typing import Any

from vizcli.common.errors import BadInput
from vizcli.common.formats import ROI_DATASET_SCHEMA, ROI_SCHEMA
from vizcli.datasets.kinds import OutputKind, setting

DETECTIONS_SCHEMA = "vizcli.roi.detections/1"
TOLERANCES = {"float32": 1e-4, "bfloat16": 5e-2}  # by the recorded compute dtype
_TEXT = (str, type(None))
_NUMBER = (int, float, type(None))

ROI_KIND = OutputKind(
    command="roi",
    schema=ROI_DATASET_SCHEMA,
    key="image",
    merge_keys=("image", "annotation_id"),
    settings_version=2,
    settings={
        # RoIExtractor (vizcli roi)
        "model": setting(str), "layer": setting(str), "output_size": setting(str, int, list), "sampling_ratio": setting(int),
        "aligned": setting(bool), "max_size": setting(int, type(None)), "dtype": setting(str),
        # Detector (vizcli detect)
        "detector": setting(str), "detect": setting(bool), "min_score": setting(int, float), "max_detections": setting(int),
        "min_detections": setting(int, type(None)), "classes": setting(str, list, type(None)), "class_names": setting(*_TEXT),
        "num_classes": setting(int, type(None)),
        # both
        "weights": setting(*_TEXT), "op": setting(str, list), "seed": setting(int), "max_pixels": setting(int, type(None)),
        "strict": setting(bool), "batch_size": setting(int), "decode_threads": setting(int, type(None)),
        "decode_workers": setting(int, type(None)),
    },
    recompute="vizcli.roi.kind:recompute_rows",
    tolerance="vizcli.roi.kind:tolerance",
    derived_columns=("path",),
    single_schemas=(ROI_SCHEMA, DETECTIONS_SCHEMA),
    single_rows="vizcli.roi.kind:single_file_rows",
    export_layouts={"butd-tsv": "vizcli.roi.kind:export_layout", "butd-npz": "vizcli.roi.kind:export_layout"},
    describe="one row per box, from vizcli roi or detect",
)


def tolerance(metadata: dict[str, Any]) -> float:
    """The largest difference ``verify`` accepts: float noise of the recorded compute dtype."""
    settings = metadata.get("settings") or {}
    return TOLERANCES.get(str(settings.get("dtype") or metadata.get("dtype") or "float32"), 1e-4)


def recompute_rows(stored: Any, metadata: dict[str, Any], settings: dict[str, Any], options: dict[str, Any]) -> tuple[Any, list[str]]:
    """``stored``'s images pooled again by the worker ``settings`` describe, as rows of ``stored``'s schema.

    ``options``: ``device``, and ``root`` (a folder the inputs moved to; see ``vizcli.common.relocate``).
    """
    from vizcli.common.relocate import find_again
    from vizcli.roi.annotations import AnnotatedImage, Annotation
    from vizcli.roi.rows import box_rows, build_worker, image_batch

    root = options.get("root")
    if settings.get("weights") not in (None, "DEFAULT") and not str(settings["weights"]).isupper():
        settings = {**settings, "weights": find_again(str(settings["weights"]), root, "weights")}
    worker = build_worker({**settings, "device": options.get("device", "auto"), "on_error": "skip"})
    found = []
    recorded, rebuilt = metadata.get("weights_sha256"), getattr(worker, "weights_sha256", None)
    if recorded and rebuilt and recorded != rebuilt:
        found.append(f"the weights are not the recorded ones (sha256 {rebuilt[:12]}… here, {str(recorded)[:12]}… recorded)")
    detecting = bool(settings.get("detect"))
    images: dict[str, AnnotatedImage] = {}
    for row in stored.select(["image", "path", "annotation_id", "box", "label"]).to_pylist():
        image = images.get(row["image"])
        if image is None:
            image = images[row["image"]] = AnnotatedImage(row["image"], find_again(row["path"], root, f"image {row['image']!r}"))
        if not detecting:
            image.annotations.append(Annotation(tuple(row["box"]), str(row["annotation_id"]), row["label"] or ""))
    result = worker(image_batch(list(images.values())))
    return box_rows(result, _full_schema(stored.schema)).select(stored.schema.names), found


def _full_schema(stored: Any) -> Any:
    """The dataset schema whose columns ``stored``'s are (a single-image file stores fewer)."""
    from vizcli.roi.rows import roi_schema

    sizes = {name.removeprefix("features_").replace("_", "-"): stored.field(name).type.list_size
             for name in stored.names if name.startswith("features_")}
    return roi_schema(sizes, scored="score" in stored.names)


def single_file_rows(arrays: dict[str, Any], metadata: dict[str, Any], path: str) -> Any:
    """A single-image file (``vizcli.roi/1`` or ``vizcli.roi.detections/1``) as rows of the dataset schema: one per box."""
    import numpy as np
    import pyarrow as pa

    if "image_index" in arrays:
        return _detection_rows(arrays, metadata, path)
    boxes = metadata.get("boxes") or metadata.get("detections") or []
    images = metadata.get("images") or []
    if not isinstance(boxes, list) or not isinstance(images, list):
        raise BadInput("its metadata has no boxes and images lists; not a vizcli roi file", parameter="output", value=path)
    features = {name: np.asarray(value) for name, value in arrays.items() if getattr(value, "ndim", 0) >= 2}
    for name, value in features.items():
        if value.shape[0] != len(boxes):
            raise BadInput(f"its array {name!r} has {value.shape[0]} rows for {len(boxes)} boxes; the file is damaged",
                           parameter="output", value=path)
    columns: dict[str, list[Any]] = {name: [] for name in ("image", "path", "width", "height", "annotation_id", "label",
                                                             "iscrowd", "difficult", "box", "feature_box", "level")}
    for number, box in enumerate(boxes, start=1):
        image = images[int(box.get("image", 0))] if images else {}
        width, height = (list(image.get("size") or [0, 0]) + [0, 0])[:2]
        columns["image"].append(str(image.get("path", "")))
        columns["path"].append(str(image.get("path", "")))
        columns["width"].append(int(width))
        columns["height"].append(int(height))
        columns["annotation_id"].append(str(box.get("number", number)))
        columns["label"].append(str(box.get("label", "")))
        columns["iscrowd"].append(False)
        columns["difficult"].append(False)
        columns["box"].append([float(value) for value in box.get("box", [0, 0, 0, 0])])
        columns["feature_box"].append([float(value) for value in box.get("feature_box", [0, 0, 0, 0])])
        columns["level"].append(str(box.get("level", "")))
    quads = ("box", "feature_box")
    table = pa.table({name: pa.array(values, type=pa.list_(pa.float64(), 4) if name in quads else
                                     pa.int32() if name in ("width", "height") else None)
                      for name, values in columns.items()})
    if "score" in boxes[0] if boxes else False:
        table = table.append_column("score", pa.array([float(box["score"]) for box in boxes], type=pa.float32()))
    for name, value in features.items():
        flat = value.reshape(value.shape[0], -1).astype("float32")
        table = table.append_column(f"features_{name.removeprefix('roi_').replace('-', '_')}",
                                    pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), flat.shape[1]))
    return table


def _detection_rows(arrays: dict[str, Any], metadata: dict[str, Any], path: str) -> Any:
    """A ``vizcli detect`` file (boxes, scores, labels, image_index and features, stacked over its images) as rows."""
    import numpy as np
    import pyarrow as pa

    images = [str(image) for image in metadata.get("images") or []]
    categories = [str(name) for name in metadata.get("categories") or []]
    image_index = np.asarray(arrays["image_index"]).astype(int)
    if image_index.size and (image_index.min() < 0 or image_index.max() >= len(images)):
        raise BadInput("its image_index names images its metadata does not list; the file is damaged", parameter="output", value=path)
    labels = np.asarray(arrays["labels"]).astype(int) if "labels" in arrays else None
    seen: dict[int, int] = {}
    numbers = []
    for image in image_index:
        numbers.append(str(seen.get(int(image), 0)))
        seen[int(image)] = seen.get(int(image), 0) + 1
    columns: dict[str, Any] = {
        "image": pa.array([images[i] for i in image_index], pa.string()), "path": pa.array([images[i] for i in image_index], pa.string()),
        "annotation_id": pa.array(numbers, pa.string()),
        "label": pa.array([categories[i] if 0 <= i < len(categories) else str(i) for i in labels] if labels is not None
                          else [None] * len(numbers), pa.string()),
        "box": pa.FixedSizeListArray.from_arrays(pa.array(np.asarray(arrays["boxes"], np.float64).reshape(-1)), 4),
        "score": pa.array(np.asarray(arrays["scores"], np.float32)),
    }
    for name, value in arrays.items():
        if name.startswith("features_"):
            flat = np.asarray(value, np.float32).reshape(len(numbers), -1)
            columns[name] = pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), flat.shape[1])
    return pa.table(columns)


def export_layout(output: str, layout: str, destination: str, options: dict[str, Any]) -> tuple[str, int]:
    """Write a roi output in a bottom-up-attention ``layout`` (``vizcli.roi.export``); returns (written, images)."""
    from vizcli.roi.export import export_command

    return export_command(output, layout, destination, options.get("feature"))

