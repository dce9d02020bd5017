"""Options shared by several commands, declared once (their choices live in ``vizcli.common.choices``).

Each alias is an ``Annotated`` type that carries its flag names and help text, so a command
declares ``device: DeviceOption = Device.auto`` and ``--help`` lists the choices. Typer
validates enum choices itself; the CLI's error boundary turns a bad choice into the usual
one ``Error:`` line that names the allowed values. Standard library and typer only: this
module is imported by ``vizcli --help``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from vizcli.common.choices import (  # noqa: F401 (re-exported: the commands import their choices from here)
    Activation,
    AnnotationsFormat,
    ApproxFormat,
    Choice,
    ComputeDtype,
    EmbedDtype,
    EmbedFormat,
    EncodingErrors,
    Engine,
    FeatureFormat,
    OnError,
    OnOverflow,
    Optimizer,
    Precision,
    RoiFormat,
    RoiLayer,
    ShapesFormat,
    ShardFormat,
    StorageDtype,
)
from vizcli.common.runtime import DEVICES


def complete_model_name(incomplete: str) -> list[str]:
    """Shell completion for ``--model``: torchvision's classification, segmentation, detection and
    video models (imported only on TAB)."""
    from vizcli.common.models import known_models

    return [name for name in known_models() if name.startswith(incomplete)]


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
