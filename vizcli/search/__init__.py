"""`vizcli search`: nearest neighbours over an embed output (exact, quantized + rescoring, or a usearch index),
near-duplicate pairs, and the index's checks.

The Python API (``Searcher``, ``search``, ``build_index``, ``verify_index``) is imported on first use, so
importing this package loads neither numpy nor torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vizcli.search.index import build_index, verify_index
    from vizcli.search.searcher import Searcher, search

_LAZY = {"Searcher": "vizcli.search.searcher", "search": "vizcli.search.searcher", "build_index": "vizcli.search.index",
         "verify_index": "vizcli.search.index"}

__all__ = ["Searcher", "build_index", "search", "verify_index"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vizcli.search' has no attribute {name!r}")
