"""RoIPool and RoIAlign on a CNN feature map, and the worked computation of one value.

The feature maps come from ``vizcli.roi.backbones`` (the same backbone the dataset path uses:
one ResNet stage, or a feature pyramid's levels, each box pooled from the level
``MultiScaleRoIAlign`` assigns it). The pooling itself is ``torchvision.ops.roi_align`` /
``roi_pool``, called on boxes validated first (torchvision only ``assert``s); ``vizcli.roi.explain``
redoes one output value by hand, so a reader can see every sample point, neighbour and weight.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vizcli.common.errors import BadInput, RunFailure
from vizcli.common.formats import ROI_SCHEMA
from vizcli.common.sizes import parse_size
from vizcli.roi.backbones import FPN, STAGES, Backbone, assign_levels, check_backbone, stage_channels
from vizcli.roi.boxes import Box, fit_boxes

LAYERS = (*STAGES, FPN)
OPS = ("align", "pool")
PAD_TO = 32  # pad inputs so every stage's map covers the image exactly (stride divides the size)
MAX_OUTPUT_SIDE = 256
MAX_SAMPLING_RATIO = 64
MIN_MAX_SIZE = 32  # --max-size below one stride of layer4 leaves no feature map


@dataclass(frozen=True)
class PoolSpec:
    """The four settings RoIAlign/RoIPool always take together (as torchvision's ``RoIAlign``).

    ``output_size`` is (height, width) in bins; ``spatial_scale`` is feature cells per input
    pixel (1/16 for layer3); ``sampling_ratio`` samples per bin side (0 = adaptive);
    ``aligned`` shifts box coordinates by half a cell (RoIAlign only).
    """

    output_size: tuple[int, int] = (7, 7)
    spatial_scale: float = 1 / 16
    sampling_ratio: int = 2
    aligned: bool = True

    def __post_init__(self) -> None:
        check_sampling_ratio(self.sampling_ratio)

    @classmethod
    def for_layer(cls, layer: str, output_size: tuple[int, int] = (7, 7), sampling_ratio: int = 2,
                  aligned: bool = True) -> PoolSpec:
        """The spec for ResNet's ``layer`` (its stride fixes the spatial scale; for ``fpn`` the finest
        level's, P2: each box is then pooled at its own level's scale, see ``at_stride``)."""
        stride = 4 if layer == FPN else STAGES[check_layer(layer)]
        return cls(output_size, 1 / stride, sampling_ratio, aligned)

    def at_stride(self, stride: float) -> PoolSpec:
        """The same spec on a map of ``stride`` input pixels per cell."""
        return dataclasses.replace(self, spatial_scale=1 / stride)

    def __repr__(self) -> str:
        return (f"PoolSpec(output_size={self.output_size}, spatial_scale=1/{1 / self.spatial_scale:g}, "
                f"sampling_ratio={self.sampling_ratio}, aligned={self.aligned})")
CHUNK_BYTES = 16 << 20  # boxes are pooled in chunks of about this much output (measured fastest here)


def parse_output_size(text: str) -> tuple[int, int]:
    """``"7"`` → (7, 7); ``"7x5"`` → (7, 5) as (height, width)."""
    height, width = parse_size(text, "output_size", 2, "N or HxW", "7 or 7x7", largest_side=MAX_OUTPUT_SIDE)
    return height, width


def check_sampling_ratio(value: int) -> int:
    if value < 0 or value > MAX_SAMPLING_RATIO:
        raise BadInput("use 0 (adaptive, as torchvision) or 1..64 samples per bin side", parameter="sampling_ratio", value=value)
    return value


def parse_ops(op: str) -> tuple[str, ...]:
    if op == "both":
        return OPS
    if op not in OPS:
        raise BadInput("use align, pool or both", parameter="op", value=op)
    return (op,)


def check_channel(layer: str, channel: int, model: str = "resnet18") -> int:
    """``channel`` if ``model``'s ``layer`` has it (checked before the model loads)."""
    count = stage_channels(model, check_layer(layer))
    if not 0 <= channel < count:
        raise BadInput(f"the {layer} map of {model} has channels 0..{count - 1}", parameter="channel", value=channel)
    return channel


def check_layer(layer: str) -> str:
    if layer not in LAYERS:
        raise BadInput(f"use one of {', '.join(LAYERS)} (strides 4, 8, 16, 32; fpn: the pyramid's levels)",
                       parameter="layer", value=layer)
    return layer


# ---------------------------------------------------------------- features


@dataclass
class FeatureMap:
    """``Tensor[1, C, h, w]`` features of an input padded to ``padded`` (width, height)."""

    tensor: Any
    input_size: tuple[int, int]  # (width, height) of the image the network saw, before padding
    padded: tuple[int, int]
    spatial_scale: float  # feature cells per input pixel, measured

    @property
    def stride(self) -> float:
        return 1.0 / self.spatial_scale


def compute_feature_maps(backbone: Backbone, image_tensor) -> dict[str, FeatureMap]:
    """Run ``backbone`` on ``Tensor[3, H, W]`` (zero-padded to a multiple of 32); each level's map
    with its spatial scale measured (and checked against the level's stride)."""
    import torch
    import torch.nn.functional as F

    _, height, width = image_tensor.shape
    padded_w = math.ceil(width / PAD_TO) * PAD_TO
    padded_h = math.ceil(height / PAD_TO) * PAD_TO
    padded = F.pad(image_tensor, (0, padded_w - width, 0, padded_h - height))
    with torch.inference_mode():
        outputs = backbone.module(padded.unsqueeze(0))
    maps = {}
    for name, stride in backbone.strides.items():
        features = outputs[name]
        feature_h, feature_w = features.shape[-2:]
        scale_x, scale_y = feature_w / padded_w, feature_h / padded_h
        if abs(scale_x - scale_y) > 1e-12 or abs(scale_x * stride - 1) > 1e-12:
            raise RunFailure(f"level {name}: feature map {feature_w}×{feature_h} from input {padded_w}×{padded_h} "
                             f"is not 1/{stride} on both axes")
        maps[name] = FeatureMap(tensor=features, input_size=(width, height), padded=(padded_w, padded_h), spatial_scale=scale_x)
    return maps


def roi_features(
    features,
    boxes,
    op: str,
    spec: PoolSpec,
    chunk: int | None = None,
    progress: Callable[[int], None] | None = None,
):
    """Pool ``boxes`` (``Tensor[K, 4]``, x1,y1,x2,y2 in input pixels) from ``features``.

    ``features`` is ``Tensor[1, C, H, W]``; returns ``Tensor[K, C, h, w]`` with ``(h, w) =
    spec.output_size``. Boxes are processed in chunks into one preallocated output, so peak memory
    stays near the size of the result. ``op`` is ``"align"`` or ``"pool"``.
    """
    import torch
    from torchvision.ops import roi_align, roi_pool

    count = boxes.shape[0]
    channels = features.shape[1]
    output_size = spec.output_size
    if chunk is None:
        chunk = max(1, CHUNK_BYTES // (channels * output_size[0] * output_size[1] * features.element_size()))
    result = torch.empty((count, channels, *output_size), dtype=features.dtype, device=features.device)
    with torch.inference_mode():
        for start in range(0, count, chunk):
            part = boxes[start : start + chunk].to(features.dtype)
            rois = torch.cat([torch.zeros((part.shape[0], 1), dtype=part.dtype, device=part.device), part], dim=1)
            if op == "align":
                pooled = roi_align(features, rois, output_size, spec.spatial_scale, spec.sampling_ratio, spec.aligned)
            else:
                pooled = roi_pool(features, rois, output_size, spec.spatial_scale)
            result[start : start + part.shape[0]] = pooled
            if progress is not None:
                progress(part.shape[0])
    return result


# ---------------------------------------------------------------- one run


@dataclass(slots=True)
class BoxResult:
    box: Box  # after clipping, original image pixels
    input_box: tuple[float, float, float, float]  # in the pixels the network saw (after --max-size)
    cells: tuple[float, float, float, float]  # input_box × spatial_scale
    pool_cells: tuple[int, int, int, int]  # RoIPool's rounded box, ends inclusive
    pool_error_px: tuple[float, float, float, float]  # per edge, in original image pixels
    bin_size: tuple[float, float]  # RoIAlign bin (height, width) in cells
    level: str  # the feature map it was pooled from (the stage's name, or the pyramid level 0..3)
    spatial_scale: float  # of that level: cells per input pixel


def pool_rounded_cells(cells):
    """RoIPool's first rounding of boxes in feature cells (``ndarray[K, 4]``): C's ``round``,
    halves away from zero; the ends are inclusive cells. Returns ``ndarray[K, 4]`` int64."""
    import numpy as np

    return (np.sign(cells) * np.floor(np.abs(cells) + 0.5)).astype(np.int64)


def box_geometry(boxes: list[Box], factor: float, spec: PoolSpec, levels: list[str] | None = None,
                 strides: Mapping[str, float] | None = None) -> list[BoxResult]:
    """Where each box lands: input pixels, feature cells, RoIPool's rounded box and its edge
    shifts (in original pixels), RoIAlign's bin size — computed for all boxes at once. Each box
    lies on ``strides[levels[k]]`` (default: every box on the map of ``spec.spatial_scale``)."""
    import numpy as np

    output_size = spec.output_size
    if levels is None or strides is None:
        levels, strides = ["map"] * len(boxes), {"map": 1 / spec.spatial_scale}
    scales = np.array([1 / strides[name] for name in levels], dtype=np.float64).reshape(-1, 1)
    coords = np.array([box.coords for box in boxes], dtype=np.float64).reshape(-1, 4)
    inputs = coords * factor
    cells = inputs * scales
    rounded = pool_rounded_cells(cells)
    edges = rounded.astype(np.float64)
    edges[:, 2:] += 1  # RoIPool's end cells are inclusive
    shifts = (edges / scales - inputs) / factor
    widths, heights = cells[:, 2] - cells[:, 0], cells[:, 3] - cells[:, 1]
    if not spec.aligned:
        widths, heights = np.maximum(widths, 1.0), np.maximum(heights, 1.0)
    bins = np.stack([heights / output_size[0], widths / output_size[1]], axis=1)
    return [
        BoxResult(box=box, input_box=tuple(i), cells=tuple(c), pool_cells=tuple(r), pool_error_px=tuple(e), bin_size=tuple(b),
                  level=level, spatial_scale=float(scale[0]))
        for box, i, c, r, e, b, level, scale in zip(boxes, inputs.tolist(), cells.tolist(), rounded.tolist(), shifts.tolist(),
                                                    bins.tolist(), levels, scales)
    ]


@dataclass
class ImageResult:
    source: str
    steps: list[str]
    size: tuple[int, int]  # original (width, height)
    resize_factor: float
    feature_maps: dict[str, FeatureMap]  # level name → map (one for a ResNet stage, four for fpn)
    boxes: list[BoxResult]
    outputs: dict[str, Any] = field(default_factory=dict)  # op → Tensor[K, C, h, w]
    picture: Any = None  # the RGB image as loaded (original size), for plots
    exif_orientation: int = 1  # the EXIF orientation applied on loading; boxes are in the rotated image's pixels

    def map_of(self, box: BoxResult) -> FeatureMap:
        """The feature map ``box`` was pooled from."""
        return self.feature_maps[box.level]


@dataclass
class RoiReport:
    images: list[ImageResult]
    layer: str
    ops: tuple[str, ...]
    spec: PoolSpec
    weights_note: str
    device: str
    model: str = "resnet18"
    notes: list[str] = field(default_factory=list)

    def metadata(self) -> dict[str, Any]:
        """Everything a script needs to interpret the saved tensors (JSON-safe)."""
        boxes = []
        for image_index, image in enumerate(self.images):
            for result in image.boxes:
                boxes.append(
                    {
                        "image": image_index,
                        "number": result.box.number,
                        "label": result.box.label,
                        "box": list(result.box.coords),
                        "feature_box": list(result.cells),
                        "level": result.level,
                        "spatial_scale": result.spatial_scale,
                    }
                )
        single = self.layer != FPN
        images = []
        for image in self.images:
            entry: dict[str, Any] = {"path": image.source, "size": list(image.size), "resize_factor": image.resize_factor,
                                     "exif_orientation": image.exif_orientation,
                                     "levels": {name: {"feature_shape": list(fmap.tensor.shape[1:]),
                                                       "spatial_scale": fmap.spatial_scale}
                                                for name, fmap in image.feature_maps.items()}}
            if single:  # one map: its shape and scale at the top, as before levels existed
                (only,) = image.feature_maps.values()
                entry |= {"feature_shape": list(only.tensor.shape[1:]), "spatial_scale": only.spatial_scale}
            images.append(entry)
        return {
            "schema": ROI_SCHEMA,
            "images": images,
            "boxes": boxes,
            "ops": list(self.ops),
            "output_size": list(self.spec.output_size),
            "spatial_scale": images[0]["spatial_scale"] if images and single else None,
            "sampling_ratio": self.spec.sampling_ratio,
            "aligned": self.spec.aligned,
            "model": self.model,
            "layer": self.layer,
            "weights": self.weights_note,
            "notes": list(self.notes),
            "layout": "[K, C, h, w]: one row per box, boxes in the order of 'boxes'",
        }

    def stacked(self, op: str):
        """``Tensor[K, C, h, w]`` for all boxes of all images (no copy for a single image)."""
        import torch

        if len(self.images) == 1:
            return self.images[0].outputs[op]
        return torch.cat([image.outputs[op] for image in self.images], dim=0)


def run_roi(
    images: list[str],
    boxes_by_image: dict[str, list[Box]],
    layer: str = "layer3",
    ops: tuple[str, ...] = ("align",),
    spec: PoolSpec | None = None,
    max_size: int | None = None,
    weights: str | None = None,
    seed: int = 0,
    device: str = "auto",
    strict: bool = False,
    max_pixels: int | None = None,
    warn: Callable[[str], None] = lambda message: None,
    progress_factory: Callable[[int], Callable[[int], None] | None] | None = None,
    model: str = "resnet18",
) -> RoiReport:
    """Load every image and check every box first, then the backbone once, then pool.

    ``model``/``layer`` pick the backbone as for dataset runs (``vizcli.roi.backbones``); ``spec``
    gives the output size, sampling ratio and alignment, and each box is pooled at the spatial
    scale of its own level.
    """
    import torch

    from vizcli.common.images import load_image, pixel_limit, resize_image, to_normalized_tensor
    from vizcli.common.runtime import resolve_device
    from vizcli.roi.backbones import load_backbone

    check_backbone(model, check_layer(layer))
    spec = spec or PoolSpec.for_layer(layer)
    limit = pixel_limit(max_pixels)
    target = resolve_device(device)
    prepared = []
    for source in images:
        boxes = boxes_by_image.get(source) or []
        if not boxes:
            raise BadInput(f"image {source}: no boxes given; use boxes=x1,y1,x2,y2 or boxes_file=PATH")
        loaded = load_image(source, max_pixels=limit)
        width, height = loaded.image.size
        fitted = fit_boxes(boxes, width, height, strict, source, warn)
        image, factor = (loaded.image, 1.0)
        if max_size is not None:
            if max_size < MIN_MAX_SIZE:
                raise BadInput(f"at least {MIN_MAX_SIZE} pixels", parameter="max_size", value=max_size)
            image, factor = resize_image(loaded, max_size)
        prepared.append((source, loaded, (width, height), image, factor, fitted))
    backbone = load_backbone(model, layer, weights, seed)
    backbone.module.to(target)
    names = backbone.level_names()
    results = []
    for source, loaded, size, image, factor, fitted in prepared:
        record = loaded.record
        tensor = to_normalized_tensor(image).to(target)
        record.steps.append(f"normalised, zero-padded to a multiple of {PAD_TO}")
        maps = compute_feature_maps(backbone, tensor)
        inputs = torch.tensor([box.coords for box in fitted], dtype=torch.float64).reshape(-1, 4) * factor
        levels = [names[index] for index in assign_levels(inputs, backbone.strides).tolist()]
        box_results = box_geometry(fitted, factor, spec, levels, backbone.strides)
        result = ImageResult(source=source, steps=list(record.steps), size=size, resize_factor=factor,
                             exif_orientation=record.exif_orientation,
                             feature_maps=maps, boxes=box_results, picture=loaded.image)
        box_tensor = torch.tensor([b.input_box for b in box_results], dtype=torch.float64).reshape(-1, 4).to(target)
        for op in ops:
            progress = progress_factory(len(box_results)) if progress_factory else None
            result.outputs[op] = _pool_levels(maps, box_tensor, levels, op, spec, backbone.strides, progress)
        results.append(result)
    return RoiReport(images=results, layer=layer, ops=ops, spec=spec, weights_note=backbone.weights_note,
                     device=str(target), model=model, notes=list(backbone.notes))


def _pool_levels(maps: dict[str, FeatureMap], boxes, levels: list[str], op: str, spec: PoolSpec, strides: dict[str, int],
                 progress: Callable[[int], None] | None):
    """Each box pooled from its level's map, in the boxes' order: ``Tensor[K, C, h, w]``."""
    import torch

    first = next(iter(maps.values())).tensor
    result = torch.empty((boxes.shape[0], first.shape[1], *spec.output_size), dtype=first.dtype, device=first.device)
    for name, fmap in maps.items():
        chosen = torch.tensor([index for index, level in enumerate(levels) if level == name], dtype=torch.int64)
        if chosen.numel() == 0:
            continue
        result[chosen.to(result.device)] = roi_features(fmap.tensor, boxes[chosen.to(boxes.device)], op,
                                                        spec.at_stride(strides[name]), progress=progress)
    return result
