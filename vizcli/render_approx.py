"""Tables, records and pictures for ``vizcli approx``."""

from __future__ import annotations

from typing import Any

from vizcli.approx import Claim, Fit, SawtoothResult, SweepRow, Target


def fit_records(rows: list[SweepRow], extra: list[Fit]) -> list[dict[str, Any]]:
    """Flat rows (networks and polynomials in one table) for table/json/csv."""
    records = []
    for row in rows:
        for fit in (row.network, row.chebyshev, row.taylor):
            if fit is not None:
                records.append({"setting": f"width {row.width}, depth {row.depth}", **fit.as_dict()})
    for fit in extra:
        records.append({"setting": "", **fit.as_dict()})
    return records


def fits_table(records: list[dict[str, Any]], title: str):
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column, justify in (("setting", "left"), ("model", "left"), ("params", "right"), ("max error", "right"),
                            ("RMS error", "right"), ("linear pieces", "right"), ("fit s", "right"), ("note", "left")):
        table.add_column(column, justify=justify)
    previous = None
    for record in records:
        setting = record["setting"] if record["setting"] != previous else ""
        previous = record["setting"]
        table.add_row(setting, record["label"], str(record["params"]), f"{record['max_error']:.2e}", f"{record['rms_error']:.2e}",
                      "" if record["pieces"] is None else str(record["pieces"]), f"{record['seconds']:.2f}", record["note"])
    return table


def sawtooth_lines(result: SawtoothResult) -> list[str]:
    lines = [f"sawtooth: tent map composed {result.depth} times, width 2, {result.params} parameters (built, not trained): "
             f"{result.pieces} linear pieces (2^{result.depth} = {2**result.depth})"]
    for fit in result.shallow:
        lines.append(f"  one hidden layer, {fit.label}: {fit.params} parameters, max error {fit.max_error:.2e}, "
                     f"{fit.pieces} pieces")
    if result.smallest_width:
        lines.append(f"  smallest one-hidden-layer width reaching max error ≤ {result.threshold}: {result.smallest_width}")
    else:
        lines.append(f"  no one-hidden-layer network tried reached max error ≤ {result.threshold}")
    return lines


def claim_lines(claims: list[Claim]) -> list[str]:
    lines = []
    for number, claim in enumerate(claims, start=1):
        lines += [f"{number}. The notes: “{claim.claim}”", f"   setting: {claim.setting}"]
        lines += [f"   measured: {item}" for item in claim.measured]
        lines += [f"   verdict: {claim.verdict.upper()} — {claim.thresholds} ({claim.seconds:.1f} s)", ""]
    counts = {verdict: sum(c.verdict == verdict for c in claims) for verdict in ("holds", "holds partly", "does not hold")}
    lines.append("summary: " + ", ".join(f"{n} {verdict}" for verdict, n in counts.items()))
    return lines


def plot_fits(target: Target, fits: list[Fit], path: str, rows: list[SweepRow] | None = None) -> None:
    """Target and fits (top), absolute error on a log scale (bottom); for sweeps also error vs parameters."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import torch

    from vizcli.output import atomic_output

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
    if panels == 3:
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
    with atomic_output(path) as handle:
        figure.savefig(handle, format="png")
    plt.close(figure)
