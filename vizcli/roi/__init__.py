"""`vizcli roi`: RoIAlign / RoIPool on ResNet features, with worked explanations and pictures.

``vizcli.roi.RoIExtractor`` is the Python API for batches of images (and Ray Data's
``map_batches``); it is imported on first use, so importing this package loads no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vizcli.roi.extract import RoIExtractor

__all__ = ["RoIExtractor"]


def __getattr__(name: str) -> Any:
    if name == "RoIExtractor":
        from vizcli.roi.extract import RoIExtractor

        return RoIExtractor
    raise AttributeError(f"module 'vizcli.roi' has no attribute {name!r}")
