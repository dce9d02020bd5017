"""Pictures: matplotlib on the Agg backend (no display needed), saved atomically as PNG."""

from __future__ import annotations

from typing import Any

from vizcli.common.files import atomic_output


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend, imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(figure: Any, path: str) -> None:
    """Write ``figure`` to ``path`` as PNG (temporary name, then rename) and release it."""
    plt = pyplot()
    try:
        with atomic_output(path) as handle:
            figure.savefig(handle, format="png")
    finally:
        plt.close(figure)
