"""RoIPool and RoIAlign on a ResNet18 feature map, and the worked computation of one value.

The computation itself is ``torchvision.ops.roi_align`` / ``roi_pool``, called on boxes
validated first (torchvision only ``assert``s). ``explain_bin`` redoes one output value by
hand, following the published semantics of each op, so a reader can see every sample
point, neighbour and weight; the CLI shows it next to the op's own output.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from vizcli.boxes import Box, fit_boxes, pool_rounded_box
from vizcli.errors import BadInput, RunFailure

LAYERS = ("layer1", "layer2", "layer3", "layer4")
OPS = ("align", "pool")
PAD_TO = 32  # pad inputs so every stage's map covers the image exactly (stride divides the size)
MAX_OUTPUT_SIDE = 256
CHUNK_BYTES = 16 << 20  # boxes are pooled in chunks of about this much output (measured fastest here)


def parse_output_size(text: str) -> tuple[int, int]:
    """``"7"`` → (7, 7); ``"7x5"`` → (7, 5) as (height, width)."""
    parts = re.split(r"[x×,]", str(text).strip().lower())
    try:
        numbers = [int(part) for part in parts]
    except ValueError:
        raise BadInput(f"--output-size {text!r}: use N or HxW with whole numbers, e.g. 7 or 7x7") from None
    if len(numbers) == 1:
        numbers *= 2
    if len(numbers) != 2:
        raise BadInput(f"--output-size {text!r}: 1 or 2 numbers required (N or HxW); {len(numbers)} given")
    if any(n < 1 for n in numbers):
        raise BadInput(f"--output-size {text!r}: each side must be at least 1")
    if any(n > MAX_OUTPUT_SIDE for n in numbers):
        raise BadInput(f"--output-size {text!r}: at most {MAX_OUTPUT_SIDE} per side (a 7x7 grid is usual)")
    return numbers[0], numbers[1]


def check_sampling_ratio(value: int) -> int:
    if value < 0 or value > 64:
        raise BadInput(f"--sampling-ratio {value}: use 0 (adaptive, as torchvision) or 1..64 samples per bin side")
    return value


def parse_ops(op: str) -> tuple[str, ...]:
    if op == "both":
        return OPS
    if op not in OPS:
        raise BadInput(f"--op {op}: use align, pool or both")
    return (op,)


def check_layer(layer: str) -> str:
    if layer not in LAYERS:
        raise BadInput(f"--layer {layer}: use one of {', '.join(LAYERS)} (strides 4, 8, 16, 32)")
    return layer


# ---------------------------------------------------------------- features


def build_backbone(model, layer: str):
    """ResNet's stem and stages up to ``layer`` as one ``nn.Sequential``."""
    import torch.nn as nn

    check_layer(layer)
    parts = [model.conv1, model.bn1, model.relu, model.maxpool]
    for name in LAYERS:
        parts.append(getattr(model, name))
        if name == layer:
            break
    return nn.Sequential(*parts).eval()


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


def compute_feature_map(backbone, image_tensor) -> FeatureMap:
    """Run ``backbone`` on ``Tensor[3, H, W]`` (zero-padded to a multiple of 32) and measure the scale."""
    import torch
    import torch.nn.functional as F

    _, height, width = image_tensor.shape
    padded_w = math.ceil(width / PAD_TO) * PAD_TO
    padded_h = math.ceil(height / PAD_TO) * PAD_TO
    padded = F.pad(image_tensor, (0, padded_w - width, 0, padded_h - height))
    with torch.inference_mode():
        features = backbone(padded.unsqueeze(0))
    feature_h, feature_w = features.shape[-2:]
    scale_x, scale_y = feature_w / padded_w, feature_h / padded_h
    if abs(scale_x - scale_y) > 1e-12:
        raise RunFailure(f"feature map {feature_w}×{feature_h} from input {padded_w}×{padded_h}: scales differ per axis")
    return FeatureMap(tensor=features, input_size=(width, height), padded=(padded_w, padded_h), spatial_scale=scale_x)


def roi_features(
    features,
    boxes,
    op: str,
    output_size: tuple[int, int],
    spatial_scale: float,
    sampling_ratio: int = 2,
    aligned: bool = True,
    chunk: int | None = None,
    progress: Callable[[int], None] | None = None,
):
    """Pool ``boxes`` (``Tensor[K, 4]``, x1,y1,x2,y2 in input pixels) from ``features``.

    ``features`` is ``Tensor[1, C, H, W]``; returns ``Tensor[K, C, h, w]`` with ``(h, w) =
    output_size``. Boxes are processed in chunks into one preallocated output, so peak memory
    stays near the size of the result. ``op`` is ``"align"`` or ``"pool"``.
    """
    import torch
    from torchvision.ops import roi_align, roi_pool

    count = boxes.shape[0]
    channels = features.shape[1]
    if chunk is None:
        chunk = max(1, CHUNK_BYTES // (channels * output_size[0] * output_size[1] * features.element_size()))
    result = torch.empty((count, channels, *output_size), dtype=features.dtype, device=features.device)
    with torch.inference_mode():
        for start in range(0, count, chunk):
            part = boxes[start : start + chunk].to(features.dtype)
            rois = torch.cat([torch.zeros((part.shape[0], 1), dtype=part.dtype, device=part.device), part], dim=1)
            if op == "align":
                pooled = roi_align(features, rois, output_size, spatial_scale, sampling_ratio, aligned)
            else:
                pooled = roi_pool(features, rois, output_size, spatial_scale)
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


def box_geometry(boxes: list[Box], factor: float, scale: float, output_size: tuple[int, int], aligned: bool) -> list[BoxResult]:
    """Where each box lands: input pixels, feature cells, RoIPool's rounded box and its edge
    shifts (in original pixels), RoIAlign's bin size — computed for all boxes at once."""
    import numpy as np

    coords = np.array([box.coords for box in boxes], dtype=np.float64).reshape(-1, 4)
    inputs = coords * factor
    cells = inputs * scale
    rounded = (np.sign(cells) * np.floor(np.abs(cells) + 0.5)).astype(np.int64)  # C's round(), as RoIPool
    edges = rounded.astype(np.float64)
    edges[:, 2:] += 1  # RoIPool's end cells are inclusive
    shifts = (edges / scale - inputs) / factor
    widths, heights = cells[:, 2] - cells[:, 0], cells[:, 3] - cells[:, 1]
    if not aligned:
        widths, heights = np.maximum(widths, 1.0), np.maximum(heights, 1.0)
    bins = np.stack([heights / output_size[0], widths / output_size[1]], axis=1)
    return [
        BoxResult(box=box, input_box=tuple(i), cells=tuple(c), pool_cells=tuple(r), pool_error_px=tuple(e), bin_size=tuple(b))
        for box, i, c, r, e, b in zip(boxes, inputs.tolist(), cells.tolist(), rounded.tolist(), shifts.tolist(), bins.tolist())
    ]


@dataclass
class ImageResult:
    source: str
    steps: list[str]
    size: tuple[int, int]  # original (width, height)
    resize_factor: float
    feature_map: FeatureMap
    boxes: list[BoxResult]
    outputs: dict[str, Any] = field(default_factory=dict)  # op → Tensor[K, C, h, w]
    picture: Any = None  # the RGB image as loaded (original size), for plots


@dataclass
class RoiReport:
    images: list[ImageResult]
    layer: str
    ops: tuple[str, ...]
    output_size: tuple[int, int]
    sampling_ratio: int
    aligned: bool
    weights_note: str
    device: str

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
                    }
                )
        return {
            "schema": "vizcli.roi/1",
            "images": [
                {"path": image.source, "size": list(image.size), "resize_factor": image.resize_factor,
                 "feature_shape": list(image.feature_map.tensor.shape[1:]), "spatial_scale": image.feature_map.spatial_scale}
                for image in self.images
            ],
            "boxes": boxes,
            "ops": list(self.ops),
            "output_size": list(self.output_size),
            "spatial_scale": self.images[0].feature_map.spatial_scale if self.images else None,
            "sampling_ratio": self.sampling_ratio,
            "aligned": self.aligned,
            "layer": self.layer,
            "weights": self.weights_note,
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
    output_size: tuple[int, int] = (7, 7),
    sampling_ratio: int = 2,
    aligned: bool = True,
    max_size: int | None = None,
    weights: str | None = None,
    seed: int = 0,
    device: str = "auto",
    strict: bool = False,
    max_pixels: int | None = None,
    warn: Callable[[str], None] = lambda message: None,
    progress_factory: Callable[[int], Callable[[int], None] | None] | None = None,
) -> RoiReport:
    """Load every image and check every box first, then the model once, then pool."""
    import torch

    from vizcli.images import DEFAULT_MAX_PIXELS, load_image, resize_image, to_normalized_tensor
    from vizcli.models import load_model
    from vizcli.runtime import resolve_device

    check_layer(layer)
    check_sampling_ratio(sampling_ratio)
    target = resolve_device(device)
    prepared = []
    for source in images:
        boxes = boxes_by_image.get(source) or []
        if not boxes:
            raise BadInput(f"image {source}: no boxes given; use --boxes x1,y1,x2,y2 or --boxes-file")
        loaded = load_image(source, max_pixels=max_pixels or DEFAULT_MAX_PIXELS)
        width, height = loaded.image.size
        fitted = fit_boxes(boxes, width, height, strict, source, warn)
        image, factor = (loaded.image, 1.0)
        if max_size is not None:
            if max_size < 32:
                raise BadInput(f"--max-size {max_size}: at least 32 pixels")
            image, factor = resize_image(loaded, max_size)
        prepared.append((source, loaded, (width, height), image, factor, fitted))
    loaded_model = load_model("resnet18", weights=weights, seed=seed)
    backbone = build_backbone(loaded_model.model, layer).to(target)
    results = []
    for source, loaded, size, image, factor, fitted in prepared:
        record = loaded.record
        tensor = to_normalized_tensor(image).to(target)
        record.steps.append(f"normalised, zero-padded to a multiple of {PAD_TO}")
        feature_map = compute_feature_map(backbone, tensor)
        scale = feature_map.spatial_scale
        box_results = box_geometry(fitted, factor, scale, output_size, aligned)
        result = ImageResult(source=source, steps=list(record.steps), size=size, resize_factor=factor,
                             feature_map=feature_map, boxes=box_results, picture=loaded.image)
        box_tensor = torch.tensor([b.input_box for b in box_results], dtype=torch.float64).to(target)
        for op in ops:
            progress = progress_factory(len(box_results)) if progress_factory else None
            result.outputs[op] = roi_features(
                feature_map.tensor, box_tensor, op, output_size, scale, sampling_ratio, aligned, progress=progress
            )
        results.append(result)
    return RoiReport(images=results, layer=layer, ops=ops, output_size=output_size, sampling_ratio=sampling_ratio,
                     aligned=aligned, weights_note=loaded_model.weights_note, device=str(target))


# ---------------------------------------------------------------- explain one value


@dataclass
class SamplePoint:
    y: float
    x: float  # where the sample falls, in feature cells (before border clamping)
    neighbours: list[tuple[int, int, float, float]]  # (row, col, value, weight)
    value: float


@dataclass
class AlignExplanation:
    row: int
    col: int
    channel: int
    roi: tuple[float, float, float, float]  # x1, y1, x2, y2 in cells, after the half-pixel offset
    bin: tuple[float, float, float, float]  # the bin's x1, y1, x2, y2 in cells
    grid: tuple[int, int]  # sample points per bin (rows, cols)
    samples: list[SamplePoint]
    by_hand: float
    op_value: float | None = None


@dataclass
class PoolExplanation:
    row: int
    col: int
    channel: int
    rounded: tuple[int, int, int, int]  # x1, y1, x2, y2 cells, ends inclusive
    rows: tuple[int, int]  # [start, end) feature rows of the bin, after floor/ceil and clamping
    cols: tuple[int, int]
    cells: list[list[float]]  # the values in the bin
    by_hand: float
    op_value: float | None = None


def bilinear_sample(plane, y: float, x: float) -> SamplePoint:
    """torchvision's RoIAlign interpolation at (y, x) on ``plane`` (``Tensor[H, W]``)."""
    height, width = plane.shape
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return SamplePoint(y=y, x=x, neighbours=[], value=0.0)
    yy, xx = max(y, 0.0), max(x, 0.0)
    y_low, x_low = int(yy), int(xx)
    if y_low >= height - 1:
        y_low = y_high = height - 1
        yy = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= width - 1:
        x_low = x_high = width - 1
        xx = float(x_low)
    else:
        x_high = x_low + 1
    ly, lx = yy - y_low, xx - x_low
    hy, hx = 1.0 - ly, 1.0 - lx
    corners = [(y_low, x_low, hy * hx), (y_low, x_high, hy * lx), (y_high, x_low, ly * hx), (y_high, x_high, ly * lx)]
    neighbours = [(r, c, float(plane[r, c]), w) for r, c, w in corners]
    return SamplePoint(y=y, x=x, neighbours=neighbours, value=sum(v * w for _, _, v, w in neighbours))


def explain_align(plane, box_cells_scale, output_size, row, col, sampling_ratio=2, aligned=True, channel=0) -> AlignExplanation:
    """Recompute RoIAlign's output at bin (row, col) of one channel ``plane`` (``Tensor[H, W]``).

    ``box_cells_scale`` is ``(x1, y1, x2, y2, spatial_scale)`` with the box in input pixels.
    """
    x1, y1, x2, y2, scale = box_cells_scale
    offset = 0.5 if aligned else 0.0
    start_w, start_h = x1 * scale - offset, y1 * scale - offset
    end_w, end_h = x2 * scale - offset, y2 * scale - offset
    roi_w, roi_h = end_w - start_w, end_h - start_h
    if not aligned:
        roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
    out_h, out_w = output_size
    bin_h, bin_w = roi_h / out_h, roi_w / out_w
    grid_h = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_h / out_h)
    grid_w = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_w / out_w)
    samples = []
    for iy in range(grid_h):
        y = start_h + row * bin_h + (iy + 0.5) * bin_h / grid_h
        for ix in range(grid_w):
            x = start_w + col * bin_w + (ix + 0.5) * bin_w / grid_w
            samples.append(bilinear_sample(plane, y, x))
    count = max(grid_h * grid_w, 1)
    by_hand = sum(sample.value for sample in samples) / count
    return AlignExplanation(
        row=row, col=col, channel=channel,
        roi=(start_w, start_h, start_w + roi_w, start_h + roi_h),
        bin=(start_w + col * bin_w, start_h + row * bin_h, start_w + (col + 1) * bin_w, start_h + (row + 1) * bin_h),
        grid=(grid_h, grid_w), samples=samples, by_hand=by_hand,
    )


def explain_pool(plane, box_cells_scale, output_size, row, col, channel=0) -> PoolExplanation:
    """Recompute RoIPool's output at bin (row, col): round the box, floor/ceil the bin, take the max."""
    x1, y1, x2, y2, scale = box_cells_scale
    rx1, ry1, rx2, ry2 = pool_rounded_box((x1, y1, x2, y2), scale)
    height, width = plane.shape
    roi_w, roi_h = max(rx2 - rx1 + 1, 1), max(ry2 - ry1 + 1, 1)
    out_h, out_w = output_size
    bin_h, bin_w = roi_h / out_h, roi_w / out_w
    h0 = min(max(math.floor(row * bin_h) + ry1, 0), height)
    h1 = min(max(math.ceil((row + 1) * bin_h) + ry1, 0), height)
    w0 = min(max(math.floor(col * bin_w) + rx1, 0), width)
    w1 = min(max(math.ceil((col + 1) * bin_w) + rx1, 0), width)
    cells = [[float(plane[r, c]) for c in range(w0, w1)] for r in range(h0, h1)]
    values = [value for line in cells for value in line]
    by_hand = max(values) if values else 0.0  # an empty bin is 0, as torchvision defines it
    return PoolExplanation(row=row, col=col, channel=channel, rounded=(rx1, ry1, rx2, ry2),
                           rows=(h0, h1), cols=(w0, w1), cells=cells, by_hand=by_hand)


def parse_explain(text: str, box_count: int, output_size: tuple[int, int]) -> tuple[int, int, int]:
    """``"2"`` or ``"2:3,4"`` → (box index 0-based, row, col); default bin is the centre."""
    match = re.fullmatch(r"\s*(\d+)\s*(?::\s*(\d+)\s*,\s*(\d+)\s*)?", text)
    if not match:
        raise BadInput(f"--explain {text!r}: use BOX or BOX:ROW,COL (box numbers start at 1), e.g. 1 or 1:3,3")
    number = int(match.group(1))
    if not 1 <= number <= box_count:
        raise BadInput(f"--explain {text!r}: box {number} does not exist; there are {box_count} boxes")
    row = int(match.group(2)) if match.group(2) else output_size[0] // 2
    col = int(match.group(3)) if match.group(3) else output_size[1] // 2
    if not (0 <= row < output_size[0] and 0 <= col < output_size[1]):
        raise BadInput(f"--explain {text!r}: bin ({row},{col}) is outside the {output_size[0]}x{output_size[1]} output (rows and columns start at 0)")
    return number - 1, row, col


def explain_box(report: RoiReport, box_index: int, row: int, col: int, channel: int) -> list[Any]:
    """Explanations (one per op run) for one value of the box with global index ``box_index``."""
    image, local = _locate(report, box_index)
    result = image.boxes[local]
    plane_tensor = image.feature_map.tensor[0]
    if not 0 <= channel < plane_tensor.shape[0]:
        raise BadInput(f"--channel {channel}: the {report.layer} map has channels 0..{plane_tensor.shape[0] - 1}")
    plane = plane_tensor[channel].double().cpu()
    spec = (*result.input_box, image.feature_map.spatial_scale)
    explanations = []
    for op in report.ops:
        if op == "align":
            explanation = explain_align(plane, spec, report.output_size, row, col, report.sampling_ratio, report.aligned, channel)
        else:
            explanation = explain_pool(plane, spec, report.output_size, row, col, channel)
        explanation.op_value = float(image.outputs[op][local, channel, row, col])
        explanations.append(explanation)
    return explanations


def _locate(report: RoiReport, box_index: int):
    for image in report.images:
        if box_index < len(image.boxes):
            return image, box_index
        box_index -= len(image.boxes)
    raise BadInput("--explain: no such box")


# ---------------------------------------------------------------- the notes' worked examples


@dataclass
class NotesExamples:
    feature_map: Any  # Tensor[16, 16] synthetic map, value = 16 * row + col
    pool_box: tuple[float, float, float, float]
    pool_output: Any  # Tensor[7, 7] from torchvision's roi_pool
    pool_by_hand: Any  # Tensor[7, 7]: max of each 2×2 cell block
    pool_bins: list[PoolExplanation]
    point: tuple[float, float]  # (x, y) = (3.6, 5.2)
    align: AlignExplanation
    align_output: float


def notes_examples() -> NotesExamples:
    """Reproduce the notes' two worked examples on a small synthetic map (spatial scale 1).

    1. A 14×14 region pooled to 7×7: every bin is a 2×2 block of cells, max-pooled.
    2. The point (x, y) = (3.6, 5.2): neighbours (3,5), (4,5), (3,6), (4,6) with weights
       0.32, 0.48, 0.08, 0.12 — taken as RoIAlign's single sample of a 1×1 box centred there.
    """
    import torch
    from torchvision.ops import roi_align, roi_pool

    grid = torch.arange(256, dtype=torch.float64).reshape(16, 16)
    grid = torch.sin(grid * 0.37) * 10 + grid / 8  # varied values so each max is visible
    features = grid.float()[None, None]
    pool_box = (1.0, 1.0, 14.0, 14.0)  # cells 1..14 inclusive: a 14×14 region
    rois = torch.tensor([[0.0, *pool_box]])
    pool_output = roi_pool(features, rois, (7, 7), 1.0)[0, 0]
    blocks = grid[1:15, 1:15].reshape(7, 2, 7, 2).amax(dim=(1, 3))
    plane = grid
    bins = [explain_pool(plane, (*pool_box, 1.0), (7, 7), r, c) for r in range(7) for c in range(7)]
    x, y = 3.6, 5.2
    box = (x - 0.5, y - 0.5, x + 0.5, y + 0.5)  # aligned=False: one bin, one sample at its centre
    align = explain_align(plane, (*box, 1.0), (1, 1), 0, 0, sampling_ratio=1, aligned=False)
    align_output = float(roi_align(features, torch.tensor([[0.0, *box]]), (1, 1), 1.0, 1, False)[0, 0, 0, 0])
    align.op_value = align_output
    return NotesExamples(
        feature_map=grid, pool_box=pool_box, pool_output=pool_output.double(), pool_by_hand=blocks,
        pool_bins=bins, point=(x, y), align=align, align_output=align_output,
    )
