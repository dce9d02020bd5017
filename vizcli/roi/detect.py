"""Detect, then pool: region features the bottom-up-attention way, from a torchvision detector.

``Detector`` runs a torchvision detection model exactly as ``model(images)`` does (its own
``GeneralizedRCNNTransform``: resize and normalise; its RPN, box head and post-processing), keeps
the top detections by ``min_score`` / ``min_detections`` / ``max_detections`` / ``classes``, and
pools each kept box from the detector's own feature pyramid with its own pooler:

* ``align``: ``model.roi_heads.box_roi_pool(features, [boxes], image_sizes)``, ``256×7×7``
  (``MultiScaleRoIAlign``: sampling ratio 2, ``aligned=False``, FPN level by box size);
* ``box-head``: ``model.roi_heads.box_head`` of that, TwoMLPHead's 1024 values (the "fc7"
  feature vision-language pipelines save).

Given boxes (``detect=False``) go through the same transform, pooler and box head. RetinaNet and
FCOS have no box head: they give boxes only (``op="none"``). An image runs alone or batched with
images of its own transformed size, so its numbers never depend on its neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vizcli.common.errors import BadInput
from vizcli.common.formats import ROI_DATASET_SCHEMA
from vizcli.roi.annotations import AnnotatedImage
from vizcli.roi.boxes import clip_boxes
from vizcli.roi.detectors import (
    ALL_CANDIDATES,
    DEFAULT_DETECTOR,
    ONE_STAGE,
    RANDOM_BOXES_NOTE,
    TWO_STAGE,
    check_class_name,
    check_detection_settings,
    detector_categories,
    feature_column,
    parse_ops,
    selectable,
    state_sha256,
)
from vizcli.roi.extract import batch_records, prepared_stream, same_size_groups


@dataclass
class Decoded:
    """One decoded image, with the given boxes (if any); the detector's transform runs in ``run``."""

    image: AnnotatedImage
    pixels: Any  # ndarray[H, W, 3] float32 in [0, 1], the image at its own size
    size: tuple[int, int]  # original (width, height)
    boxes: list[tuple[float, float, float, float]]  # given boxes, clipped, original pixels
    kept: list[int]
    problems: list[dict[str, Any]] = field(default_factory=list)

    @property
    def padded(self) -> tuple[int, int]:
        """What decides the transformed, padded size: images of one original size batch together."""
        return int(self.pixels.shape[0]), int(self.pixels.shape[1])


class Detector:
    """A torchvision detector, loaded once: detects (or takes given boxes) and pools from its pyramid.

    ``vizcli.roi.Detector(detector="fasterrcnn_resnet50_fpn_v2", weights="DEFAULT", op="align,box-head")``;
    called on a batch dict ``{"image": [path or bytes, ...]}`` (plus ``"boxes"`` with ``detect=False``)
    it returns the batch with, per image, ``box`` ``[K, 4]`` (image pixels), ``score`` ``[K]``,
    ``class_name`` ``[K]``, ``features_align`` ``[K, 256, 7, 7]``, ``features_box_head`` ``[K, 1024]``,
    ``feature_box``, ``levels``, ``kept``, ``width``/``height`` and ``problems`` (JSON), the same
    columns ``RoIExtractor`` gives, so the dataset engine runs either.
    """

    def __init__(
        self,
        detector: str = DEFAULT_DETECTOR,
        weights: str | None = None,
        detect: bool = True,
        op: str = "align",
        min_score: float = 0.2,
        max_detections: int = 36,
        min_detections: int | None = None,
        classes: tuple[str, ...] | list[str] | str | None = None,
        class_names: str | None = None,
        device: str = "auto",
        seed: int = 0,
        max_pixels: int | None = None,
        on_error: str = "stop",
        threads: int | None = None,
        batch_size: int = 2,
        decode_workers: int = 2,
        strict: bool = False,
    ) -> None:
        import torch

        from vizcli.common.images import pixel_limit
        from vizcli.common.models import load_model
        from vizcli.common.runtime import resolve_device

        if on_error not in ("skip", "stop"):
            raise BadInput("use skip or stop", parameter="on_error", value=on_error)
        if threads is not None:
            torch.set_num_threads(threads)
        self.detector, self.detect, self.strict, self.on_error = detector, detect, strict, on_error
        # min_detections None: bottom-up attention's 10, or all of a smaller maximum
        self.thresholds = check_detection_settings(detect, detector, min_score=min_score, max_detections=max_detections,
                                                   min_detections=min_detections, classes=classes,
                                                   class_names=class_names, weights=weights)
        self.ops = parse_ops(op, detect, detector)
        if not detect and not self.ops:
            raise BadInput("given boxes need op='box-head' (or align,box-head) to go through a detector", parameter="op", value=op)
        self.batch_size, self.decode_workers = max(1, batch_size), max(1, decode_workers)
        self.max_pixels, self.device, self.seed, self.weights = pixel_limit(max_pixels), resolve_device(device), seed, weights
        self.class_names = class_names
        loaded = load_model(detector, weights=weights, seed=seed)
        # the class count of the weights (a fine-tuned head has its own); a class index is the row, its name from that
        self.categories = detector_categories(detector, loaded.meta.get("num_classes"), class_names)
        self.wanted = self._wanted_ids(self.thresholds.classes)
        self.weights_note, self.weights_label, self.pretrained = loaded.weights_note, loaded.weights, loaded.pretrained
        self.model = loaded.model.eval()
        self.weights_sha256 = state_sha256(self.model)
        self.notes = [] if loaded.pretrained else [RANDOM_BOXES_NOTE]
        self._set_thresholds()
        self.model.to(self.device)

    def _class_name(self, index: int) -> str:
        """The name of class ``index`` (a head larger than its names file: the index as text)."""
        return self.categories[index] if 0 <= index < len(self.categories) else str(index)

    def _wanted_ids(self, classes: tuple[str, ...]) -> set[int] | None:
        if not classes:
            return None
        known = selectable(self.categories)
        return {check_class_name(name, known, self.detector) for name in classes}

    def _set_thresholds(self) -> None:
        """Let the detector keep every detection our filter may want; it then filters nothing we keep.

        torchvision keeps a detection when its score > ``score_thresh``, after per-class NMS, the
        ``detections_per_img`` highest. NMS never lets a lower score remove a higher one, so with a
        lower threshold the detections above ``min_score`` are the same boxes in the same order.
        """
        thresholds = self.thresholds
        floor = 0.0 if thresholds.min_detections else max(0.0, thresholds.min_score - 1e-6)
        keep = ALL_CANDIDATES if self.wanted is not None else max(thresholds.max_detections, thresholds.min_detections)
        owner = self.model.roi_heads if self.detector in TWO_STAGE else self.model
        owner.score_thresh, owner.detections_per_img = floor, keep
        if self.detector in TWO_STAGE:
            heads = self.model.roi_heads
            heads.mask_roi_pool = heads.mask_head = heads.mask_predictor = None  # boxes only: skip masks, keypoints
            heads.keypoint_roi_pool = heads.keypoint_head = heads.keypoint_predictor = None

    # ------------------------------------------------------------ description

    @property
    def feature_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes: dict[str, tuple[int, ...]] = {}
        if "align" in self.ops:
            pooler = self.model.roi_heads.box_roi_pool
            size = tuple(pooler.output_size)
            shapes["align"] = (int(self.model.backbone.out_channels), int(size[0]), int(size[1]))
        if "box-head" in self.ops:
            shapes["box-head"] = (int(self.model.roi_heads.box_predictor.cls_score.in_features),)
        return shapes

    def transform_settings(self) -> dict[str, Any]:
        transform = self.model.transform
        return {"min_size": list(transform.min_size), "max_size": int(transform.max_size),
                "image_mean": list(transform.image_mean), "image_std": list(transform.image_std),
                "size_divisible": int(transform.size_divisible)}

    def settings(self) -> dict[str, Any]:
        """The keyword arguments that rebuild this detector (``verify`` recomputes rows with them)."""
        return {"detector": self.detector, "weights": self.weights, "detect": self.detect, "op": ",".join(self.ops) or "none",
                "min_score": self.thresholds.min_score, "max_detections": self.thresholds.max_detections,
                "min_detections": self.thresholds.min_detections, "classes": list(self.thresholds.classes),
                "class_names": self.class_names, "seed": self.seed, "strict": self.strict}

    def metadata(self) -> dict[str, Any]:
        """What every output row was computed with (written into the file's metadata)."""
        pooler = self.model.roi_heads.box_roi_pool if self.detector in TWO_STAGE else None
        return {
            "schema": ROI_DATASET_SCHEMA,
            "worker": "detector",
            "settings": self.settings(),
            "model": self.detector,
            "weights": self.weights_note,
            "weights_sha256": self.weights_sha256,
            "detect": self.detect,
            "thresholds": {"min_score": self.thresholds.min_score, "max_detections": self.thresholds.max_detections,
                           "min_detections": self.thresholds.min_detections, "classes": list(self.thresholds.classes),
                           "nms": float(getattr(self.model.roi_heads if pooler else self.model, "nms_thresh", 0.0))},
            "transform": self.transform_settings(),
            "pooler": None if pooler is None else {
                "featmap_names": list(pooler.featmap_names), "output_size": list(pooler.output_size),
                "sampling_ratio": int(pooler.sampling_ratio), "aligned": False,
                "canonical_scale": 224, "canonical_level": 4},
            "ops": list(self.ops),
            "feature_shapes": {op: list(shape) for op, shape in self.feature_shapes.items()},
            "strict": self.strict,
            "categories": list(self.categories),
            "notes": list(self.notes),
        }

    # ------------------------------------------------------------ preparing

    def prepare(self, image: AnnotatedImage, source: bytes | None = None) -> Decoded:
        """Decode ``image`` and clip its given boxes (decode threads run this: numpy and Pillow only,
        no torch operator, whose OpenMP threads would compete with the model's)."""
        import numpy as np

        from vizcli.common.images import load_image

        loaded = load_image(image.path, max_pixels=self.max_pixels, data=source)
        width, height = loaded.image.size
        self._check_resizable(width, height)
        boxes, kept, problems = clip_boxes(image, width, height, self.strict) if not self.detect else ([], [], [])
        return Decoded(image, np.asarray(loaded.image, dtype=np.float32) / 255.0, (width, height), boxes, kept, problems)

    def _check_resizable(self, width: int, height: int) -> None:
        """``BadInput`` for an image the detector's transform would resize to no pixels (3000×2: its
        short side scaled down with the long one), as ``GeneralizedRCNNTransform`` computes the size."""
        import math

        transform = self.model.transform
        short, long = min(width, height), max(width, height)
        scale = min(float(transform.min_size[-1]) / short, float(transform.max_size) / long)
        if math.floor(short * scale) < 1:
            raise BadInput(f"{width}×{height} pixels: {self.detector} resizes the long side to at most "
                           f"{transform.max_size}, which leaves the short side no pixels; crop or pad it to a less "
                           "extreme shape")

    # ------------------------------------------------------------ running

    def run(self, batch: list[Decoded]) -> list[dict[str, Any]]:
        """The detector's transform, then detect (or take the given boxes) and pool, for images of one size.

        Returns per image ``{"boxes": Tensor[K, 4] image pixels, "scores", "labels", "levels",
        "cells", op: ndarray}``.
        """
        import torch
        from torchvision.models.detection.transform import resize_boxes

        originals = [(item.size[1], item.size[0]) for item in batch]
        with torch.inference_mode():
            images = [torch.from_numpy(item.pixels).permute(2, 0, 1).to(self.device) for item in batch]  # unit_tensor's values
            listed, _ = self.model.transform(images)  # images of one size: each padded as it would be alone
            stacked = listed.tensors
            sizes = [(int(height), int(width)) for height, width in listed.image_sizes]
            if self.detector in ONE_STAGE:
                return self._one_stage(listed, originals)
            features = self.model.backbone(stacked)
            if self.detect:
                proposals, _ = self.model.rpn(listed, features)
                found, _ = self.model.roi_heads(features, proposals, sizes)
                chosen = [self.thresholds.select(d["scores"], d["labels"], self.wanted) for d in found]
                boxes = [d["boxes"][keep] for d, keep in zip(found, chosen)]
                scores = [d["scores"][keep] for d, keep in zip(found, chosen)]
                labels = [d["labels"][keep] for d, keep in zip(found, chosen)]
            else:
                boxes = [resize_boxes(torch.tensor(item.boxes, dtype=torch.float32).reshape(-1, 4).to(self.device),
                                      originals[number], sizes[number]) for number, item in enumerate(batch)]
                scores = [None] * len(batch)
                labels = [None] * len(batch)
            pooled = self._pool(features, boxes, sizes)
        results = []
        for number in range(len(batch)):
            result = {"boxes": resize_boxes(boxes[number], sizes[number], originals[number]).cpu(),
                      "scores": None if scores[number] is None else scores[number].cpu(),
                      "labels": None if labels[number] is None else labels[number].cpu(), **pooled[number]}
            results.append(result)
        return results

    def _one_stage(self, listed: Any, originals: list[tuple[int, int]]) -> list[dict[str, Any]]:
        """RetinaNet and FCOS: their own forward after the transform, boxes only."""
        import torch

        model = self.model
        features = list(model.backbone(listed.tensors).values())
        head_outputs = model.head(features)
        anchors = model.anchor_generator(listed, features)
        counts = [x.size(2) * x.size(3) for x in features]
        if self.detector.startswith("retinanet"):
            per_level = [count * (head_outputs["cls_logits"].size(1) // sum(counts)) for count in counts]
        else:
            per_level = counts
        split_outputs = {key: list(value.split(per_level, dim=1)) for key, value in head_outputs.items()}
        split_anchors = [list(a.split(per_level)) for a in anchors]
        found = model.postprocess_detections(split_outputs, split_anchors, listed.image_sizes)
        found = model.transform.postprocess(found, listed.image_sizes, originals)
        results = []
        for d in found:
            keep = self.thresholds.select(d["scores"], d["labels"], self.wanted)
            count = int(keep.numel())  # no pyramid level, no cells: nothing is pooled
            results.append({"boxes": d["boxes"][keep].cpu(), "scores": d["scores"][keep].cpu(),
                            "labels": d["labels"][keep].cpu(), "levels": [""] * count, "cells": torch.zeros((count, 4))})
        return results

    def _pool(self, features: Any, boxes: list[Any], sizes: list[tuple[int, int]]) -> list[dict[str, Any]]:
        """The detector's pooler (and box head) on ``boxes`` (transformed pixels), split per image."""
        import torch

        pooler = self.model.roi_heads.box_roi_pool
        aligned = pooler(features, boxes, sizes)  # sets pooler.scales and map_levels on its first call
        head = self.model.roi_heads.box_head(aligned) if "box-head" in self.ops else None
        everything = torch.cat(boxes) if boxes else torch.zeros((0, 4))
        if len(pooler.scales) > 1:
            levels = pooler.map_levels(boxes).to(torch.int64).cpu()
        else:
            levels = torch.zeros(everything.shape[0], dtype=torch.int64)
        scales = torch.tensor(pooler.scales, dtype=torch.float32)
        cells = everything.cpu() * scales[levels][:, None]
        names = list(pooler.featmap_names)
        out, start = [], 0
        for image_boxes in boxes:
            end = start + image_boxes.shape[0]
            part: dict[str, Any] = {"levels": [names[i] for i in levels[start:end].tolist()], "cells": cells[start:end]}
            if "align" in self.ops:
                part["align"] = aligned[start:end].float().cpu().numpy()
            if head is not None:
                part["box-head"] = head[start:end].float().cpu().numpy()
            out.append(part)
            start = end
        return out

    # ------------------------------------------------------------ a batch dict (the dataset engine, Ray Data)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import json

        import numpy as np

        records = batch_records(batch, with_boxes=not self.detect)
        problems: dict[str, list[dict[str, Any]]] = {record.image_id: [] for record, _ in records}
        done: dict[str, tuple[Decoded | None, dict[str, Any] | None]] = {}

        def on_problem(problem: dict[str, Any]) -> None:
            # on_error="stop" (single images): any problem stops the run, a box outside the image too (as roi's)
            if self.on_error != "skip":
                raise BadInput(f"image {problem['image']!r}: {problem['problem']}")
            problems[str(problem["image"])].append(problem)

        stream = (item for item in prepared_stream(self, records, self.decode_workers, on_problem) if self.detect or item.boxes)
        for group in same_size_groups(stream, self.batch_size):
            for transformed, pooled in zip(group, self.run(group)):
                done[transformed.image.image_id] = (transformed, pooled)
        shapes = self.feature_shapes
        out: dict[str, list[Any]] = {name: [] for name in ("box", "kept", "feature_box", "levels", "width", "height", "problems",
                                                            "score", "class_name", "class_index",
                                                            *(feature_column(op) for op in self.ops))}
        for record, _ in records:
            member, result = done.get(record.image_id) or (None, None)
            count = 0 if result is None else int(result["boxes"].shape[0])
            out["box"].append(result["boxes"].numpy().astype(np.float64) if result else np.zeros((0, 4)))
            out["kept"].append(np.arange(count, dtype=np.int64) if self.detect or member is None
                               else np.asarray(member.kept, dtype=np.int64))
            out["feature_box"].append(np.asarray(result["cells"], dtype=np.float64).reshape(-1, 4) if result else np.zeros((0, 4)))
            out["levels"].append(np.asarray(result["levels"] if result else [], dtype=str))
            out["width"].append(member.size[0] if member else 0)
            out["height"].append(member.size[1] if member else 0)
            out["problems"].append(json.dumps(problems[record.image_id], ensure_ascii=False))
            scores = result["scores"] if result else None
            out["score"].append(scores.numpy().astype(np.float32) if scores is not None else np.full(count, np.nan, np.float32))
            labels = result["labels"] if result else None
            indices = labels.tolist() if labels is not None else []
            out["class_index"].append(np.asarray(indices if labels is not None else [-1] * count, dtype=np.int64))
            out["class_name"].append(np.asarray([self._class_name(int(i)) for i in indices] if labels is not None
                                                else [""] * count, dtype=str))
            for op in self.ops:
                out[feature_column(op)].append(result[op] if result else np.zeros((0, *shapes[op]), np.float32))
        if self.ops:
            out["features"] = out[feature_column(self.ops[0])]
        return {**batch, **out}
