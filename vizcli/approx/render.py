"""Tables and records for ``vizcli approx``: fits, the sawtooth experiment and the claims report."""

from __future__ import annotations

from typing import Any

from vizcli.approx.claims import Claim
from vizcli.approx.fitting import GRID_POINTS, Fit, SweepRow, Target
from vizcli.approx.sawtooth import SawtoothResult
from vizcli.common.console import print_renderables
from vizcli.common.files import open_destination
from vizcli.common.formats import APPROX_CLAIMS_SCHEMA, APPROX_SCHEMA, write_records


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
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
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


def write_claims(claims: list[Claim], fmt: str, output: str | None) -> None:
    """The claims report as text (table), JSON or CSV."""
    with open_destination(output, binary=False) as stream:
        if fmt == "table":
            stream.write("\n".join(claim_lines(claims)) + "\n")
        else:
            document = {"schema": APPROX_CLAIMS_SCHEMA} if fmt == "json" else None
            write_records([claim.as_dict() for claim in claims], fmt, stream, document=document)


def write_sawtooth(result: SawtoothResult, fmt: str, output: str | None) -> None:
    """The sawtooth experiment as text, JSON or CSV (the built network first, then the shallow fits)."""
    with open_destination(output, binary=False) as stream:
        if fmt == "table":
            stream.write("\n".join(sawtooth_lines(result)) + "\n")
            return
        records = [{"setting": "sawtooth", "label": f"tent map depth {result.depth}", "kind": "network",
                    "params": result.params, "max_error": 0.0, "rms_error": 0.0, "seconds": 0.0,
                    "pieces": result.pieces, "note": "built"}]
        records += [{"setting": "shallow", **fit.as_dict()} for fit in result.shallow]
        write_records(records, fmt, stream, document={"schema": APPROX_SCHEMA} if fmt == "json" else None)


def write_sweep(problem: Target, target: str, rows: list[SweepRow], extra: list[Fit], fmt: str, output: str | None) -> None:
    """A sweep of fits (and any interpolation fits) as a table, JSON or CSV."""
    records = fit_records(rows, extra)
    low, high = problem.domain
    with open_destination(output, binary=False) as stream:
        if fmt == "table":
            title = f"approximating {target} on [{low:g}, {high:g}] (errors on {GRID_POINTS:,} grid points)"
            print_renderables([fits_table(records, title)], stream)
        else:
            document = {"schema": APPROX_SCHEMA, "target": target, "domain": [low, high]} if fmt == "json" else None
            write_records(records, fmt, stream, document=document)
