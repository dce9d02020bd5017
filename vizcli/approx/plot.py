"""The ``approx --plot`` picture: target and fits, errors on a log scale, error vs parameters."""

from __future__ import annotations

from vizcli.approx.fitting import Fit, SweepRow, Target
from vizcli.common.plotting import pyplot, save_png


def plot_fits(target: Target, fits: list[Fit], path: str, rows: list[SweepRow] | None = None) -> None:
    """Target and fits (top), absolute error on a log scale (bottom); for sweeps also error vs parameters."""
    import numpy as np
    import torch

    plt = pyplot()

    grid = target.grid()
    with torch.no_grad():
        truth = target.values(grid).numpy()
    x = grid.numpy()
    panels = 3 if rows and len(rows) > 1 else 2
    figure, axes = plt.subplots(1, panels, figsize=(6 * panels, 4.5), dpi=110)
    axes[0].plot(x, truth, color="black", lw=2.5, label=f"target {target.expression.text}")
    for fit in fits:
        if fit.curve is not None:
            axes[0].plot(x, fit.curve, lw=1.2, label=f"{fit.label} ({fit.params} params)")
            axes[1].semilogy(x, np.abs(np.asarray(fit.curve) - truth) + 1e-17, lw=1, label=fit.label)
    span = truth.max() - truth.min() or 1.0
    axes[0].set_ylim(truth.min() - 0.5 * span, truth.max() + 0.5 * span)
    axes[0].set_title("target and fits")
    axes[0].legend(fontsize=7)
    axes[1].set_title("absolute error (log scale)")
    axes[1].legend(fontsize=7)
    if panels == 3 and rows:
        for kind, key in (("network", "network"), ("Chebyshev", "chebyshev"), ("Taylor", "taylor")):
            points = [(getattr(row, key).params, getattr(row, key).max_error) for row in rows if getattr(row, key) is not None]
            if points:
                params, errors = zip(*sorted(points))
                axes[2].loglog(params, errors, marker="o", label=kind)
        axes[2].set_xlabel("free parameters")
        axes[2].set_ylabel("max error")
        axes[2].set_title("error vs parameters")
        axes[2].legend(fontsize=8)
    figure.tight_layout()
    save_png(figure, path)
