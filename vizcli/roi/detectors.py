"""The torchvision detectors vizcli runs, and the settings of a detection run.

``TWO_STAGE`` detectors (Faster/Mask/Keypoint R-CNN) give features: their own ``MultiScaleRoIAlign``
(``align``) and ``TwoMLPHead`` (``box-head``). ``ONE_STAGE`` ones (RetinaNet, FCOS) give boxes
only. ``Thresholds`` picks the rows from a detector's sorted output; ``parse_ops`` reads ``--op``;
``state_sha256`` names a model's weights.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from vizcli.common.errors import BadInput

TWO_STAGE = (
    "fasterrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn_v2", "fasterrcnn_mobilenet_v3_large_fpn",
    "fasterrcnn_mobilenet_v3_large_320_fpn", "maskrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn_v2",
    "keypointrcnn_resnet50_fpn",
)
ONE_STAGE = ("retinanet_resnet50_fpn", "retinanet_resnet50_fpn_v2", "fcos_resnet50_fpn")
DETECTORS = TWO_STAGE + ONE_STAGE
DEFAULT_DETECTOR = "fasterrcnn_resnet50_fpn_v2"
DETECT_OPS = ("align", "box-head")
RANDOM_BOXES_NOTE = ("random weights: this detector's boxes, scores and classes are meaningless (the features are exact "
                     "for those boxes); use weights='DEFAULT' for torchvision's trained detector")
DEFAULT_MIN_DETECTIONS = 10
ALL_CANDIDATES = 100_000  # detections kept per image before our own filter, when classes are chosen


@dataclass
class Thresholds:
    """Which detections become rows: score ≥ ``min_score``, at least ``min_detections`` (the top
    ones even under the score), at most ``max_detections``, of ``classes`` only (all when empty)."""

    min_score: float = 0.2
    max_detections: int = 36
    min_detections: int = 10
    classes: tuple[str, ...] = ()

    def check(self) -> None:
        if not 0.0 <= self.min_score <= 1.0:
            raise BadInput("use a score in 0..1", parameter="min_score", value=self.min_score)
        if not 1 <= self.max_detections <= 10_000:
            raise BadInput("use 1..10000", parameter="max_detections", value=self.max_detections)
        if not 0 <= self.min_detections <= self.max_detections:
            raise BadInput(f"use 0..max_detections ({self.max_detections})", parameter="min_detections",
                           value=self.min_detections)

    def select(self, scores: Any, labels: Any, wanted: set[int] | None) -> Any:
        """Indices into a detector's output (sorted by score, highest first) that become rows."""
        import torch

        order = torch.arange(scores.shape[0])
        if wanted is not None:
            order = order[torch.tensor([int(label) in wanted for label in labels.tolist()], dtype=torch.bool)]
        above = order[scores[order] >= self.min_score]
        chosen = above if above.numel() >= self.min_detections else order[: self.min_detections]
        return chosen[: self.max_detections]


def parse_ops(text: str, detect: bool, detector: str | None) -> tuple[str, ...]:
    """``--op`` as a tuple: ``align``, ``pool``, ``both`` (align and pool), ``box-head``, ``none``,
    or a comma list (``align,box-head``)."""
    names: list[str] = []
    for part in (piece.strip() for piece in str(text).split(",")):
        names.extend(("align", "pool") if part == "both" else (part,))
    allowed = ("align", "pool", "box-head", "none")
    for name in names:
        if name not in allowed:
            raise BadInput(f"use {', '.join(allowed)}, both, or a comma list such as align,box-head", parameter="op", value=text)
    if "none" in names:
        if len(names) > 1 or not detect:
            raise BadInput("none (boxes only) goes alone, with detect=True", parameter="op", value=text)
        return ()
    ops = tuple(dict.fromkeys(names))
    through_detector = detect or "box-head" in ops
    if through_detector and "pool" in ops:
        raise BadInput("a detector's boxes are pooled with its own RoIAlign (align) and box head (box-head), not RoIPool",
                       parameter="op", value=text)
    if through_detector and detector in ONE_STAGE and ops:
        raise BadInput(f"{detector} has no box pooler or box head: it gives boxes only (op='none'); use one of "
                       f"{', '.join(TWO_STAGE)} for features", parameter="op", value=text)
    return ops


def feature_column(op: str) -> str:
    """The output column of ``op``'s features: ``features_align``, ``features_pool``, ``features_box_head``."""
    return "features_" + op.replace("-", "_")


def closest_hint(name: str, known: list[str] | tuple[str, ...]) -> str:
    """``"did you mean X? "`` for the closest of ``known``, else ``""``."""
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1)
    return f"did you mean {close[0]}? " if close else ""


def check_detector(name: str) -> None:
    if name not in DETECTORS:
        raise BadInput(f"{closest_hint(name, DETECTORS)}use one of {', '.join(DETECTORS)}", parameter="detector", value=name)


def detector_categories(name: str) -> list[str]:
    """The class names torchvision's weights for ``name`` use (COCO's 91, with ``__background__`` and ``N/A``)."""
    import torchvision.models

    return list(torchvision.models.get_model_weights(name).DEFAULT.meta["categories"])


def state_sha256(module: Any) -> str:
    """A sha256 of every tensor of ``module``'s state dict (names, dtypes, shapes, bytes, in order):
    equal weights give the same digest, however they were loaded."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{value.dtype}|{tuple(value.shape)}|".encode())
        digest.update(value.view(-1).view(dtype=torch.uint8).numpy().tobytes() if value.numel() else b"")
    return digest.hexdigest()
