"""vizcli: see inside the models you read about.

The public Python API is imported lazily so that ``import vizcli`` (and ``vizcli --help``)
never pulls in torch; the ``TYPE_CHECKING`` imports let editors and mypy see the names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "load_image": "vizcli.common.images",
    "load_model": "vizcli.common.models",
    "trace_shapes": "vizcli.shapes.trace",
    "run_shapes": "vizcli.shapes.report",
    "run_module_shapes": "vizcli.shapes.report",
    "compare_models": "vizcli.shapes.model_comparison",
    "diff_checkpoints": "vizcli.shapes.checkpoint_diff",
    "ActivationOptions": "vizcli.shapes.activations",
    "check_diagram": "vizcli.shapes.diagram",
    "PoolSpec": "vizcli.roi.pooling",
    "roi_features": "vizcli.roi.pooling",
    "run_roi": "vizcli.roi.report",
    "explain_box": "vizcli.roi.explain",
    "load_bert": "vizcli.embed.loading",
    "embed_texts": "vizcli.embed.encode",
    "Embedder": "vizcli.embed.embedder",
    "RoIExtractor": "vizcli.roi.extract",
    "run_claims": "vizcli.approx.claims",
    "Searcher": "vizcli.search.searcher",
}

if TYPE_CHECKING:
    from vizcli.approx.claims import run_claims
    from vizcli.common.images import load_image
    from vizcli.common.models import load_model
    from vizcli.embed.embedder import Embedder
    from vizcli.embed.encode import embed_texts
    from vizcli.embed.loading import load_bert
    from vizcli.roi.explain import explain_box
    from vizcli.roi.extract import RoIExtractor
    from vizcli.roi.pooling import PoolSpec, roi_features
    from vizcli.roi.report import run_roi
    from vizcli.search.searcher import Searcher
    from vizcli.shapes.activations import ActivationOptions
    from vizcli.shapes.checkpoint_diff import diff_checkpoints
    from vizcli.shapes.diagram import check_diagram
    from vizcli.shapes.model_comparison import compare_models
    from vizcli.shapes.report import run_module_shapes, run_shapes
    from vizcli.shapes.trace import trace_shapes

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vizcli' has no attribute {name!r}")
