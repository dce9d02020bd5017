"""Checkpoint against checkpoint: what fine-tuning changed, per layer, in the weights and in the activations.

Per layer (a module: the state-dict keys before their last dot), the floating tensors both checkpoints hold
are joined into one vector each, A and B, and compared in float64: the relative change ``‖B − A‖ / ‖A‖`` and the
cosine ``A·B / (‖A‖ ‖B‖)``. Keys held by one checkpoint only, or with different shapes, are listed. On the same
input, each row's output under B is compared with its output under A the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from vizcli.common.errors import BadInput

SORT_KEYS = ("order", "change", "cosine")


@dataclass
class LayerChange:
    """One layer's weights (or one row's output) under B against A."""

    name: str
    values: int  # elements compared
    relative_change: float  # ‖B − A‖ / ‖A‖ (inf when A is all zeros and B is not)
    cosine: float | None  # None when either side is all zeros
    max_abs_change: float
    shape: tuple[int, ...] = ()
    call: int = 0
    statistics: tuple[Any, Any] | None = None  # a row's output statistics under A and under B, when asked

    def as_dict(self) -> dict[str, Any]:
        row: dict[str, Any] = {"name": self.name, "values": self.values, "relative_change": _finite(self.relative_change),
                               "cosine": self.cosine, "max_abs_change": self.max_abs_change}
        if self.shape:
            row.update(shape=list(self.shape), call=self.call)
        if self.statistics is not None:
            row.update(activation_a=_statistics(self.statistics[0]), activation_b=_statistics(self.statistics[1]))
        return row


def _statistics(found: Any) -> dict[str, Any] | None:
    return found.as_dict() if found is not None else None


def _finite(value: float) -> float | str:
    return value if math.isfinite(value) else "inf"


@dataclass
class CheckpointDiff:
    """Two checkpoints of one architecture compared: layers, activations, and keys present in one only."""

    model_name: str
    weights: tuple[str, str]
    layers: list[LayerChange]
    only_in_a: list[str] = field(default_factory=list)
    only_in_b: list[str] = field(default_factory=list)
    shape_differs: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    activations: list[LayerChange] = field(default_factory=list)
    input_note: str = ""
    activation_note: str = ""  # why activations were not compared, if they were not

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model_name, "weights": {"a": self.weights[0], "b": self.weights[1]},
            "layers": [layer.as_dict() for layer in self.layers],
            "only_in_a": self.only_in_a, "only_in_b": self.only_in_b,
            "shape_differs": [{"key": key, "a": list(a), "b": list(b)} for key, a, b in self.shape_differs],
            "input": self.input_note, "activations": [row.as_dict() for row in self.activations],
            "activation_note": self.activation_note or None,
        }


def compare_vectors(name: str, a: Any, b: Any) -> LayerChange:
    """``a`` against ``b`` (flattened, float64): relative change, cosine, largest absolute change."""
    import torch

    a = a.detach().flatten().to(torch.float64)
    b = b.detach().flatten().to(torch.float64)
    norm_a = float(torch.linalg.vector_norm(a))
    norm_b = float(torch.linalg.vector_norm(b))
    difference = b - a
    change_norm = float(torch.linalg.vector_norm(difference))
    if norm_a > 0:
        relative = change_norm / norm_a
    else:
        relative = 0.0 if change_norm == 0 else math.inf
    cosine = float(torch.dot(a, b)) / (norm_a * norm_b) if norm_a > 0 and norm_b > 0 else None
    largest = float(difference.abs().max()) if difference.numel() else 0.0
    return LayerChange(name, int(a.numel()), relative, cosine, largest)


def layer_of(key: str) -> str:
    """``layer1.0.conv1.weight`` → ``layer1.0.conv1``; a top-level key is its own layer."""
    return key.rsplit(".", 1)[0] if "." in key else key


def compare_state_dicts(a: dict[str, Any], b: dict[str, Any]) -> tuple[list[LayerChange], list[str], list[str], list]:
    """Per-layer changes of the floating tensors both state dicts hold with one shape, in A's order; and the keys
    only A has, only B has, and those whose shapes differ."""
    import torch

    only_a = [key for key in a if key not in b]
    only_b = [key for key in b if key not in a]
    differs = [(key, tuple(a[key].shape), tuple(b[key].shape)) for key in a
               if key in b and tuple(a[key].shape) != tuple(b[key].shape)]
    groups: dict[str, list[str]] = {}
    for key, value in a.items():
        other = b.get(key)
        if (other is None or not isinstance(value, torch.Tensor) or not value.is_floating_point()
                or tuple(value.shape) != tuple(other.shape)):
            continue
        groups.setdefault(layer_of(key), []).append(key)
    layers = [compare_vectors(layer, torch.cat([a[key].flatten() for key in keys]), torch.cat([b[key].flatten() for key in keys]))
              for layer, keys in groups.items()]
    return layers, only_a, only_b, differs


def sort_and_filter(rows: list[LayerChange], sort: str = "order", min_change: float = 0.0) -> list[LayerChange]:
    """``rows`` with a relative change of at least ``min_change``, in model order, largest change first, or lowest
    cosine first."""
    if sort not in SORT_KEYS:
        raise BadInput(f"use one of {', '.join(SORT_KEYS)}", parameter="sort", value=sort)
    if min_change < 0 or not math.isfinite(min_change):
        raise BadInput("give a relative change of 0 or more (0.01 = 1%)", parameter="min_change", value=min_change)
    kept = [row for row in rows if row.relative_change >= min_change]
    if sort == "change":
        kept.sort(key=lambda row: -row.relative_change)
    elif sort == "cosine":
        kept.sort(key=lambda row: 2.0 if row.cosine is None else row.cosine)
    return kept


def _state_dict_of(model_name: str, weights: str) -> dict[str, Any]:
    """The checkpoint's tensors: a state-dict file as saved, or torchvision's named weights."""
    from vizcli.common.checkpoints import load_state_dict_file
    from vizcli.common.models import load_model, weights_enum_for

    if weights_enum_for(model_name, weights) is not None or weights.upper() == "DEFAULT":
        return load_model(model_name, weights=weights).model.state_dict()
    return load_state_dict_file(weights)


def diff_checkpoints(model_name: str, weights_a: str, weights_b: str, images: list[str] | None = None,
                     input_size: str | None = None, seed: int = 0, device: str = "cpu", sort: str = "order",
                     min_change: float = 0.0, activations: bool = True, statistics: bool = False,
                     keep_size: bool = False, max_pixels: int | None = None) -> CheckpointDiff:
    """Compare two checkpoints of the torchvision model ``model_name`` (paths, ``DEFAULT`` or a weights name).

    The activations are compared on the first image (prepared as ``run_shapes`` prepares it) or a seeded synthetic
    ``input_size`` input, each row's output under B against A; skipped, with a note, when a checkpoint does not fit
    the architecture. ``statistics`` adds each row's output statistics under A and under B.
    """
    from vizcli.common.models import check_model_name
    from vizcli.shapes.report import prepare_inputs

    sort_and_filter([], sort, min_change)  # the choices, checked before anything loads
    check_model_name(model_name, any_task=True)
    if weights_a == weights_b:
        raise BadInput("give two different checkpoints", parameter="weights", value=weights_b)
    inputs = prepare_inputs(model_name, (images or [])[:1], input_size, keep_size, seed, max_pixels) if activations else []
    a, b = _state_dict_of(model_name, weights_a), _state_dict_of(model_name, weights_b)
    layers, only_a, only_b, differs = compare_state_dicts(a, b)
    result = CheckpointDiff(model_name, (weights_a, weights_b), sort_and_filter(layers, sort, min_change), only_a, only_b, differs)
    if inputs:
        label, steps, sample = inputs[0]
        result.input_note = f"{label}: " + " → ".join(steps)
        _compare_activations(result, a, b, sample, device, statistics)
        result.activations = sort_and_filter(result.activations, sort, min_change)
    return result


def _compare_activations(result: CheckpointDiff, a: dict[str, Any], b: dict[str, Any], sample: Any, device: str,
                         statistics: bool) -> None:
    """Run the model under A, keeping every row's output, then under B, comparing each row's output as it is made."""
    from vizcli.common.checkpoints import check_state_dict_fits
    from vizcli.common.models import build_model
    from vizcli.common.runtime import resolve_device
    from vizcli.shapes.activations import tensor_statistics
    from vizcli.shapes.trace import trace_shapes

    target = resolve_device(device)
    model = build_model(result.model_name).eval().to(target)
    expected = model.state_dict()
    try:
        fitted = [check_state_dict_fits(expected, {k: v for k, v in sd.items() if k in expected or not k.endswith(".num_batches_tracked")},
                                        parameter="weights", value=name) for sd, name in ((a, result.weights[0]), (b, result.weights[1]))]
    except BadInput as error:
        result.activation_note = f"activations not compared: {error}"
        return
    kept: dict[tuple[str, int], Any] = {}
    before_statistics: dict[tuple[str, int], Any] = {}

    def keep(record: Any, tensor: Any) -> None:
        kept[(record.name, record.call)] = tensor.detach().clone()
        if statistics:
            before_statistics[(record.name, record.call)] = tensor_statistics(tensor)

    def against(record: Any, tensor: Any) -> None:
        before = kept.pop((record.name, record.call), None)
        if before is None or before.shape != tensor.shape or not tensor.is_floating_point():
            return
        change = compare_vectors(record.name, before, tensor)
        change.shape, change.call = tuple(tensor.shape), record.call
        if statistics:
            change.statistics = (before_statistics.get((record.name, record.call)), tensor_statistics(tensor))
        result.activations.append(change)

    example = sample.unsqueeze(0).to(target)
    for state_dict, observer in zip(fitted, (keep, against)):
        model.load_state_dict(state_dict)
        trace = trace_shapes(model, example, observers=(observer,))
        if trace.error is not None:
            result.activation_note = f"activations not compared: the forward pass failed at {trace.failed_at}: {trace.error}"
            result.activations = []
            return
