"""`vizcli embed`: BERT-family sentence vectors (pooler_output, cls, mean, max), streamed.

``vizcli.embed.Embedder`` is the Python API for batches (and Ray Data's ``map_batches``); it is
imported on first use, so importing this package loads no torch. ``vizcli.embed.run.run_embed`` is
the whole command as one call (texts in; stdout, a file or a dataset output out).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vizcli.embed.embedder import Embedder

__all__ = ["Embedder"]


def __getattr__(name: str) -> Any:
    if name == "Embedder":
        from vizcli.embed.embedder import Embedder

        return Embedder
    raise AttributeError(f"module 'vizcli.embed' has no attribute {name!r}")
