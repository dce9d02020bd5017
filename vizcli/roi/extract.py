"""Region features for whole datasets: decode in the background, batch, pool, hand back row columns.

``RoIExtractor`` holds the backbone (loaded once) and turns images with boxes into feature rows:
called on a batch dict (the dataset engine's local and Ray workers call it so, see
``vizcli.roi.rows``), it decodes the images in worker threads a bounded window ahead
(``prepared_stream``), runs images of the same padded size through the backbone together
(``batch_size``) and pools every box at the level it belongs to. An image that cannot be read, or
a box that cannot be pooled, becomes a problem record instead of stopping the run
(``on_error="skip"``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from vizcli.common.choices import ComputeDtype, values
from vizcli.common.errors import BadInput, VizcliError
from vizcli.common.formats import ROI_DATASET_SCHEMA
from vizcli.roi.annotations import AnnotatedImage
from vizcli.roi.backbones import Backbone, assign_levels, load_backbone
from vizcli.roi.boxes import clip_boxes
from vizcli.roi.ops import pooling_ops
from vizcli.roi.pooling import PAD_TO, PoolSpec, check_max_size, pad_batch, padded_size, parse_output_size, roi_features

DTYPES = values(ComputeDtype)
PREFETCH_PER_WORKER = 4


@dataclass
class Prepared:
    """One decoded image, ready for the backbone, with the boxes that will be pooled from it."""

    image: AnnotatedImage
    tensor: Any  # Tensor[3, H, W], normalised (after --max-size)
    size: tuple[int, int]  # original (width, height)
    factor: float  # input pixels per original pixel
    boxes: list[tuple[float, float, float, float]]  # clipped, original pixels
    kept: list[int]  # index into image.annotations of each box
    problems: list[dict[str, Any]] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)  # what loading did, in order (for display)
    exif_orientation: int = 1
    picture: Any = None  # the RGB image as loaded (original size), kept only for ``details``

    @property
    def padded(self) -> tuple[int, int]:
        _, height, width = self.tensor.shape
        return padded_size(height, width)

    @property
    def input_size(self) -> tuple[int, int]:
        """(width, height) the network sees, before padding (after ``max_size``)."""
        return int(self.tensor.shape[2]), int(self.tensor.shape[1])


class RoIExtractor:
    """A backbone and pooling settings, loaded once; pools boxes of batches of images.

    ``vizcli.roi.RoIExtractor(model="resnet50", layer="fpn", op="align", output_size=7)``; call
    ``prepare`` and ``pool`` (used by the local engine), or the extractor itself on a batch dict
    ``{"image": [path or bytes, ...], "boxes": [[[x1, y1, x2, y2], ...], ...]}`` to get it back with
    ``features`` added (one ``ndarray[K, C, h, w]`` per image; see ``__call__``), e.g. under Ray
    Data: ``ds.map_batches(RoIExtractor, fn_constructor_kwargs={"model": "resnet50"}, batch_size=8,
    compute=ray.data.ActorPoolStrategy(size=2))``.
    """

    def __init__(
        self,
        model: str = "resnet18",
        weights: str | None = None,
        layer: str = "layer3",
        op: str = "align",
        output_size: int | str | tuple[int, int] = 7,
        sampling_ratio: int = 2,
        aligned: bool = True,
        max_size: int | None = None,
        dtype: str = "float32",
        device: str = "auto",
        seed: int = 0,
        max_pixels: int | None = None,
        on_error: str = "stop",
        threads: int | None = None,
        batch_size: int = 8,
        decode_workers: int = 2,
        strict: bool = False,
    ) -> None:
        from vizcli.common.images import pixel_limit
        from vizcli.common.runtime import resolve_device

        if dtype not in DTYPES:
            raise BadInput(f"use one of {', '.join(DTYPES)}", parameter="dtype", value=dtype)
        if on_error not in ("skip", "stop"):
            raise BadInput("use skip or stop", parameter="on_error", value=on_error)
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        self.on_error, self.strict = on_error, strict
        self.batch_size, self.decode_workers = max(1, batch_size), max(1, decode_workers)
        self.ops = pooling_ops(op)
        size = output_size if isinstance(output_size, tuple) else parse_output_size(str(output_size))
        self.spec = PoolSpec(size, 1.0, sampling_ratio, aligned)
        self.max_size, self.dtype, self.max_pixels = check_max_size(max_size), dtype, pixel_limit(max_pixels)
        # True: results also carry each image's feature maps, loading steps and picture (for tables,
        # --explain and --plot of single images); a dataset run leaves it False
        self.details = False
        self.device = resolve_device(device)
        self.backbone: Backbone = load_backbone(model, layer, weights, seed)
        self.backbone.module.to(self.device)

    # ------------------------------------------------------------ description

    @property
    def feature_shape(self) -> tuple[int, int, int]:
        return (self.backbone.channels, *self.spec.output_size)

    @property
    def notes(self) -> list[str]:
        """What a user should know about these results (random weights, emulated bfloat16)."""
        from vizcli.common.runtime import cpu_has_bfloat16_units

        notes = list(self.backbone.notes)
        if self.dtype == "bfloat16" and self.device.type == "cpu" and cpu_has_bfloat16_units() is False:
            notes.append("this CPU has no bfloat16 units (AVX512-BF16/AMX): bfloat16 convolutions are emulated and run "
                         "many times slower than float32 here (16× in benchmarks/RESULTS.md)")
        return notes

    @functools.cached_property
    def weights_sha256(self) -> str:
        """A digest of the backbone's weights (``verify`` checks it)."""
        from vizcli.roi.detectors import state_sha256

        return state_sha256(self.backbone.module)

    @property
    def feature_shapes(self) -> dict[str, tuple[int, ...]]:
        """Each op's feature shape (``{"align": (C, h, w)}``)."""
        return {op: self.feature_shape for op in self.ops}

    def metadata(self) -> dict[str, Any]:
        """What every output row was computed with (written into the file's metadata)."""
        backbone = self.backbone
        return {
            "schema": ROI_DATASET_SCHEMA,
            "worker": "extractor",
            "model": backbone.model,
            "weights": backbone.weights_note,
            "weights_sha256": self.weights_sha256,
            "layer": backbone.layer,
            "levels": {name: {"stride": stride, "spatial_scale": 1 / stride} for name, stride in backbone.strides.items()},
            "ops": list(self.ops),
            "feature_shape": list(self.feature_shape),
            "output_size": list(self.spec.output_size),
            "sampling_ratio": self.spec.sampling_ratio,
            "aligned": self.spec.aligned,
            "dtype": self.dtype,
            "max_size": self.max_size,
            "strict": self.strict,
            "notes": list(backbone.notes),
        }

    # ------------------------------------------------------------ preparing

    def prepare(self, image: AnnotatedImage, source: bytes | None = None) -> Prepared:
        """Decode ``image`` (or ``source`` bytes), convert and clip its boxes, resize, normalise."""
        from vizcli.common.images import load_image, resize_image, to_normalized_tensor

        loaded = load_image(image.path, max_pixels=self.max_pixels, data=source)
        width, height = loaded.image.size
        boxes, kept, problems = clip_boxes(image, width, height, self.strict)
        picture, factor = loaded.image, 1.0
        if self.max_size is not None:
            picture, factor = resize_image(loaded, self.max_size)
        steps = [*loaded.record.steps, f"normalised, zero-padded to a multiple of {PAD_TO}"]
        return Prepared(image, to_normalized_tensor(picture), (width, height), factor, boxes, kept, problems, steps,
                        loaded.record.exif_orientation, loaded.image if self.details else None)

    # ------------------------------------------------------------ pooling

    def pool(self, batch: list[Prepared]) -> list[dict[str, Any]]:
        """Run the backbone once on ``batch`` (images of one padded size) and pool every box.

        Returns per image ``{"levels": [K] level names, "cells": ndarray[K, 4], op: ndarray[K, C, h, w]}``,
        with ``details`` also ``"maps"``: ``{level name: Tensor[1, C, h, w]}``.
        """
        import torch

        stacked = pad_batch([item.tensor for item in batch], batch[0].padded).to(self.device)
        with torch.inference_mode():
            if self.dtype == "bfloat16":
                with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16):
                    maps = self.backbone.module(stacked)
                maps = {name: value.float() for name, value in maps.items()}
            else:
                maps = self.backbone.module(stacked)
        names = self.backbone.level_names()
        boxes = [torch.tensor(item.boxes, dtype=torch.float32).reshape(-1, 4) * item.factor for item in batch]
        everything = torch.cat(boxes) if boxes else torch.zeros((0, 4))
        owner = torch.cat([torch.full((len(item.boxes),), i, dtype=torch.float32) for i, item in enumerate(batch)])
        levels = assign_levels(everything, self.backbone.strides)
        pooled = {op: torch.empty((everything.shape[0], *self.feature_shape), dtype=torch.float32) for op in self.ops}
        cells = torch.empty_like(everything)
        for index, name in enumerate(names):
            chosen = (levels == index).nonzero().flatten()
            if chosen.numel() == 0:
                continue
            stride = self.backbone.strides[name]
            cells[chosen] = everything[chosen] * (1.0 / stride)
            for op in self.ops:
                features = roi_features(maps[name], everything[chosen], op, self.spec.at_stride(stride), image_index=owner[chosen])
                pooled[op][chosen] = features.float().cpu()
        results, start = [], 0
        for number, item in enumerate(batch):
            end = start + len(item.boxes)
            result = {"levels": [names[i] for i in levels[start:end].tolist()], "cells": cells[start:end].numpy()}
            for op in self.ops:
                result[op] = pooled[op][start:end].numpy()
            if self.details:
                result["maps"] = {name: maps[name][number : number + 1] for name in names}
            results.append(result)
            start = end
        return results

    # ------------------------------------------------------------ a batch dict (Ray Data's map_batches)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Pool the boxes of a batch dict of images; returns it with, per image:

        ``features`` (the first op's ``ndarray[K, C, h, w]``, float32), ``features_<op>`` for every op,
        ``box`` (``[K, 4]`` the boxes pooled, clipped, in image pixels), ``kept`` (``[K]`` which of the
        given boxes they are: boxes outside the image are dropped), ``feature_box`` (``[K, 4]`` in
        cells of the level), ``levels`` (``[K]`` level names), ``width``/``height`` and ``problems``
        (a JSON list, ``"[]"`` when none). Optional columns: ``id``; ``normalized`` (per box: YOLO
        ``cx,cy,w,h`` in 0..1, converted with the image's real size). With ``on_error="skip"`` an
        image that cannot be read, or a box outside its image, becomes a problem; ``"stop"`` raises.
        With ``details``, also ``maps``, ``steps``, ``exif_orientation``, ``resize_factor`` and ``picture``
        per image (see ``Prepared``).
        """
        import json

        import numpy as np

        records = batch_records(batch)
        problems: dict[str, list[dict[str, Any]]] = {record.image_id: [] for record, _ in records}
        position = {record.image_id: number for number, (record, _) in enumerate(records)}
        prepared: list[Prepared | None] = [None] * len(records)

        def on_problem(problem: dict[str, Any]) -> None:
            if self.on_error != "skip":
                raise BadInput(problem_text(problem))
            problems[str(problem["image"])].append(problem)

        results: dict[int, dict[str, Any]] = {}
        stream = (item for item in prepared_stream(self, records, self.decode_workers, on_problem) if item.boxes)
        for group in same_size_groups(stream, self.batch_size):  # decoded a bounded window ahead, pooled in groups
            for member, pooled in zip(group, self.pool(group)):
                prepared[position[member.image.image_id]] = member
                results[id(member)] = pooled
        problems_in_order = [problems[record.image_id] for record, _ in records]
        empty = np.zeros((0, *self.feature_shape), dtype=np.float32)
        out: dict[str, list[Any]] = {name: [] for name in ("box", "kept", "feature_box", "levels", "width", "height", "problems",
                                                            *(f"features_{op}" for op in self.ops))}
        for done, found in zip(prepared, problems_in_order):
            result: dict[str, Any] | None = results.get(id(done)) if done is not None else None
            out["box"].append(np.asarray(done.boxes, dtype=np.float64).reshape(-1, 4) if done and result else np.zeros((0, 4)))
            out["kept"].append(np.asarray(done.kept, dtype=np.int64) if done and result else np.zeros(0, dtype=np.int64))
            out["feature_box"].append(result["cells"].astype(np.float64) if result else np.zeros((0, 4)))
            out["levels"].append(np.asarray(result["levels"] if result else [], dtype=str))
            out["width"].append(done.size[0] if done is not None else 0)
            out["height"].append(done.size[1] if done is not None else 0)
            out["problems"].append(json.dumps(found, ensure_ascii=False))
            for op in self.ops:
                out[f"features_{op}"].append(result[op] if result else empty)
        out["features"] = out[f"features_{self.ops[0]}"]
        if self.details:
            out["maps"] = [results[id(done)]["maps"] if done is not None else {} for done in prepared]
            for name, default in (("steps", []), ("exif_orientation", 1), ("factor", 1.0), ("input_size", (0, 0)),
                                  ("picture", None)):
                out["resize_factor" if name == "factor" else name] = [getattr(done, name) if done is not None else default
                                                                       for done in prepared]
        return {**batch, **out}


def problem_text(problem: dict[str, Any]) -> str:
    """A problem record as one message that names the image (and the box: 1 for the image's first)."""
    text, image = str(problem["problem"]), problem["image"]
    if "annotation_id" in problem:
        index = str(problem["annotation_id"])
        box = f"box {int(index) + 1}" if index.isdigit() else f"box {index}"
        return (f"image {image}: {box}{text[3:] if text.startswith('box ') else ': ' + text}; boxes are x1,y1,x2,y2 in the "
                "image's pixels: fix or drop it")
    return text if text.startswith(f"image {problem.get('path', image)}") else f"image {image}: {text}"


def batch_records(batch: dict[str, Any], with_boxes: bool = True) -> list[tuple[AnnotatedImage, bytes | None]]:
    """A batch dict's images as (image with its boxes, its bytes or None to read its path): ids from
    ``id`` (else row numbers), boxes from ``boxes`` (YOLO's 0..1 ones marked by ``normalized``)."""
    from vizcli.roi.annotations import Annotation

    ids, given, flags = batch.get("id"), batch.get("boxes") if with_boxes else None, batch.get("normalized")
    records: list[tuple[AnnotatedImage, bytes | None]] = []
    for number, image in enumerate(batch["image"]):
        boxes = given[number] if given is not None else []
        marks = flags[number] if flags is not None and given is not None else [False] * len(boxes)
        annotations = [Annotation((float(box[0]), float(box[1]), float(box[2]), float(box[3])), str(i), normalized=bool(mark))
                       for i, (box, mark) in enumerate(zip(boxes, marks))]
        image_id = str(ids[number]) if ids is not None else str(number)
        records.append((AnnotatedImage(image_id, image if isinstance(image, str) else "<bytes>", annotations),
                        None if isinstance(image, str) else bytes(image)))
    return records


def same_size_groups(items: Iterable[Any], batch_size: int) -> Iterator[list[Any]]:
    """Consecutive items (with a ``padded`` size) of one padded size, at most ``batch_size`` together (order kept)."""
    group: list[Any] = []
    for item in items:
        if group and (item.padded != group[0].padded or len(group) >= batch_size):
            yield group
            group = []
        group.append(item)
    if group:
        yield group


def prepared_stream(
    extractor: Any,
    images: list[tuple[AnnotatedImage, bytes | None]],
    workers: int,
    on_problem: Callable[[dict[str, Any]], None],
) -> Iterator[Any]:
    """Decode ``images`` (each with its bytes, or None to read its path) in ``workers`` threads, a
    bounded window ahead, in order; failures become problems."""

    def decode(record: tuple[AnnotatedImage, bytes | None]) -> Prepared | dict[str, Any]:
        image, data = record
        try:
            return extractor.prepare(image, data)
        except VizcliError as error:
            return {"image": image.image_id, "path": image.path, "problem": error.detail}
        except OSError as error:
            return {"image": image.image_id, "path": image.path, "problem": error.strerror or str(error)}

    window = max(1, workers) * PREFETCH_PER_WORKER
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="vizcli-decode") as pool:
        pending = []
        iterator = iter(images)
        for image in iterator:
            pending.append(pool.submit(decode, image))
            if len(pending) >= window:
                break
        while pending:
            result = pending.pop(0).result()
            following = next(iterator, None)
            if following is not None:
                pending.append(pool.submit(decode, following))
            if isinstance(result, dict):
                on_problem(result)
                continue
            for problem in result.problems:
                on_problem(problem)
            yield result
