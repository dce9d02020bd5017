"""The values, not only the shapes: per-row statistics of every output, taken as the forward pass runs.

``ActivationCollector.observe`` is handed each row's output tensor the moment the tracer makes the row
(``trace_shapes(..., observers=...)``), so nothing is kept beyond a few numbers a row: memory stays
bounded for large models. Feature maps are kept only where asked: every channel of the named layers
(for the grid), and one representative map per stage (for the strip), reduced to ``[H, W]`` at once.
A later in-place operation (ResNet's ``ReLU(inplace=True)`` after a BatchNorm) cannot change what a
row reports: its statistics are taken before the next operation runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vizcli.common.errors import BadInput
from vizcli.shapes.records import LayerRecord, Trace

STATISTICS = ("mean", "std", "min", "max", "zeros", "nan", "inf")


@dataclass(frozen=True)
class ActivationOptions:
    """What to measure of the values: statistics per row, every channel of ``maps`` layers, a per-stage strip."""

    statistics: bool = True
    maps: tuple[str, ...] = ()  # layer names whose channels the grid shows ("layer4.1.conv2")
    strip: bool = False  # keep one representative map per stage


@dataclass
class ActivationStatistics:
    """One row's output values: population mean and std (of the finite values), min, max, the fraction that is
    exactly zero (dead ReLUs), and how many are NaN or infinite."""

    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    zeros: float
    nan: int
    inf: int
    values: int

    def as_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "min": self.min, "max": self.max, "zero_fraction": self.zeros,
                "nan": self.nan, "inf": self.inf}


def tensor_statistics(tensor: Any) -> ActivationStatistics | None:
    """Statistics of ``tensor``'s values (None for integer and bool tensors: ids and masks, not activations)."""
    import torch

    if not tensor.is_floating_point() or tensor.numel() == 0:
        return None
    values = tensor.detach()
    if values.dtype in (torch.float16, torch.bfloat16):
        values = values.float()
    finite = torch.isfinite(values)
    all_finite = bool(finite.all())
    nan = 0 if all_finite else int(torch.isnan(values).sum())
    inf = 0 if all_finite else int(torch.isinf(values).sum())
    kept = values if all_finite else values[finite]
    zeros = float((values == 0).sum()) / values.numel()
    if kept.numel() == 0:
        return ActivationStatistics(None, None, None, None, zeros, nan, inf, values.numel())
    std, mean = torch.std_mean(kept, correction=0)
    low, high = torch.aminmax(kept)
    numbers = torch.stack([mean, std, low.to(mean.dtype), high.to(mean.dtype)]).tolist()
    return ActivationStatistics(numbers[0], numbers[1], numbers[2], numbers[3], zeros, nan, inf, values.numel())


@dataclass
class KeptMaps:
    """The feature maps kept during a pass: every channel of the named layers, one map per stage."""

    layers: dict[str, Any] = field(default_factory=dict)  # name → Tensor[C, H, W] (first sample)
    stages: dict[str, tuple[Any, LayerRecord]] = field(default_factory=dict)  # stage → (Tensor[H, W], the row it came from)
    input: Any = None  # the input image, Tensor[C, H, W]


class ActivationCollector:
    """An observer for ``trace_shapes``: statistics per row, and the maps ``options`` asks for."""

    def __init__(self, options: ActivationOptions) -> None:
        self.options = options
        self.statistics: dict[int, ActivationStatistics | None] = {}
        self.maps = KeptMaps()

    def observe(self, record: LayerRecord, tensor: Any) -> None:
        if self.options.statistics:
            self.statistics[record.index] = tensor_statistics(tensor)
        if tensor.dim() != 4 or not tensor.is_floating_point():
            return
        if record.name in self.options.maps and record.name not in self.maps.layers:
            self.maps.layers[record.name] = tensor[0].detach().float().clone()
        if self.options.strip and tensor.shape[-2] * tensor.shape[-1] > 1:  # a map, not a pooled 1×1 vector
            stage = record.name.split(".")[0]
            self.maps.stages[stage] = (representative_map(tensor[0]), record)

    def finish(self, trace: Trace) -> None:
        """Refuse map names that no row of ``trace`` has (after the pass: names come from the run)."""
        if trace.error is not None:
            return
        names = {record.name for record in trace.records}
        missing = [name for name in self.options.maps if name not in names]
        if missing:
            spatial = [r.name for r in trace.records if len(r.shape) == 4][-3:]
            raise BadInput(f"no row named {missing[0]!r} (a 4-D output's row name, e.g. {', '.join(spatial) or 'layer1.0.conv1'})",
                           parameter="channel_grid", value=missing[0])
        not_spatial = [name for name in self.options.maps if name not in self.maps.layers]
        if not_spatial:
            raise BadInput(f"{not_spatial[0]!r} has no channels × height × width output to draw", parameter="channel_grid",
                           value=not_spatial[0])


def representative_map(channels: Any) -> Any:
    """``Tensor[C, H, W]`` → its most active channel (the largest mean absolute value), ``Tensor[H, W]``."""
    activity = channels.detach().float().abs().mean(dim=(1, 2))
    return channels[int(activity.argmax())].detach().float().clone()


def channel_order(channels: Any) -> list[int]:
    """Channel indices of ``Tensor[C, H, W]``, most active (largest mean absolute value) first."""
    activity = channels.float().abs().mean(dim=(1, 2))
    return [int(index) for index in activity.argsort(descending=True, stable=True)]


def statistics_rows(records: list[LayerRecord], statistics: dict[int, ActivationStatistics | None]) -> list[dict[str, Any]]:
    """One dict per row that has statistics: name, call, shape and the values' figures."""
    rows = []
    for record in records:
        found = statistics.get(record.index)
        if found is not None:
            rows.append({"index": record.index, "name": record.name, "call": record.call, **found.as_dict()})
    return rows
