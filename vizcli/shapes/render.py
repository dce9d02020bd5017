"""Pure functions from collected data to renderables and text (tables, Markdown; Mermaid in ``mermaid``).

Nothing here runs a model; the commands hand over what the core collected.
"""

from __future__ import annotations

from typing import Any

from vizcli.common.console import info, print_renderables, warn
from vizcli.common.files import open_destination
from vizcli.common.formats import SHAPES_SCHEMA, to_json, write_records
from vizcli.shapes.compare import comparison_lines
from vizcli.shapes.diagram import DiagramCheck, diagram_node_for
from vizcli.shapes.records import LayerRecord, diagram_shape, human_bytes, human_count, text_axes, torch_shape
from vizcli.shapes.report import ImageRun, ShapesReport, group_records

# ---------------------------------------------------------------- shapes: data


def shape_header(report: ShapesReport) -> str:
    """The second shape column: the notes' H×W×C for images, named axes for a text model."""
    return "seq × hidden" if report.task == "text" else "H×W×C"


def shape_words(report: ShapesReport, run: ImageRun, shape: tuple[int, ...], kind: str = "", call: int = 0) -> str:
    if report.task == "text":
        return text_axes(shape, run.trace.input_shape[-1], kind, call)
    return diagram_shape(shape)


def _diagram_nodes(records: list[LayerRecord], model_name: str) -> dict[int, str]:
    if model_name != "resnet18":
        return {}
    return {record.index: node for record in records if (node := diagram_node_for(record))}


def shapes_rows(report: ShapesReport, run: ImageRun, depth: int) -> list[dict[str, Any]]:
    """Rows for JSON/CSV: every computation at depth 3, groups at depth 1 and 2."""
    records = run.trace.records
    nodes = _diagram_nodes(records, report.model_name)
    if depth >= 3:
        return [dict(record.as_dict(), diagram_node=nodes.get(record.index),
                     **({"axes": shape_words(report, run, record.shape, record.kind, record.call)} if report.task == "text" else {}),
                     **_statistics_of(run, record.index))
                for record in records]
    return [
        {
            "index": position,
            "name": group.name,
            "op": group.op,
            "shape": list(group.shape),
            "diagram_shape": diagram_shape(group.shape),
            **({"axes": shape_words(report, run, group.shape)} if report.task == "text" else {}),
            "params": group.params,
            "macs": group.macs,
            "computations": group.rows,
            "diagram_nodes": group.diagram_nodes,
            **_statistics_of(run, group.last_index),
        }
        for position, group in enumerate(group_records(run.trace, depth, nodes))
    ]


def _statistics_of(run: ImageRun, index: int) -> dict[str, Any]:
    """``{"activation": {...}}`` for a row with statistics of its output values (asked for with stats), else nothing."""
    if not run.trace.activations:
        return {}
    found = run.trace.activations.get(index)
    return {"activation": found.as_dict() if found is not None else None}


def shapes_csv_rows(report: ShapesReport, depth: int) -> list[dict[str, Any]]:
    """``shapes_rows`` of every table, flattened for CSV (shapes as ``1×64×56×56``)."""
    rows = []
    for runs in report.tables():
        for row in shapes_rows(report, runs[0], depth):
            row = {"input": torch_shape(runs[0].trace.input_shape), **row, "shape": torch_shape(tuple(row["shape"]))}
            if "diagram_nodes" in row:
                row["diagram_nodes"] = " ".join(row["diagram_nodes"])
            if "activation" in row:
                values = row.pop("activation") or {}
                row.update({f"activation_{key}": values.get(key) for key in ("mean", "std", "min", "max", "zero_fraction", "nan", "inf")})
            rows.append(row)
    return rows


def shapes_document(report: ShapesReport, depth: int, check: DiagramCheck | None = None) -> dict[str, Any]:
    """The stable JSON document (schema ``vizcli.shapes/1``)."""
    tables = []
    for runs in report.tables():
        first = runs[0]
        tables.append(
            {
                "inputs": [{"source": run.label, "preprocessing": run.steps} for run in runs],
                "input_shape": list(first.trace.input_shape),
                "input_shapes": {name: list(shape) for name, shape in first.trace.input_shapes.items()},
                "method": first.trace.method,
                "fallback_reason": first.trace.fallback_reason,
                "failed_at": first.trace.failed_at,
                "error": first.trace.error,
                "rows": shapes_rows(report, first, depth),
                "totals": report.totals(first),
                "predictions": {
                    run.label: [{"class": name, "probability": p} for name, p in run.predictions]
                    for run in runs
                    if run.predictions
                },
                "nonfinite_outputs": {run.label: run.nonfinite_outputs for run in runs if run.nonfinite_outputs},
                **({"comparison": report.comparison.as_dict()} if run_is_compared(report, first) else {}),
            }
        )
    document = {
        "schema": SHAPES_SCHEMA,
        "model": report.model_name,
        "weights": report.weights_note,
        "device": report.device,
        "depth": depth,
        "memory": report.memory,
        "tables": tables,
    }
    if check is not None:
        document["check"] = check.as_dict()
    return document


# ---------------------------------------------------------------- shapes: table


def shapes_renderables(report: ShapesReport, depth: int) -> list[Any]:
    """Rich renderables: per table, the preprocessing, the rows, the totals, predictions."""
    from rich.table import Table
    from rich.text import Text

    out: list[Any] = []
    for runs in report.tables():
        first = runs[0]
        records = first.trace.records
        nodes = _diagram_nodes(records, report.model_name)
        title = f"{report.model_name} · input {_input_words(first)} · depth {depth}"
        table = Table(title=title, title_justify="left", show_lines=False, pad_edge=True)
        table.add_column("#", justify="right")
        table.add_column("name")
        table.add_column("operation")
        table.add_column("output (torch)", justify="right")
        table.add_column(shape_header(report), justify="right")
        table.add_column("params", justify="right")
        table.add_column("MACs", justify="right")
        if nodes:
            table.add_column("diagram")
        compared = report.comparison if depth >= 3 and run_is_compared(report, first) else None
        if compared is not None:
            table.add_column("torchinfo", justify="right")
            table.add_column("FlopCounter ÷2", justify="right")
        with_statistics = bool(first.trace.activations)
        if with_statistics:
            for header in STATISTICS_HEADERS:
                table.add_column(header, justify="right")
        if depth >= 3:
            _add_computation_rows(table, records, nodes, report, first, bool(nodes), compared)
        else:
            for position, group in enumerate(group_records(first.trace, depth, nodes)):
                cells = [str(position), group.name, group.op, torch_shape(group.shape), shape_words(report, first, group.shape),
                         f"{group.params:,}", human_count(group.macs) if group.macs else "—"]
                if nodes:
                    cells.append(_node_summary(group.diagram_nodes))
                if with_statistics:
                    cells += _statistics_cells(first, group.last_index)
                table.add_row(*cells)
        out.append(table)
        out.extend(_totals_lines(report, first))
        if run_is_compared(report, first):
            out.extend(Text(line) for line in comparison_lines(report.comparison, report.runs[0].trace.records))
        for run in runs:
            if run.nonfinite_outputs:
                out.append(Text(f"warning: the output for {run.label} has {run.nonfinite_outputs:,} NaN or infinite "
                                "values; the weights are broken or overflow, so no classes are shown"))
            if run.predictions:
                out.append(Text(f"top-5 for {run.label}:"))
                for name, probability in run.predictions:
                    out.append(Text(f"  {probability:7.2%}  {name}"))
        out.append(Text(""))
    return out


def _node_summary(nodes: list[str]) -> str:
    if len(nodes) <= 1:
        return " ".join(nodes)
    return f"{len(nodes)} nodes"


def _add_computation_rows(table, records, nodes, report, run, with_nodes: bool, compared: Any = None) -> None:
    stage, subtotal_params, subtotal_macs, count = None, 0, 0, 0

    def _flush():
        if stage is not None and count > 1:
            cells = ["", f"{stage} subtotal", "", "", "", f"{subtotal_params:,}", human_count(subtotal_macs) if subtotal_macs else "—"]
            if with_nodes:
                cells.append("")
            if compared is not None:
                cells += ["", ""]
            if run.trace.activations:
                cells += [""] * len(STATISTICS_HEADERS)
            table.add_row(*cells, style="dim", end_section=True)

    for record in records:
        top = record.name.split(".")[0]
        if top != stage:
            _flush()
            stage, subtotal_params, subtotal_macs, count = top, 0, 0, 0
        subtotal_params += record.params
        subtotal_macs += record.macs
        count += 1
        name = record.name + (f" (call {record.call + 1})" if record.call else "")
        params = f"{record.params:,}" if record.params or record.call == 0 else "shared"
        cells = [str(record.index), name, record.op, torch_shape(record.shape),
                 shape_words(report, run, record.shape, record.kind, record.call), params, human_count(record.macs) if record.macs else "—"]
        if with_nodes:
            cells.append(nodes.get(record.index, ""))
        if compared is not None:
            other = compared.rows[record.index]
            cells += [_other(other.torchinfo, record.macs), _other(other.flop_counter, record.macs)]
        if run.trace.activations:
            cells += _statistics_cells(run, record.index)
        table.add_row(*cells)
    _flush()


STATISTICS_HEADERS = ("mean", "std", "min", "max", "zeros", "NaN/Inf")


def _statistics_cells(run: ImageRun, index: int) -> list[str]:
    found = run.trace.activations.get(index)
    if found is None:
        return ["—"] * len(STATISTICS_HEADERS)
    numbers = [f"{value:.3g}" if value is not None else "—" for value in (found.mean, found.std, found.min, found.max)]
    return [*numbers, f"{found.zeros:.1%}", f"{found.nan}/{found.inf}" if found.nan or found.inf else "0"]


def _input_words(run: ImageRun) -> str:
    """``1×3×224×224``, or every input by name when the model takes several."""
    shapes = run.trace.input_shapes
    if len(shapes) <= 1:
        return torch_shape(run.trace.input_shape)
    return ", ".join(f"{name} {torch_shape(shape)}" for name, shape in shapes.items())


def _other(value: int | None, ours: int) -> str:
    """Another counter's MACs for a row: "—" for no row there, "=" marked when equal to vizcli's."""
    if value is None:
        return "no row"
    text = human_count(value) if value else "0"
    return text if value != ours else f"{text} ="


def run_is_compared(report: ShapesReport, run: ImageRun) -> bool:
    return report.comparison is not None and run is report.runs[0]


def _unused_note(totals: dict[str, Any]) -> str:
    unused = totals["unused_parameters"]
    if not unused:
        return ""
    parts = ", ".join(f"{count:,} in {name}" for name, count in unused.items())
    return f"; {parts}, which did not run in eval"


TRACED_WITH = {"fx": "torch.fx", "hooks": "forward hooks", "operators": "TorchScript's operators"}
MAX_OPERATOR_KINDS = 16  # the table lists the most frequent; JSON carries all


def _calls_line(calls: dict[str, int]) -> str:
    shown = ", ".join(f"{name} ×{count}" for name, count in list(calls.items())[:MAX_OPERATOR_KINDS])
    more = len(calls) - MAX_OPERATOR_KINDS
    return (shown or "—") + (f", and {more} more kinds (all in --format json)" if more > 0 else "")


def _per_input(report: ShapesReport, run: ImageRun) -> str:
    return f"sequence of {run.trace.input_shape[-1]} tokens" if report.task == "text" else "image"


def _totals_lines(report: ShapesReport, run: ImageRun) -> list[Any]:
    from rich.text import Text

    totals = report.totals(run)
    documented = ""
    if totals["documented_gmacs"] is not None and tuple(run.trace.input_shape[1:]) == report.documented_input:
        documented = f"; torchvision documents {totals['documented_gmacs']:.3f} G"
    memory = ", ".join(f"{dtype} {human_bytes(size)}" for dtype, size in totals["activation_bytes"].items())
    lines = [
        f"computations: {len(run.trace.records)} (traced with {TRACED_WITH.get(run.trace.method, run.trace.method)})",
        f"parameters: {totals['parameters']:,} (trainable {totals['trainable_parameters']:,}{_unused_note(totals)})",
        f"MACs: {human_count(totals['macs'])} (multiply-accumulates per {_per_input(report, run)}, counted per operator{documented})",
        f"FLOPs: {human_count(totals['flops'])} (= 2 × MACs)",
        "counted: " + (", ".join(f"{name} {human_count(macs)}" for name, macs in totals["operator_macs"].items()) or "—"),
        "ran without MACs: " + _calls_line(totals["operators_without_macs"]),
        f"activation memory: {memory or '—'} (all {len(run.trace.records)} outputs of this run)",
    ]
    if totals["forward_ms"] is not None:
        lines.append(f"forward time: {totals['forward_ms']:.1f} ms on {report.device} (best of 3, untraced)")
    if run.trace.method == "hooks":
        reason = run.trace.fallback_reason or "hooks requested"
        lines.append(f"note: {reason}; traced with forward hooks instead, so functional operations get rows only when "
                     "they carry MACs or are a softmax (attention's), not the adds and flattens")
    if run.trace.method == "operators":
        lines.append(f"note: {run.trace.fallback_reason}; each row is an operator, named after the module whose parameters "
                     "it reads (else after the operator)")
    if report.task == "detection":
        lines.append("note: two-stage detectors run their box, mask or keypoint heads once per proposal or detection that "
                     "survives the thresholds, so their MACs vary with the weights and the image")
    lines.extend(_memory_lines(report.memory))
    lines.append(report.weights_note)
    return [Text(line) for line in lines]


def _memory_lines(memory: dict[str, Any]) -> list[str]:
    if not memory:
        return []
    dtype = memory["dtype"]
    lines = [f"stored in {dtype}: parameters {human_bytes(memory['parameter_bytes'])}, buffers {human_bytes(memory['buffer_bytes'])}"]
    step = memory["training"]
    if step:
        lines.append(
            f"one training step ({dtype}, batch {step['batch_size']}, {step['optimizer']}): parameters "
            f"{human_bytes(step['parameters'])} + gradients {human_bytes(step['gradients'])} + optimizer state "
            f"{human_bytes(step['optimizer_state'])} + saved activations {human_bytes(step['saved_activations'])} "
            f"= {human_bytes(step['total'])} (saved activations counted from the autograd graph)"
        )
    return lines


def check_renderables(check: DiagramCheck) -> list[Any]:
    from rich.table import Table
    from rich.text import Text

    table = Table(title="the notes' diagram vs the measured run", title_justify="left", pad_edge=True)
    for column in ("node", "notes' label", "stated", "measured", "verdict"):
        table.add_column(column)
    for verdict in check.verdicts:
        stated = (verdict.node.size or "—") + (" (implied)" if verdict.node.implied else "")
        if verdict.holds is None:
            text = "no size stated"
        else:
            text = "holds" if verdict.holds else "DIFFERS"
        table.add_row(verdict.node.id, verdict.node.label, stated, verdict.measured or "—", text)
    lines: list[Any] = [table]
    with_size = [v for v in check.verdicts if v.holds is not None]
    lines.append(Text(f"{len(with_size) - len(check.differing)} of {len(with_size)} stated sizes hold"))
    lines.append(Text("where the diagram simplifies the real model:"))
    lines.extend(Text(f"  - {item}") for item in check.simplifications)
    return lines


# ---------------------------------------------------------------- shapes: markdown and mermaid


def shapes_markdown(report: ShapesReport, depth: int) -> str:
    lines = []
    for runs in report.tables():
        first = runs[0]
        lines.append(f"**{report.model_name}**, input {torch_shape(first.trace.input_shape)}, {report.weights_note}\n")
        rows = shapes_rows(report, first, depth)
        lines.append(f"| # | name | operation | output (torch) | {shape_header(report)} | params | MACs |")
        lines.append("|---:|---|---|---:|---:|---:|---:|")
        for row in rows:
            lines.append(
                f"| {row['index']} | `{row['name']}` | {row['op']} | {torch_shape(tuple(row['shape']))} | "
                f"{row.get('axes', row['diagram_shape'])} | {row['params']:,} | {row['macs']:,} |"
            )
        totals = report.totals(first)
        lines.append("")
        lines.append(f"Parameters: {totals['parameters']:,} · MACs: {human_count(totals['macs'])} · FLOPs: {human_count(totals['flops'])}")
        lines.append("")
    return "\n".join(lines)


def print_preprocessing(report: ShapesReport) -> None:
    """What was done to each input, one line each on stderr (stdout carries the result alone)."""
    for run in report.runs:
        steps = " → ".join(run.steps)
        info(steps if run.label == "synthetic" else f"{run.label}: {steps}")  # "synthetic input …" names itself


def print_shapes(report: ShapesReport, depth: int, output_format: str, check: DiagramCheck | None, output: str | None) -> None:
    """Write the report in ``output_format`` (table, json, csv, markdown, mermaid) to stdout or ``output``."""
    if output_format == "table":
        renderables = shapes_renderables(report, depth)
        if check is not None:
            renderables += check_renderables(check)
        with open_destination(output, binary=False) as stream:
            print_renderables(renderables, stream)
        return
    if output_format == "csv" and not report.pretrained:
        warn(report.weights_note)  # CSV has no place for it
    with open_destination(output, binary=False) as stream:
        if output_format == "json":
            stream.write(to_json(shapes_document(report, depth, check)) + "\n")
        elif output_format == "csv":
            write_records(shapes_csv_rows(report, depth), "csv", stream)
        elif output_format == "markdown":
            stream.write(shapes_markdown(report, depth))
        elif output_format == "mermaid":
            from vizcli.shapes.mermaid import shapes_mermaid

            stream.write(shapes_mermaid(report))
