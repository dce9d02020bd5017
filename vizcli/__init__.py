"""vizcli: see inside the models you read about.

The public Python API is imported lazily so that ``import vizcli`` (and ``vizcli --help``)
never pulls in torch.
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "load_image": "vizcli.images",
    "trace_shapes": "vizcli.trace",
    "check_diagram": "vizcli.diagram",
    "roi_features": "vizcli.roi",
    "explain_box": "vizcli.roi",
    "load_bert": "vizcli.embed",
    "embed_texts": "vizcli.embed",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vizcli' has no attribute {name!r}")
