"""The measured run as a Mermaid ``flowchart TD``, in the notes' node style (``--format mermaid``)."""

from __future__ import annotations

from vizcli.shapes.diagram import diagram_node_for
from vizcli.shapes.flow import INPUT, flow_edges
from vizcli.shapes.records import LayerRecord, diagram_shape, text_axes, torch_shape
from vizcli.shapes.report import ShapesReport


def _mermaid_id(record: LayerRecord) -> str:
    node = diagram_node_for(record)
    if node:
        return node
    base = record.name.replace(".", "_")
    return base + (str(record.call + 1) if record.call else "")  # the notes' style: relu, relu2


def _header(report: ShapesReport, run, input_label: str) -> list[str]:
    """The flowchart's title, weights note and input node, alike for every model."""
    return ["---", f"title: {report.model_name} measured by vizcli (input {torch_shape(run.trace.input_shape)})", "---",
            "flowchart TD", f"    %% {report.weights_note}", f'    input["{input_label}"]']


def shapes_mermaid(report: ShapesReport) -> str:
    """A valid Mermaid ``flowchart TD`` of the measured run, in the notes' node style.

    Every computation is a node (both blocks of every stage); skip paths are labelled edges
    (identity, or the 1x1 downsample); adds are ``{Add}`` diamonds.
    """
    run = report.tables()[0][0]
    if report.task == "text":
        return text_mermaid(report)
    records = run.trace.records
    by_node = {record.node: record for record in records}
    ids: dict[str, str] = {}
    used: set[str] = set()
    for record in records:
        candidate = _mermaid_id(record)
        while candidate in used:  # the notes' ids are reserved for layerN.0; keep ids unique
            candidate += "_x"
        used.add(candidate)
        ids[record.node] = candidate
    lines = _header(report, run, f"Input Image {torch_shape(run.trace.input_shape[1:])}")
    stage = None
    for record in records:
        top = record.name.split(".")[0]
        in_stage = top.startswith("layer")
        if stage is not None and top != stage:
            lines.append("    end")
            stage = None
        if in_stage and stage is None:
            lines.append(f"    subgraph {top}")
            stage = top
        size = diagram_shape(record.shape)
        node_id = ids[record.node]
        if record.kind == "add":
            lines.append(f'    {node_id}{{"Add {size}"}}')
        else:
            lines.append(f'    {node_id}["{record.op} → {size}"]')
    if stage is not None:
        lines.append("    end")
    last_output = records[-1] if records else None
    lines.append('    output["Output: ' + (diagram_shape(last_output.shape) if last_output else "?") + ' logits (not probabilities)"]')
    previous = None
    for record in records:
        node_id = ids[record.node]
        sources = [by_node[name] for name in record.inputs if name in by_node]
        if not sources:  # reads only the model's input
            lines.append(f"    input --> {node_id}")
        for source in sources:
            label = _edge_label(source, record, previous)
            arrow = f'-->|"{label}"|' if label else "-->"
            lines.append(f"    {ids[source.node]} {arrow} {node_id}")
        previous = record
    if last_output is not None:
        lines.append(f"    {ids[last_output.node]} --> output")
    return "\n".join(lines) + "\n"


def _block_of(name: str) -> str:
    parts = name.split(".")
    return ".".join(parts[:2]) if parts[0].startswith("layer") and len(parts) > 2 else name


def _edge_label(source: LayerRecord, target: LayerRecord, previous: LayerRecord | None) -> str:
    if previous is not None and source.node == previous.node:
        return ""
    if _block_of(source.name) == _block_of(target.name):
        return ""
    if target.kind == "add":
        return f"identity {diagram_shape(source.shape)}"
    if ".downsample." in target.name:
        return "downsample path"
    return "skip"


def text_mermaid(report: ShapesReport) -> str:
    """A text encoder's flow (BERT family) as a Mermaid ``flowchart TD``: token ids, the embeddings, one
    subgraph per encoder layer with its two residual paths, down to the pooler's ``pooler_output``."""
    run = report.tables()[0][0]
    records = run.trace.records
    length = run.trace.input_shape[-1]
    lines = _header(report, run, f"token ids: seq {length}")
    ids: list[str] = []
    used: set[str] = set()
    group = None
    for record in records:
        parts = record.name.split(".")
        here = ".".join(parts[:3]) if parts[0] == "encoder" and len(parts) > 3 else parts[0]
        if here != group:
            if group is not None:
                lines.append("    end")
            lines.append(f'    subgraph {here.replace(".", "_")}["{here}"]')
            group = here
        node_id = record.name.replace(".", "_") + (f"_{record.call + 1}" if record.call else "")
        while node_id in used:
            node_id += "_x"
        used.add(node_id)
        ids.append(node_id)
        axes = text_axes(record.shape, length, record.kind, record.call)
        lines.append(f'    {node_id}["{record.op} → {axes}"]')
    if group is not None:
        lines.append("    end")
    pooled = records[-1] if records and records[-1].name.startswith("pooler.") else None
    lines.append(f'    output["pooler_output: {text_axes(pooled.shape, length) if pooled else "?"} = tanh(W·h[CLS] + b)"]')
    for edge in flow_edges(records, text=True):
        source = "input" if edge.source == INPUT else ids[edge.source]
        arrow = f'-->|"{edge.label}"|' if edge.label else "-->"
        lines.append(f"    {source} {arrow} {ids[edge.target]}")
    if pooled is not None:
        lines.append(f"    {ids[-1]} --> output")
    return "\n".join(lines) + "\n"
