"""What a traced forward pass is made of: one ``LayerRecord`` per computation, the ``Trace`` that holds
them, and the wordings of their shapes (torch's, the notes' H×W×C, a text model's named axes)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LayerRecord:
    """One computation of the forward pass, in execution order.

    ``shape`` is the output as torch prints it (``(N, C, H, W)``); ``macs`` counts the
    multiply-accumulates of convolutions and linear layers only (torchvision's convention).
    ``params`` is counted at a module's first call only, so the column sums to the total.
    """

    index: int
    name: str  # qualified name: "layer2.0.downsample.0", "layer1.0.add"
    op: str  # diagram wording: "Conv2d 3x3, 128, stride=2"
    kind: str  # "Conv2d", "add", "flatten", …
    shape: tuple[int, ...]
    dtype: str
    params: int
    macs: int
    call: int = 0  # 0 for a module's first call, 1 for its second, …
    node: str = ""  # the fx node name ("layer1_0_relu_1"); empty for hooks
    inputs: list[str] = field(default_factory=list)  # fx node names this row reads
    parent: str = ""  # the enclosing module's qualified name ("layer2.0"); "" at the top
    depth: int = 1  # how many names deep: "fc" 1, "layer2.0" 2, "layer2.0.conv1" 3

    @property
    def bytes(self) -> int:
        import math

        sizes = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int64": 8, "int32": 4, "bool": 1, "uint8": 1}
        return math.prod(self.shape) * sizes.get(self.dtype, 4)

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "op": self.op,
            "kind": self.kind,
            "shape": list(self.shape),
            "diagram_shape": diagram_shape(self.shape),
            "dtype": self.dtype,
            "params": self.params,
            "macs": self.macs,
            "call": self.call,
        }


@dataclass
class Trace:
    """The records of one forward pass and how they were obtained."""

    records: list[LayerRecord]
    method: str  # "fx" or "hooks"
    input_shape: tuple[int, ...]
    output: Any = None  # the model's output tensor (None when the pass failed)
    failed_at: str | None = None  # name of the computation that raised
    error: str | None = None
    fallback_reason: str | None = None
    forward_seconds: float | None = None
    group_ops: dict[str, str] = field(default_factory=dict)  # "layer2" → "2× BasicBlock", for depth 1 and 2
    operator_macs: dict[str, int] = field(default_factory=dict)  # ATen operator kind → MACs, the whole pass
    operator_calls: dict[str, int] = field(default_factory=dict)  # kinds that carry no MACs → how often they ran
    used_parameters: set[str] | None = None  # parameters the pass touched (fx only; None when unknown)
    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # every input tensor: "0", "mask", "batch.ids"
    activations: dict[int, Any] = field(default_factory=dict)  # record index → statistics of its output (with stats)
    kept_maps: Any = None  # vizcli.shapes.activations.KeptMaps, when maps were asked for

    @property
    def shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        return [(record.name, record.shape) for record in self.records]


def notify(observers: tuple, record: LayerRecord, tensor: Any) -> None:
    """Hand ``record``'s output to each observer outside the tracer's modes: what an observer computes (activation
    statistics) is neither counted nor traced as the model's own work."""
    if not observers:
        return
    from torch.utils._python_dispatch import _disable_current_modes

    with _disable_current_modes():
        for observe in observers:
            observe(record, tensor)


def new_parameters(parameters: Any, seen: set[int]) -> int:
    """Elements of the ``parameters`` not in ``seen`` (their ids), which are added to it: a tied weight (an
    embedding's, reused by the output layer) or a module called twice is counted once."""
    total = 0
    for parameter in parameters:
        if id(parameter) not in seen:
            seen.add(id(parameter))
            total += parameter.numel()
    return total


def torch_shape(shape: tuple[int, ...]) -> str:
    """``(1, 128, 28, 28)`` → ``1×128×28×28``."""
    return "×".join(str(size) for size in shape)


def text_axes(shape: tuple[int, ...], length: int, kind: str = "", call: int = 0) -> str:
    """A text model's output with its axes named, batch dropped (``length``: the input's tokens):
    ``(1, 8, 384)`` → ``seq 8 × hidden 384``; attention's per-head values ``(1, 12, 8, 32)`` →
    ``heads 12 × seq 8 × head 32``, its scores ``(1, 12, 8, 8)`` → ``heads 12 × seq 8 × seq 8``."""
    rest = tuple(shape[1:])
    if len(rest) == 0:
        return "—"
    if len(rest) == 1:
        return f"hidden {rest[0]}"  # the pooler's [CLS] vector
    if len(rest) == 2 and rest[0] == length:
        return f"seq {length} × hidden {rest[1]}"
    if len(rest) == 3 and rest[1] == length:
        scores = kind == "softmax" or (kind == "matmul" and call % 2 == 0)  # QKᵀ, then softmax; the second matmul is ·V
        return f"heads {rest[0]} × seq {length} × {'seq' if scores else 'head'} {rest[2]}"
    return "×".join(str(size) for size in rest)


def diagram_shape(shape: tuple[int, ...]) -> str:
    """The notes' H×W×C wording, batch dropped: ``(1, 128, 28, 28)`` → ``28×28×128``."""
    if len(shape) == 4:
        _, channels, height, width = shape
        return f"{height}×{width}×{channels}"
    if len(shape) == 3:
        _, channels, length = shape
        return f"{length}×{channels}"
    if len(shape) == 2:
        return str(shape[1])
    return torch_shape(shape)


def trace_error_text(error: BaseException) -> str:
    """The error a traced forward raised, on one line, without fx's "While executing" tail."""
    # fx appends "While executing %node ..." and a traceback hint; keep the first part only.
    text = str(error).split("While executing")[0]
    text = re.sub(r"Proxy\((\w+)\)", r"\1", text)  # fx internals name values Proxy(getitem_2); show the name
    return " ".join(text.split()) or type(error).__name__


def human_count(value: float, unit: str = "") -> str:
    """``1814073344`` → ``1.814 G``."""
    for threshold, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= threshold:
            return f"{value / threshold:.3f} {suffix}{unit}"
    return f"{value:g} {unit}".strip()


def human_bytes(value: float) -> str:
    for threshold, suffix in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if value >= threshold:
            return f"{value / threshold:.2f} {suffix}"
    return f"{int(value)} B"
