"""RoIPool and RoIAlign on a CNN feature map: the settings they take together, and the pooling.

The feature maps come from ``vizcli.roi.backbones`` (one ResNet stage, or a feature pyramid's
levels, each box pooled from the level ``MultiScaleRoIAlign`` assigns it), run by
``vizcli.roi.extract.RoIExtractor`` on inputs zero-padded to ``padded_size``. The pooling itself
is ``torchvision.ops.roi_align`` / ``roi_pool`` (``roi_features``), called on boxes validated
first (torchvision only ``assert``s); ``vizcli.roi.explain`` redoes one output value by hand, so a
reader can see every sample point, neighbour and weight.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vizcli.common.errors import BadInput
from vizcli.common.sizes import parse_size
from vizcli.roi.backbones import FPN, STAGES, stage_channels

LAYERS = (*STAGES, FPN)
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


def check_max_size(max_size: int | None) -> int | None:
    if max_size is not None and max_size < MIN_MAX_SIZE:
        raise BadInput(f"at least {MIN_MAX_SIZE} pixels", parameter="max_size", value=max_size)
    return max_size


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


def padded_size(height: int, width: int) -> tuple[int, int]:
    """(height, width) of an input zero-padded to a multiple of ``PAD_TO`` (every stage's stride
    then divides it, so each map covers the image exactly)."""
    return math.ceil(height / PAD_TO) * PAD_TO, math.ceil(width / PAD_TO) * PAD_TO


def pad_batch(tensors: list[Any], size: tuple[int, int]) -> Any:
    """``Tensor[B, 3, H, W]``: each ``Tensor[3, h, w]`` zero-padded on the right and bottom to ``size`` (H, W)."""
    import torch
    import torch.nn.functional as F

    height, width = size
    return torch.stack([F.pad(tensor, (0, width - tensor.shape[2], 0, height - tensor.shape[1])) for tensor in tensors])


def roi_features(
    features,
    boxes,
    op: str,
    spec: PoolSpec,
    chunk: int | None = None,
    progress: Callable[[int], None] | None = None,
    image_index=None,
):
    """Pool ``boxes`` (``Tensor[K, 4]``, x1,y1,x2,y2 in input pixels) from ``features``.

    ``features`` is ``Tensor[B, C, H, W]``; ``image_index`` (``Tensor[K]``, default all 0) says which
    of the B maps each box lies on. Returns ``Tensor[K, C, h, w]`` with ``(h, w) =
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
            part = boxes[start : start + chunk].to(features.device, features.dtype)
            owner = (torch.zeros((part.shape[0], 1), dtype=part.dtype, device=part.device) if image_index is None
                     else image_index[start : start + chunk].to(features.device, features.dtype).reshape(-1, 1))
            rois = torch.cat([owner, part], dim=1)
            if op == "align":
                pooled = roi_align(features, rois, output_size, spec.spatial_scale, spec.sampling_ratio, spec.aligned)
            else:
                pooled = roi_pool(features, rois, output_size, spec.spatial_scale)
            result[start : start + part.shape[0]] = pooled
            if progress is not None:
                progress(part.shape[0])
    return result


def pool_rounded_cells(cells):
    """RoIPool's first rounding of boxes in feature cells (``ndarray[K, 4]``): C's ``round``,
    halves away from zero; the ends are inclusive cells. Returns ``ndarray[K, 4]`` int64."""
    import numpy as np

    return (np.sign(cells) * np.floor(np.abs(cells) + 0.5)).astype(np.int64)
