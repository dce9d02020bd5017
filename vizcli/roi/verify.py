"""``vizcli roi verify OUTPUT``: recompute sampled images' rows with the worker the output records
(``RoIExtractor`` or ``Detector``, same settings and weights) and compare every feature column,
and for a detector the boxes and scores too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vizcli.common.errors import BadInput
from vizcli.common.formats import ROI_DATASET_SCHEMA
from vizcli.datasets.verify import DEFAULT_SAMPLE, Verification, verify_output

TOLERANCES = {"float32": 1e-4, "bfloat16": 5e-2}  # by the recorded compute dtype


def verify_roi(output: str, sample: int = DEFAULT_SAMPLE, tolerance: float | None = None, images_root: str | None = None,
               device: str = "auto", seed: int = 0) -> Verification:
    """Recompute ``sample`` images of the roi output at ``output`` and compare them with what it stores."""

    def recompute(stored: Any, metadata: dict[str, Any]) -> tuple[Any, list[str]]:
        return recompute_rows(stored, metadata, images_root, device)

    def columns(schema: Any) -> list[str]:
        return [name for name in schema.names if name.startswith("features_") or name in ("box", "score")]

    return verify_output(output, ROI_DATASET_SCHEMA, "image", ("image", "annotation_id"), columns, recompute, sample, seed,
                         tolerance, lambda metadata: TOLERANCES.get(str(metadata.get("dtype", "float32")), 1e-4))


def recompute_rows(stored: Any, metadata: dict[str, Any], images_root: str | None = None, device: str = "auto") -> tuple[Any, list[str]]:
    """``stored``'s images pooled again by the worker ``metadata["settings"]`` describe, as rows of ``stored``'s schema."""
    from vizcli.roi.annotations import AnnotatedImage, Annotation
    from vizcli.roi.rows import box_rows, build_worker, image_batch

    settings = metadata.get("settings")
    if not isinstance(settings, dict):
        raise BadInput("records no worker settings (written before vizcli recorded them); rerun it to verify it",
                       parameter="output")
    worker = build_worker({**settings, "device": device, "on_error": "skip"})
    found = []
    recorded, rebuilt = metadata.get("weights_sha256"), getattr(worker, "weights_sha256", None)
    if recorded and rebuilt and recorded != rebuilt:
        found.append(f"the weights are not the recorded ones (sha256 {rebuilt[:12]}… here, {str(recorded)[:12]}… recorded)")
    detecting = bool(settings.get("detect"))
    images: dict[str, AnnotatedImage] = {}
    for row in stored.select(["image", "path", "annotation_id", "box", "label"]).to_pylist():
        image = images.get(row["image"])
        if image is None:
            image = images[row["image"]] = AnnotatedImage(row["image"], _image_path(row["path"], row["image"], images_root))
        if not detecting:
            image.annotations.append(Annotation(tuple(row["box"]), str(row["annotation_id"]), row["label"] or ""))
    result = worker(image_batch(list(images.values())))
    return box_rows(result, stored.schema), found


def _image_path(path: str, image_id: str, images_root: str | None) -> str:
    if Path(path).is_file():
        return path
    if images_root is not None and (Path(images_root) / image_id).is_file():
        return str(Path(images_root) / image_id)
    raise BadInput(f"image {image_id!r}: {path} is not there; run verify where the run ran, or give the images' folder "
                   "with images_root=FOLDER", parameter="output")
