"""Options shared by several commands, declared once, and every fixed choice as an enum.

Each alias is an ``Annotated`` type that carries its flag names and help text, so a command
declares ``device: DeviceOption = Device.auto`` and ``--help`` lists the choices. Typer
validates enum choices itself; the CLI's error boundary turns a bad choice into the usual
one ``Error:`` line that names the allowed values. Standard library and typer only: this
module is imported by ``vizcli --help``.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from vizcli.common.runtime import DEVICES


def complete_model_name(incomplete: str) -> list[str]:
    """Shell completion for ``--model``: torchvision's classification, segmentation, detection and
    video models (imported only on TAB)."""
    from vizcli.common.models import known_models

    return [name for name in known_models() if name.startswith(incomplete)]


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


class RoiOp(Choice):
    align = "align"
    pool = "pool"
    both = "both"


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


class EmbedDtype(Choice):
    float32 = "float32"
    bfloat16 = "bfloat16"


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


def complete_device(incomplete: str) -> list[str]:
    """Shell completion for ``--device`` (``cuda:N`` is accepted too, so this is no enum)."""
    return [name for name in DEVICES if name.startswith(incomplete)]


DeviceOption = Annotated[
    str,
    typer.Option("--device", help="auto (CUDA when available), cpu, cuda or cuda:N.", autocompletion=complete_device),
]
ThreadsOption = Annotated[
    int | None, typer.Option("--threads", help="CPU threads for torch (default: torch's choice; capped at the cores).")
]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed for the random weights and any synthetic input.")]
WeightsOption = Annotated[
    str | None,
    typer.Option("--weights", help="State-dict file (.pth/.pt/.safetensors), or DEFAULT or a weights name (IMAGENET1K_V1): torchvision's, downloaded once into the torch hub cache."),
]
MaxPixelsOption = Annotated[
    int | None,
    typer.Option("--max-pixels", help="Refuse images that declare more pixels than this (decompression-bomb guard)."),
]
OutputOption = Annotated[
    str | None, typer.Option("--output", "-o", help="Write the result to FILE (atomically) instead of stdout.")
]
PlotOption = Annotated[str | None, typer.Option("--plot", help="Draw a picture to this PNG file.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or informational lines on stderr.")]
