"""The torchvision detectors vizcli runs, and the settings of a detection run.

``TWO_STAGE`` detectors (Faster/Mask/Keypoint R-CNN) give features: their own ``MultiScaleRoIAlign``
(``align``) and ``TwoMLPHead`` (``box-head``). ``ONE_STAGE`` ones (RetinaNet, FCOS) give boxes
only. ``Thresholds`` picks the rows from a detector's sorted output; ``parse_ops`` reads ``--op``;
``check_detection_settings`` refuses detection settings a run would not use; ``detector_categories``
names a detector's classes (torchvision's COCO names, a user's file, or the class indices), each name
once, so a name always means one class index; ``state_sha256`` names a model's weights.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from typing import Any

from vizcli.common.errors import BadInput
from vizcli.roi.ops import split_ops

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
MAX_CLASS_NAMES_BYTES = 1 << 20  # a class names file: one name a line
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
    """``op`` for a detector run (``vizcli.roi.ops.split_ops`` reads the names): ``align``, ``box-head``,
    ``none`` (boxes only, with ``detect``), or a comma list (``align,box-head``)."""
    ops = split_ops(text)
    if not ops and not detect:
        raise BadInput("none (boxes only) goes alone, with detect=True", parameter="op", value=text)
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


def check_detection_settings(
    detect: bool,
    detector: str = DEFAULT_DETECTOR,
    *,
    min_score: float | None = None,
    max_detections: int | None = None,
    min_detections: int | None = None,
    classes: tuple[str, ...] | list[str] | str | None = None,
    class_names: str | None = None,
    weights: str | None = None,
) -> Thresholds:
    """The ``Thresholds`` these settings give, checked whether or not the run detects.

    Values are checked first (``min_score=5`` is refused the same way with ``detect`` or without);
    then settings that only choose among a detector's detections (``min_score``, ``max_detections``,
    ``min_detections``, ``classes``, ``class_names``) are refused without ``detect``: given boxes are
    all kept, and a silently ignored setting would be a wrong result. ``None`` (or the default
    value) means not given. ``classes`` are checked against ``detector``'s names when they are
    known before its weights load (torchvision's, or ``class_names``).
    """
    check_detector(detector)
    defaults = Thresholds()
    wanted = split_classes(classes)
    top = defaults.max_detections if max_detections is None else max_detections
    thresholds = Thresholds(
        defaults.min_score if min_score is None else min_score, top,
        min(DEFAULT_MIN_DETECTIONS, top) if min_detections is None else min_detections, wanted)
    thresholds.check()
    count_known = not _is_weights_file(weights)  # torchvision's weights: their count; a file: known once read
    if class_names is not None and not count_known:
        names = unique_names(read_class_names(class_names, None))
    elif class_names is not None or (wanted and count_known):
        names = detector_categories(detector, class_names=class_names)
    else:
        names = []
    if wanted and names:
        known = selectable(names)
        for name in wanted:
            check_class_name(name, known, detector)
    if not detect:
        given: list[tuple[str, object]] = [
            (name, value) for name, value in (("min_score", min_score), ("max_detections", max_detections))
            if value is not None and value != getattr(defaults, name)]
        given += [(name, value) for name, value in (("min_detections", min_detections), ("classes", ",".join(wanted) or None),
                                                    ("class_names", class_names)) if value is not None]
        if given:
            listed = ", ".join(f"{name}={value!r}" for name, value in given)
            raise BadInput(f"{listed} {'chooses' if len(given) == 1 else 'choose'} among a detector's detections, and "
                           "this run pools the boxes it is given (all of them are kept): give no boxes, so the "
                           f"detector finds them, or drop {'it' if len(given) == 1 else 'them'}")
    return thresholds


def _is_weights_file(weights: str | None) -> bool:
    """Whether ``weights`` names a file (whose class count is only known once read), not torchvision's
    weights (``DEFAULT``, ``COCO_V1``: no dot, no folder)."""
    import os

    return weights is not None and (os.path.exists(weights) or "." in weights or "/" in weights)


def split_classes(classes: tuple[str, ...] | list[str] | str | None) -> tuple[str, ...]:
    """``"person, dog"`` → ``("person", "dog")``; a list or tuple as it is."""
    if isinstance(classes, str):
        return tuple(name.strip() for name in classes.split(",") if name.strip())
    return tuple(classes or ())


def selectable(categories: list[str]) -> dict[str, int]:
    """The class names ``classes`` may choose, and their indices: all but the background and COCO's
    unnamed ``N/A`` slots."""
    return {name: index for index, name in enumerate(categories) if name != "__background__" and not name.startswith("N/A")}


def check_class_name(name: str, known: dict[str, int], detector: str) -> int:
    """The class index ``name`` names, else ``BadInput`` naming the closest name."""
    if name not in known:
        shown = ", ".join(list(known)[:8]) + (", …" if len(known) > 8 else "")
        unnamed = all(known_name.isdigit() for known_name in known)  # a fine-tuned head, no names given
        fix = "; they have no names: choose by index, or name them with class_names=FILE (one a line)" if unnamed else ""
        raise BadInput(f"{closest_hint(name, list(known))}{detector} knows {len(known)} classes ({shown}){fix}",
                       parameter="classes", value=name)
    return known[name]


def detector_categories(name: str, class_count: int | None = None, class_names: str | None = None) -> list[str]:
    """The name of each class index of ``name`` with ``class_count`` classes (its head's rows; None:
    torchvision's count), each name once.

    ``class_names``: a file of names, one a line, for the indices in order (index 0, the background,
    may be left out). Else torchvision's names (COCO's 91) when the count is theirs, else the
    indices as text. A name that appears more than once (COCO's ten ``N/A`` slots) gets its index
    added (``N/A (12)``): a stored name then always maps back to the index it came from.
    """
    import torchvision.models

    known = list(torchvision.models.get_model_weights(name).DEFAULT.meta["categories"])
    count = len(known) if class_count is None else class_count
    if class_names is not None:
        names = read_class_names(class_names, count)
    elif count == len(known):
        names = known
    else:  # a fine-tuned head and no names: the indices (0 is the background, as in torchvision's training)
        names = ["__background__", *(str(index) for index in range(1, count))]
    return unique_names(names)


def unique_names(names: list[str]) -> list[str]:
    """``names`` with each repeated name given its index: ``["a", "N/A", "N/A"]`` → ``["a", "N/A (1)", "N/A (2)"]``."""
    counts = Counter(names)
    return [f"{name} ({index})" if counts[name] > 1 else name for index, name in enumerate(names)]


def read_class_names(path: str, class_count: int | None) -> list[str]:
    """The class names in the file ``path``, one a line, for indices 0..``class_count``-1; a file that
    leaves out index 0 gets ``__background__`` there. ``class_count`` None: as many as the file has."""
    from vizcli.common.files import checked_os_call, require_file

    file = require_file(path, "class_names", "a text file of class names, one a line")
    size = checked_os_call(lambda: file.stat().st_size, "class_names", path)
    if size > MAX_CLASS_NAMES_BYTES:
        raise BadInput(f"{size:,} bytes; a class names file is at most {MAX_CLASS_NAMES_BYTES:,} (one name a line)",
                       parameter="class_names", value=path)
    data = checked_os_call(file.read_bytes, "class_names", path)
    try:
        lines = data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as error:
        raise BadInput(f"is not UTF-8 text (byte {error.start + 1}); save it as UTF-8", parameter="class_names",
                       value=path) from None
    while lines and not lines[-1].strip():
        lines.pop()
    names = [line.strip() for line in lines]
    for number, name in enumerate(names, start=1):
        if not name or not name.isprintable():
            raise BadInput(f"line {number} is {'empty' if not name else 'not printable text'}; give one class name a line",
                           parameter="class_names", value=path)
    if class_count is None or len(names) == class_count:
        return names
    if len(names) == class_count - 1:
        return ["__background__", *names]
    raise BadInput(f"{len(names)} names for a detector with {class_count} classes (index 0 is the background): give "
                   f"{class_count - 1} names, one a line (or {class_count} with the background first)",
                   parameter="class_names", value=path)


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
