"""Model against model, checkpoint against checkpoint: as a table, JSON or CSV, and the per-layer change as a PNG."""

from __future__ import annotations

from typing import Any

from vizcli.common.console import info, print_renderables
from vizcli.common.errors import BadInput
from vizcli.common.files import open_destination
from vizcli.common.formats import to_json, write_records
from vizcli.shapes.records import human_bytes, human_count

MODELS_SCHEMA = "vizcli.shapes.models/1"
CHECKPOINTS_SCHEMA = "vizcli.shapes.checkpoints/1"
FORMATS = ("table", "json", "csv")


def _check_format(output_format: str, what: str) -> None:
    if output_format not in FORMATS:
        raise BadInput(f"{what} prints as table, json or csv", parameter="output_format", value=output_format)


def _signed(value: int) -> str:
    if value == 0:
        return "="
    return ("+" if value > 0 else "−") + (human_count(abs(value)) if abs(value) >= 1000 else f"{abs(value)}")


# ---------------------------------------------------------------- model against model


def model_comparison_renderables(comparison: Any) -> list[Any]:
    from rich.table import Table
    from rich.text import Text

    totals = comparison.totals()
    names = [figure["model"] for figure in totals]
    summary = Table(title="totals", title_justify="left")
    summary.add_column("")
    for name in names:
        summary.add_column(name, justify="right")
    if len(names) == 2:
        summary.add_column(f"{names[1]} − {names[0]}", justify="right")
    for label, key, show in (("input", "input", str), ("rows", "rows", lambda v: f"{v:,}"),
                             ("parameters", "parameters", lambda v: f"{v:,}"), ("MACs", "macs", human_count),
                             ("activation memory", "activation_bytes", human_bytes),
                             ("forward ms", "forward_ms", lambda v: "—" if v is None else f"{v:.1f}")):
        cells = [show(figure[key]) for figure in totals]
        if len(names) == 2:
            first, last = totals[0][key], totals[1][key]
            if key in ("rows", "parameters", "macs"):
                cells.append(_signed(last - first))
            elif key == "activation_bytes":
                cells.append(("+" if last >= first else "−") + human_bytes(abs(last - first)))
            else:
                cells.append("")
        summary.add_row(label, *cells)
    rows = Table(title=f"rows aligned by name · depth {comparison.depth}", title_justify="left")
    rows.add_column("name")
    for name in names:
        rows.add_column(f"{name} shape", justify="right")
        rows.add_column("params", justify="right")
        rows.add_column("MACs", justify="right")
    rows.add_column("Δ params", justify="right")
    rows.add_column("Δ MACs", justify="right")
    for row in comparison.rows:
        cells = [row.name]
        for cell in row.cells:
            if cell is None:
                cells += ["—", "", ""]
            else:
                cells += ["×".join(map(str, cell.shape)), f"{cell.params:,}", human_count(cell.macs) if cell.macs else "—"]
        cells += [_signed(row.delta("params")), _signed(row.delta("macs"))]
        rows.add_row(*cells)
    notes = [Text(f"{figure['model']}: {figure['weights']}") for figure in totals]
    notes += [Text(f"{figure['model']}: the forward pass failed: {figure['error']}") for figure in totals if figure["error"]]
    return [summary, rows, *notes, Text(f"Δ: {names[-1]} minus {names[0]}; — no such row")]


def print_model_comparison(comparison: Any, output_format: str, output: str | None, plot: str | None = None) -> None:
    """Write a ``ModelComparison`` as table, JSON or CSV; ``plot``: a PNG of each row's MACs per model."""
    _check_format(output_format, "a model comparison")
    with open_destination(output, binary=False) as stream:
        if output_format == "json":
            stream.write(to_json({"schema": MODELS_SCHEMA, **comparison.as_dict()}) + "\n")
        elif output_format == "csv":
            write_records(comparison.flat_rows(), "csv", stream)
        else:
            print_renderables(model_comparison_renderables(comparison), stream)
    if plot is not None:
        _plot_model_rows(comparison, plot)
        info(f"wrote {plot}")


def _plot_model_rows(comparison: Any, path: str) -> None:
    from vizcli.common.plotting import pyplot, save_png

    plt = pyplot()
    names = [report.model_name for report in comparison.reports]
    rows = comparison.rows
    figure, axis = plt.subplots(figsize=(max(6.0, 0.18 * len(rows) + 2), 4.5))
    width = 0.8 / len(names)
    for position, name in enumerate(names):
        values = [(row.cells[position].macs if row.cells[position] else 0) / 1e6 for row in rows]
        axis.bar([index + position * width for index in range(len(rows))], values, width=width, label=name)
    axis.set_xticks(range(len(rows)))
    axis.set_xticklabels([row.name for row in rows], rotation=90, fontsize=6)
    axis.set_ylabel("MACs (millions)")
    axis.set_title(f"{' vs '.join(names)} · MACs per row (depth {comparison.depth})")
    axis.legend()
    figure.tight_layout()
    save_png(figure, path)


# ---------------------------------------------------------------- checkpoint against checkpoint


def _cosine(value: float | None) -> str:
    return "—" if value is None else f"{value:.6f}"


def _change(value: float) -> str:
    return "inf" if value == float("inf") else f"{value:.3e}"


def checkpoint_renderables(diff: Any) -> list[Any]:
    from rich.table import Table
    from rich.text import Text

    out: list[Any] = [Text(f"{diff.model_name}: A = {diff.weights[0]}, B = {diff.weights[1]}")]
    layers = Table(title="weights per layer: ‖B − A‖ / ‖A‖ and cosine(A, B)", title_justify="left")
    for header, justify in (("layer", "left"), ("values", "right"), ("‖B−A‖/‖A‖", "right"), ("cosine", "right"),
                            ("max |B−A|", "right")):
        layers.add_column(header, justify=justify)  # type: ignore[arg-type]
    for row in diff.layers:
        layers.add_row(row.name, f"{row.values:,}", _change(row.relative_change), _cosine(row.cosine), f"{row.max_abs_change:.3e}")
    out.append(layers)
    for label, keys in (("only in A", diff.only_in_a), ("only in B", diff.only_in_b)):
        if keys:
            shown = ", ".join(keys[:8]) + (f", and {len(keys) - 8} more" if len(keys) > 8 else "")
            out.append(Text(f"{len(keys)} {'key' if len(keys) == 1 else 'keys'} {label}: {shown}"))
    for key, a, b in diff.shape_differs:
        out.append(Text(f"{key}: shape {tuple(a)} in A, {tuple(b)} in B (not compared)"))
    if diff.activations:
        out.append(Text(f"activations on the same input: {diff.input_note}"))
        with_statistics = diff.activations[0].statistics is not None
        table = Table(title="activations per row: ‖B − A‖ / ‖A‖ and cosine(A, B)", title_justify="left")
        headers = ["#", "row", "shape", "‖B−A‖/‖A‖", "cosine"]
        headers += ["mean A → B", "std A → B", "zeros A → B", "NaN/Inf B"] if with_statistics else []
        for header in headers:
            table.add_column(header, justify="left" if header == "row" else "right")
        for position, row in enumerate(diff.activations):
            name = row.name + (f" (call {row.call + 1})" if row.call else "")
            cells = [str(position), name, "×".join(map(str, row.shape)), _change(row.relative_change), _cosine(row.cosine)]
            if with_statistics:
                cells += _statistics_cells(row.statistics)
            table.add_row(*cells)
        out.append(table)
    if diff.activation_note:
        out.append(Text(diff.activation_note))
    return out


def _statistics_cells(pair: Any) -> list[str]:
    before, after = pair if pair is not None else (None, None)
    if before is None or after is None:
        return ["—"] * 4

    def number(value: float | None) -> str:
        return "—" if value is None else f"{value:.3g}"

    return [f"{number(before.mean)} → {number(after.mean)}", f"{number(before.std)} → {number(after.std)}",
            f"{before.zeros:.1%} → {after.zeros:.1%}", f"{after.nan}/{after.inf}" if after.nan or after.inf else "0"]


def print_checkpoint_diff(diff: Any, output_format: str, output: str | None, plot: str | None = None) -> None:
    """Write a ``CheckpointDiff`` as table, JSON or CSV (the per-layer rows); ``plot``: a PNG of the per-layer change."""
    _check_format(output_format, "a checkpoint comparison")
    with open_destination(output, binary=False) as stream:
        if output_format == "json":
            stream.write(to_json({"schema": CHECKPOINTS_SCHEMA, **diff.as_dict()}) + "\n")
        elif output_format == "csv":
            rows = [{"part": "weights", **row.as_dict()} for row in diff.layers]
            rows += [{"part": "activations", **_flat(row.as_dict())} for row in diff.activations]
            columns = list(dict.fromkeys(key for row in rows for key in row))  # weights rows leave the activation columns blank
            write_records([{key: row.get(key, "") for key in columns} for row in rows], "csv", stream)
        else:
            print_renderables(checkpoint_renderables(diff), stream)
    if plot is not None:
        _plot_layer_change(diff, plot)
        info(f"wrote {plot}")


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    """A row for CSV: the shape as 1×64×56×56, statistics under A and B as columns of their own."""
    flat = {key: value for key, value in row.items() if not key.startswith("activation_")}
    flat["shape"] = "×".join(map(str, row.get("shape", [])))
    for side in ("a", "b"):
        for key, value in (row.get(f"activation_{side}") or {}).items():
            flat[f"{key}_{side}"] = value
    return flat


def _plot_layer_change(diff: Any, path: str) -> None:
    from vizcli.common.plotting import pyplot, save_png

    plt = pyplot()
    layers = diff.layers
    panels = 2 if diff.activations else 1
    figure, axes = plt.subplots(panels, 1, figsize=(max(6.0, 0.16 * len(layers) + 2), 3.6 * panels), squeeze=False)
    axis = axes[0][0]
    axis.bar(range(len(layers)), [min(row.relative_change, 1e6) for row in layers], color="#4c72b0")
    axis.set_xticks(range(len(layers)))
    axis.set_xticklabels([row.name for row in layers], rotation=90, fontsize=6)
    axis.set_ylabel("‖B − A‖ / ‖A‖")
    axis.set_title(f"{diff.model_name}: weight change per layer (A = {diff.weights[0]}, B = {diff.weights[1]})", fontsize=9)
    if diff.activations:
        lower = axes[1][0]
        rows = diff.activations
        lower.plot(range(len(rows)), [min(row.relative_change, 1e6) for row in rows], marker=".", color="#dd8452")
        lower.set_ylabel("activation ‖B − A‖ / ‖A‖")
        lower.set_xticks(range(len(rows)))
        lower.set_xticklabels([row.name for row in rows], rotation=90, fontsize=5)
        lower.set_title("activation change per row on the same input", fontsize=9)
    figure.tight_layout()
    save_png(figure, path)
