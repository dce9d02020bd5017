"""What a few single images show: ``RoIExtractor``'s result for them, with the geometry of every box.

A single image is a dataset of one: ``report_images`` hands the images and their boxes to the same
``RoIExtractor`` a dataset run calls (with ``details``: it keeps each image's feature maps, loading
steps and picture), then adds what the table, ``--explain``, ``--plot`` and the saved arrays show
besides the features: where each box lands in cells, RoIPool's rounded box and its edge shifts, and
RoIAlign's bin size.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vizcli.common.errors import BadInput, RunFailure
from vizcli.common.formats import ROI_SCHEMA
from vizcli.roi.backbones import FPN
from vizcli.roi.boxes import Box
from vizcli.roi.pooling import PoolSpec, pool_rounded_cells


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


def measured_maps(maps: Mapping[str, Any], strides: Mapping[str, int], input_size: tuple[int, int]) -> dict[str, FeatureMap]:
    """Each level's map (``Tensor[1, C, h, w]``) with its spatial scale measured from the padded input,
    and checked against the level's stride."""
    from vizcli.roi.pooling import padded_size

    padded_h, padded_w = padded_size(input_size[1], input_size[0])
    measured = {}
    for name in strides:
        features = maps[name]
        feature_h, feature_w = features.shape[-2:]
        scale_x, scale_y = feature_w / padded_w, feature_h / padded_h
        if abs(scale_x - scale_y) > 1e-12 or abs(scale_x * strides[name] - 1) > 1e-12:
            raise RunFailure(f"level {name}: feature map {feature_w}×{feature_h} from input {padded_w}×{padded_h} "
                             f"is not 1/{strides[name]} on both axes")
        measured[name] = FeatureMap(tensor=features, input_size=input_size, padded=(padded_w, padded_h), spatial_scale=scale_x)
    return measured


@dataclass(slots=True)
class BoxResult:
    box: Box  # after clipping, original image pixels
    input_box: tuple[float, float, float, float]  # in the pixels the network saw (after max_size)
    cells: tuple[float, float, float, float]  # input_box × spatial_scale
    pool_cells: tuple[int, int, int, int]  # RoIPool's rounded box, ends inclusive
    pool_error_px: tuple[float, float, float, float]  # per edge, in original image pixels
    bin_size: tuple[float, float]  # RoIAlign bin (height, width) in cells
    level: str  # the feature map it was pooled from (the stage's name, or the pyramid level 0..3)
    spatial_scale: float  # of that level: cells per input pixel


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


def report_images(extractor: Any, images: list[str], boxes_by_image: Mapping[str, list[Box]],
                  warn: Callable[[str], None] = lambda message: None) -> RoiReport:
    """``extractor`` (an ``RoIExtractor``) on ``images`` (paths, ``-`` for stdin), each with its boxes.

    Any problem stops the run (a box entirely outside its image, or with ``strict`` partly outside);
    a box partly outside is clipped, with a ``warn``ing.
    """
    import torch

    given = [list(boxes_by_image.get(image) or []) for image in images]
    for image, boxes in zip(images, given):
        if not boxes:
            raise BadInput(f"image {image}: no boxes given; use boxes=x1,y1,x2,y2 or boxes_file=PATH")
    ids = [image if images.count(image) == 1 else f"{image} ({number + 1})" for number, image in enumerate(images)]
    extractor.details, extractor.on_error = True, "stop"
    result = extractor({"id": ids, "image": list(images), "boxes": [[list(box.coords) for box in boxes] for boxes in given]})
    backbone, chosen = extractor.backbone, extractor.spec
    spec = PoolSpec.for_layer(backbone.layer, chosen.output_size, chosen.sampling_ratio, chosen.aligned)
    results = []
    for number, (source, boxes) in enumerate(zip(images, given)):
        size = (int(result["width"][number]), int(result["height"][number]))
        fitted = _fitted(boxes, result["kept"][number], result["box"][number], source, size, warn)
        factor = float(result["resize_factor"][number])
        levels = [str(level) for level in result["levels"][number]]
        maps = measured_maps(result["maps"][number], backbone.strides, tuple(result["input_size"][number]))
        results.append(ImageResult(
            source=source, steps=list(result["steps"][number]), size=size, resize_factor=factor, feature_maps=maps,
            boxes=box_geometry(fitted, factor, spec, levels, backbone.strides),
            outputs={op: torch.from_numpy(result[f"features_{op}"][number]) for op in extractor.ops},
            picture=result["picture"][number], exif_orientation=int(result["exif_orientation"][number])))
    return RoiReport(images=results, layer=backbone.layer, ops=extractor.ops, spec=spec, weights_note=backbone.weights_note,
                     device=str(extractor.device), model=backbone.model, notes=list(extractor.notes))


def _fitted(boxes: list[Box], kept: Any, clipped: Any, image: str, size: tuple[int, int],
            warn: Callable[[str], None]) -> list[Box]:
    """The given boxes as the extractor pooled them (clipped to the image), each clipped one warned about."""
    fitted = []
    for index, coords in zip((int(k) for k in kept), clipped):
        box = boxes[index]
        x1, y1, x2, y2 = (float(value) for value in coords)
        if (x1, y1, x2, y2) != box.coords:
            warn(f"box {box.number} {_shown(box.coords)}: partly outside {image} ({size[0]}×{size[1]}); clipped to "
                 f"{_shown((x1, y1, x2, y2))}")
        fitted.append(box._replace(x1=x1, y1=y1, x2=x2, y2=y2))
    return fitted


def _shown(coords: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{value:g}" for value in coords) + ")"


def run_roi(
    images: list[str],
    boxes_by_image: Mapping[str, list[Box]],
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
    model: str = "resnet18",
) -> RoiReport:
    """Pool ``boxes_by_image`` (``Box`` lists, x1,y1,x2,y2 in image pixels) on ``images`` with ``model``'s
    ``layer``: an ``RoIExtractor`` built from these settings, then ``report_images``.

    ``spec`` gives the output size, sampling ratio and alignment; each box is pooled at the spatial
    scale of its own level.
    """
    from vizcli.roi.extract import RoIExtractor

    spec = spec or PoolSpec()
    extractor = RoIExtractor(model=model, weights=weights, layer=layer, op=",".join(ops), output_size=spec.output_size,
                             sampling_ratio=spec.sampling_ratio, aligned=spec.aligned, max_size=max_size, device=device,
                             seed=seed, max_pixels=max_pixels, strict=strict)
    return report_images(extractor, images, boxes_by_image, warn)
