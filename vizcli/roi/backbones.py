"""The feature maps boxes are pooled from: one ResNet stage, or the levels of a feature pyramid.

``--layer layer1..layer4`` takes one stage of any torchvision ResNet, ResNeXt or Wide-ResNet
(strides 4, 8, 16, 32; channels read from the model). ``--layer fpn`` takes the four levels
P2–P5 (strides 4–32, 256 channels) of a feature pyramid: the trained one inside
``fasterrcnn_resnet50_fpn`` / ``maskrcnn_*`` / ``keypointrcnn_*`` (``--weights DEFAULT``), or one
built by torchvision's ``resnet_fpn_backbone`` recipe over a classification ResNet (its pyramid
layers are then seeded random: torchvision ships no weights for them). Each box is pooled from
the level ``torchvision.ops.MultiScaleRoIAlign`` assigns it (FPN paper eq. 1: canonical box
224 px at level 4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from vizcli.common.errors import BadInput

STAGES = {"layer1": 4, "layer2": 8, "layer3": 16, "layer4": 32}
FPN = "fpn"
FPN_LEVELS = {"0": 4, "1": 8, "2": 16, "3": 32}  # torchvision's names for P2..P5 → stride
CANONICAL_SCALE, CANONICAL_LEVEL = 224, 4
RESNET_PREFIXES = ("resnet", "resnext", "wide_resnet")
FPN_DETECTORS = (
    "fasterrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn_v2", "maskrcnn_resnet50_fpn",
    "maskrcnn_resnet50_fpn_v2", "keypointrcnn_resnet50_fpn",
)


@dataclass
class Backbone:
    """A module mapping ``Tensor[B, 3, H, W]`` to ``{level name: Tensor[B, C, h, w]}``, and its levels."""

    module: Any
    model: str
    layer: str
    strides: dict[str, int]  # level name → stride in input pixels
    channels: int
    weights_note: str
    notes: list[str] = field(default_factory=list)

    def level_names(self) -> list[str]:
        return list(self.strides)


def check_backbone(model: str, layer: str) -> None:
    """``BadInput`` unless ``layer`` can be taken from ``model`` (checked before anything loads)."""
    if layer not in STAGES and layer != FPN:
        raise BadInput(f"use one of {', '.join(STAGES)} or fpn", parameter="layer", value=layer)
    if model in FPN_DETECTORS:
        if layer != FPN:
            raise BadInput(f"{model}'s backbone gives pyramid levels; use layer='fpn'", parameter="layer", value=layer)
        return
    if not model.startswith(RESNET_PREFIXES):
        from vizcli.common.models import check_model_name

        check_model_name(model, any_task=True)
        raise BadInput(
            f"pools from ResNet stages: use a torchvision ResNet, ResNeXt or Wide-ResNet, or one of {', '.join(FPN_DETECTORS)} "
            "with layer='fpn'", parameter="model", value=model,
        )


BASIC_BLOCK_MODELS = ("resnet18", "resnet34")  # the rest (Bottleneck) end each stage with 4× the planes


def stage_channels(model: str, layer: str) -> int:
    """The channel count of ``layer`` of ``model`` as torchvision builds it, known before it loads:
    BasicBlock ResNets give 64·2^i, Bottleneck ones (ResNet-50+, ResNeXt, Wide-ResNet) 256·2^i,
    a pyramid 256 at every level."""
    check_backbone(model, layer)
    if layer == FPN:
        return 256
    index = list(STAGES).index(layer)
    return (64 if model in BASIC_BLOCK_MODELS else 256) * 2**index


def load_backbone(model: str = "resnet18", layer: str = "layer3", weights: str | None = None, seed: int = 0) -> Backbone:
    """The feature extractor for ``layer`` of ``model`` with ``weights``, in eval mode."""
    import torch
    from torchvision.models._utils import IntermediateLayerGetter

    from vizcli.common.models import load_model

    check_backbone(model, layer)
    loaded = load_model(model, weights=weights, seed=seed)
    network = loaded.model
    if model in FPN_DETECTORS:
        return Backbone(network.backbone.eval(), model, layer, dict(FPN_LEVELS), network.backbone.out_channels,
                        loaded.weights_note)
    if layer == FPN:
        from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor

        torch.manual_seed(seed)
        pyramid = _resnet_fpn_extractor(network, trainable_layers=5, returned_layers=[1, 2, 3, 4]).eval()
        note = f"the pyramid's layers are seeded random (seed {seed}): torchvision has weights for them only inside its detectors"
        return Backbone(pyramid, model, layer, dict(FPN_LEVELS), pyramid.out_channels, loaded.weights_note, [note])
    stage = getattr(network, layer)
    channels = _stage_channels(stage)
    module = IntermediateLayerGetter(network, {layer: layer}).eval()
    return Backbone(module, model, layer, {layer: STAGES[layer]}, channels, loaded.weights_note)


def _stage_channels(stage: Any) -> int:
    last = list(stage.children())[-1]
    for name in ("bn3", "bn2"):  # Bottleneck, BasicBlock
        norm = getattr(last, name, None)
        if norm is not None:
            return int(norm.num_features)
    raise BadInput("cannot tell the stage's channel count", parameter="layer")


def assign_levels(boxes: Any, strides: dict[str, int]) -> Any:
    """The index into ``strides`` of each box's level (``Tensor[K, 4]`` x1,y1,x2,y2 in input pixels).

    ``MultiScaleRoIAlign``'s rule: level = floor(4 + log2(sqrt(area) / 224) + 1e-6), clamped to the
    pyramid's levels; one level only means every box goes there.
    """
    import torch

    if len(strides) == 1:
        return torch.zeros(boxes.shape[0], dtype=torch.int64)
    levels = [round(math.log2(stride)) for stride in strides.values()]
    k_min, k_max = min(levels), max(levels)
    widths = boxes[:, 2] - boxes[:, 0]
    heights = boxes[:, 3] - boxes[:, 1]
    size = torch.sqrt(widths * heights)
    target = torch.floor(CANONICAL_LEVEL + torch.log2(size / CANONICAL_SCALE) + torch.tensor(1e-6, dtype=size.dtype))
    return (torch.clamp(target, min=k_min, max=k_max) - k_min).to(torch.int64)
