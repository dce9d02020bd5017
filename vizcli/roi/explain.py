"""Worked computations: one RoIAlign or RoIPool value recomputed by hand, and the notes' examples.

``explain_align`` and ``explain_pool`` redo torchvision's arithmetic for one bin of one
channel in plain Python, listing every sample point, neighbour and weight (or every cell of
the bin), so a reader can check each number. ``notes_examples`` reproduces the notes' two
worked examples on a small synthetic map.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from vizcli.common.errors import BadInput
from vizcli.roi.pooling import PoolSpec, pool_rounded_cells
from vizcli.roi.report import RoiReport

NOTES_MAP_SIDE = 16  # the synthetic map of the notes' examples is 16×16


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


def explain_align(plane, box, spec: PoolSpec, row: int, col: int, channel: int = 0) -> AlignExplanation:
    """Recompute RoIAlign's output at bin (row, col) of one channel ``plane`` (``Tensor[H, W]``).

    ``box`` is ``(x1, y1, x2, y2)`` in input pixels; ``spec`` gives scale, bins and sampling.
    """
    x1, y1, x2, y2 = box
    scale, sampling_ratio, aligned = spec.spatial_scale, spec.sampling_ratio, spec.aligned
    offset = 0.5 if aligned else 0.0
    start_w, start_h = x1 * scale - offset, y1 * scale - offset
    end_w, end_h = x2 * scale - offset, y2 * scale - offset
    roi_w, roi_h = end_w - start_w, end_h - start_h
    if not aligned:
        roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
    out_h, out_w = spec.output_size
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


def explain_pool(plane, box, spec: PoolSpec, row: int, col: int, channel: int = 0) -> PoolExplanation:
    """Recompute RoIPool's output at bin (row, col): round the box, floor/ceil the bin, take the max.

    ``box`` is ``(x1, y1, x2, y2)`` in input pixels; only ``spec``'s scale and bins matter.
    """
    import numpy as np

    cells = np.asarray(box, dtype=np.float64).reshape(1, 4) * spec.spatial_scale
    rx1, ry1, rx2, ry2 = (int(value) for value in pool_rounded_cells(cells)[0])
    height, width = plane.shape
    roi_w, roi_h = max(rx2 - rx1 + 1, 1), max(ry2 - ry1 + 1, 1)
    out_h, out_w = spec.output_size
    bin_h, bin_w = roi_h / out_h, roi_w / out_w
    h0 = min(max(math.floor(row * bin_h) + ry1, 0), height)
    h1 = min(max(math.ceil((row + 1) * bin_h) + ry1, 0), height)
    w0 = min(max(math.floor(col * bin_w) + rx1, 0), width)
    w1 = min(max(math.ceil((col + 1) * bin_w) + rx1, 0), width)
    bin_cells = [[float(plane[r, c]) for c in range(w0, w1)] for r in range(h0, h1)]
    values = [value for line in bin_cells for value in line]
    by_hand = max(values) if values else 0.0  # an empty bin is 0, as torchvision defines it
    return PoolExplanation(row=row, col=col, channel=channel, rounded=(rx1, ry1, rx2, ry2),
                           rows=(h0, h1), cols=(w0, w1), cells=bin_cells, by_hand=by_hand)


def parse_explain(text: str, box_count: int, output_size: tuple[int, int]) -> tuple[int, int, int]:
    """``"2"`` or ``"2:3,4"`` → (box index 0-based, row, col); default bin is the centre."""
    match = re.fullmatch(r"\s*(\d+)\s*(?::\s*(\d+)\s*,\s*(\d+)\s*)?", text)
    if not match:
        raise BadInput("use BOX or BOX:ROW,COL (box numbers start at 1), e.g. 1 or 1:3,3", parameter="explain", value=text)
    number = int(match.group(1))
    if not 1 <= number <= box_count:
        there = "there is 1 box" if box_count == 1 else f"there are {box_count:,} boxes"
        raise BadInput(f"box {number} does not exist; {there} (boxes are numbered from 1)", parameter="explain", value=text)
    row = int(match.group(2)) if match.group(2) else output_size[0] // 2
    col = int(match.group(3)) if match.group(3) else output_size[1] // 2
    if not (0 <= row < output_size[0] and 0 <= col < output_size[1]):
        raise BadInput(f"bin ({row},{col}) is outside the {output_size[0]}x{output_size[1]} output (rows and columns start at 0)", parameter="explain", value=text)
    return number - 1, row, col


def explain_box(report: RoiReport, box_index: int, row: int, col: int, channel: int) -> list[Any]:
    """Explanations (one per op run) for one value of the box with global index ``box_index``."""
    image, local = _locate(report, box_index)
    result = image.boxes[local]
    plane_tensor = image.map_of(result).tensor[0]
    if not 0 <= channel < plane_tensor.shape[0]:
        raise BadInput(f"the {report.layer} map has channels 0..{plane_tensor.shape[0] - 1}", parameter="channel", value=channel)
    plane = plane_tensor[channel].double().cpu()
    spec = report.spec.at_stride(1 / result.spatial_scale)  # the box's own level
    explanations = []
    for op in report.ops:
        explain = explain_align if op == "align" else explain_pool
        explanation = explain(plane, result.input_box, spec, row, col, channel)
        explanation.op_value = float(image.outputs[op][local, channel, row, col])
        explanations.append(explanation)
    return explanations


def _locate(report: RoiReport, box_index: int):
    for image in report.images:
        if box_index < len(image.boxes):
            return image, box_index
        box_index -= len(image.boxes)
    raise BadInput("no such box", parameter="explain", value=box_index + 1)


# ---------------------------------------------------------------- the notes' worked examples


@dataclass
class NotesExamples:
    feature_map: Any  # Tensor[16, 16] synthetic map, value = 10·sin(0.37·k) + k/8 for cell k = 16·row + col
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

    grid = torch.arange(NOTES_MAP_SIDE**2, dtype=torch.float64).reshape(NOTES_MAP_SIDE, NOTES_MAP_SIDE)
    grid = torch.sin(grid * 0.37) * 10 + grid / 8  # varied values so each max is visible
    features = grid.float()[None, None]
    pool_box = (1.0, 1.0, 14.0, 14.0)  # cells 1..14 inclusive: a 14×14 region
    rois = torch.tensor([[0.0, *pool_box]])
    pool_output = roi_pool(features, rois, (7, 7), 1.0)[0, 0]
    blocks = grid[1:15, 1:15].reshape(7, 2, 7, 2).amax(dim=(1, 3))
    plane = grid
    pool_spec = PoolSpec((7, 7), spatial_scale=1.0)
    bins = [explain_pool(plane, pool_box, pool_spec, r, c) for r in range(7) for c in range(7)]
    x, y = 3.6, 5.2
    box = (x - 0.5, y - 0.5, x + 0.5, y + 0.5)  # aligned=False: one bin, one sample at its centre
    align = explain_align(plane, box, PoolSpec((1, 1), spatial_scale=1.0, sampling_ratio=1, aligned=False), 0, 0)
    align_output = float(roi_align(features, torch.tensor([[0.0, *box]]), (1, 1), 1.0, 1, False)[0, 0, 0, 0])
    align.op_value = align_output
    return NotesExamples(
        feature_map=grid, pool_box=pool_box, pool_output=pool_output.double(), pool_by_hand=blocks,
        pool_bins=bins, point=(x, y), align=align, align_output=align_output,
    )
