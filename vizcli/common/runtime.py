"""Device and thread selection shared by every command that runs a model."""

from __future__ import annotations

from typing import Any

from vizcli.common.errors import BadInput

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> Any:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is a ``BadInput``."""
    import torch

    name = name.lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise BadInput("no CUDA GPU is available here; use device='cpu' or device='auto'", parameter="device", value=name)
        return torch.device(name)
    raise BadInput(f"unknown device; use one of {', '.join(DEVICES)}", parameter="device", value=name)


def set_threads(threads: int | None) -> None:
    """Limit torch's intra-op threads (None leaves torch's default)."""
    if threads is None:
        return
    if threads < 1:
        raise BadInput("must be at least 1", parameter="threads", value=threads)
    import torch

    torch.set_num_threads(threads)
