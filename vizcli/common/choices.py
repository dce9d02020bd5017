"""Every fixed choice of vizcli, written once: the command line's enums and the core's checks.

``--help`` lists these as a flag's choices (``vizcli.common.options``), and the core checks the
same values when it is called from Python (``values(ComputeDtype)``). Standard library only.
"""

from __future__ import annotations

from enum import Enum


class Choice(str, Enum):
    """A fixed choice on the command line; its value is what the user types."""

    def __str__(self) -> str:
        return str(self.value)


class ShapesFormat(Choice):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"
    mermaid = "mermaid"


class StorageDtype(Choice):
    float32 = "float32"
    bfloat16 = "bfloat16"
    float16 = "float16"


class Optimizer(Choice):
    sgd = "sgd"
    adam = "adam"
    adamw = "adamw"


class FeatureFormat(Choice):
    pt = "pt"
    npy = "npy"
    npz = "npz"
    safetensors = "safetensors"


class RoiFormat(Choice):
    table = "table"
    json = "json"


class RoiLayer(Choice):
    layer1 = "layer1"
    layer2 = "layer2"
    layer3 = "layer3"
    layer4 = "layer4"
    fpn = "fpn"


class AnnotationsFormat(Choice):
    coco = "coco"
    voc = "voc"
    yolo = "yolo"
    csv = "csv"
    json = "json"


class ShardFormat(Choice):
    safetensors = "safetensors"
    npz = "npz"


class OnError(Choice):
    skip = "skip"
    stop = "stop"
    ignore = "ignore"


class Engine(Choice):
    local = "local"
    ray = "ray"


class ComputeDtype(Choice):
    float32 = "float32"
    bfloat16 = "bfloat16"


class EmbedDtype(Choice):
    float32 = "float32"
    bfloat16 = "bfloat16"
    int8 = "int8"
    auto = "auto"


class Precision(Choice):
    float32 = "float32"
    float16 = "float16"
    bfloat16 = "bfloat16"
    int8 = "int8"
    uint8 = "uint8"
    binary = "binary"
    ubinary = "ubinary"


class EmbedFormat(Choice):
    jsonl = "jsonl"
    json = "json"
    csv = "csv"
    tsv = "tsv"
    npy = "npy"
    npz = "npz"
    safetensors = "safetensors"


class OnOverflow(Choice):
    warn = "warn"
    error = "error"
    skip = "skip"


class EncodingErrors(Choice):
    strict = "strict"
    replace = "replace"  # type: ignore[assignment]  # the member shadows str.replace, which Choice never uses


class Activation(Choice):
    tanh = "tanh"
    relu = "relu"
    sigmoid = "sigmoid"


class ApproxFormat(Choice):
    table = "table"
    json = "json"
    csv = "csv"


def values(choice: type[Choice]) -> tuple[str, ...]:
    """The values of a choice, in order (what the core accepts)."""
    return tuple(member.value for member in choice)
