"""``vizcli shapes --plot graph.svg`` (or ``.png``): the traced computation as a picture, laid out by Graphviz.

Each node is one computation with its output shape and MACs; the edges are ``vizcli.shapes.flow``'s.
Repeated blocks are rolled, as torchview's ``roll`` does: consecutive siblings of one container
(``layer1.0``, ``layer1.1``; ``encoder.layer.0`` … ``encoder.layer.5``) whose computations are the
same (operations and shapes, in order) are drawn once, in a box marked ``×N``, and edges into and
out of the run meet that one copy. Graphviz comes from the system package (``apt install graphviz``:
``make setup`` installs it) through the ``graphviz`` Python bindings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from vizcli.common.errors import BadInput, RunFailure
from vizcli.shapes.flow import INPUT, flow_edges
from vizcli.shapes.records import LayerRecord, diagram_shape, text_axes, torch_shape

FORMATS = ("svg", "png")
BLOCK = re.compile(r"^(?P<parent>.+?)\.(?P<index>\d+)(?:\.|$)")  # "layer1.0.conv1" → layer1, 0


@dataclass
class Roll:
    """A run of identical sibling blocks, drawn as its first block."""

    parent: str
    first: int  # the first block's index under parent
    count: int
    members: list[int]  # record positions of the first block


def _block_of(record: LayerRecord) -> tuple[str, int] | None:
    match = BLOCK.match(record.name)
    return (match.group("parent"), int(match.group("index"))) if match else None


def find_rolls(records: list[LayerRecord]) -> tuple[list[Roll], dict[int, int]]:
    """Runs of ≥ 2 identical consecutive sibling blocks, and each rolled-away record's stand-in (its
    counterpart in the run's first block)."""
    blocks: dict[tuple[str, int], list[int]] = {}
    for position, record in enumerate(records):
        block = _block_of(record)
        if block is not None:
            blocks.setdefault(block, []).append(position)

    def signature(block: tuple[str, int]) -> tuple:
        prefix = f"{block[0]}.{block[1]}"
        return tuple((records[p].name[len(prefix):], records[p].op, records[p].shape) for p in blocks[block])

    rolls: list[Roll] = []
    stand_in: dict[int, int] = {}
    ordered = list(blocks)
    position = 0
    while position < len(ordered):
        parent, index = ordered[position]
        run = [ordered[position]]
        while (position + len(run) < len(ordered) and ordered[position + len(run)] == (parent, index + len(run))
               and signature(ordered[position + len(run)]) == signature(run[0])):
            run.append(ordered[position + len(run)])
        if len(run) >= 2:
            first = blocks[run[0]]
            rolls.append(Roll(parent, index, len(run), first))
            for later in run[1:]:
                stand_in.update(zip(blocks[later], first))
        position += len(run)
    return rolls, stand_in


def graph_source(records: list[LayerRecord], input_shape: tuple[int, ...], title: str, text: bool) -> Any:
    """The ``graphviz.Digraph`` of ``records`` (rolled), not yet rendered."""
    import graphviz

    from vizcli.shapes.records import human_count

    rolls, stand_in = find_rolls(records)
    length = input_shape[-1]

    def shape_words(record: LayerRecord) -> str:
        return text_axes(record.shape, length, record.kind, record.call) if text else diagram_shape(record.shape)

    def label(record: LayerRecord) -> str:
        macs = f"{human_count(record.macs)} MACs" if record.macs else "no MACs"
        return f"{record.name}\n{record.op}\n{torch_shape(record.shape)} ({shape_words(record)})\n{macs}"

    graph = graphviz.Digraph("vizcli", graph_attr={"rankdir": "TB", "label": title, "labelloc": "t", "fontsize": "16"},
                             node_attr={"shape": "box", "style": "rounded,filled", "fillcolor": "#eef3fb", "fontsize": "10",
                                        "fontname": "Helvetica"}, edge_attr={"fontsize": "9"})
    graph.node("input", f"input\n{torch_shape(input_shape)}", shape="ellipse", fillcolor="#ffffff")
    in_roll = {member: roll for roll in rolls for member in roll.members}
    for number, roll in enumerate(rolls):
        with graph.subgraph(name=f"cluster_{number}") as cluster:
            last = roll.first + roll.count - 1
            cluster.attr(label=f"{roll.parent}.{roll.first} … {roll.parent}.{last}  ×{roll.count}", style="dashed", fontsize="12")
            for member in roll.members:
                cluster.node(f"n{member}", label(records[member]))
    for position, record in enumerate(records):
        if position not in stand_in and position not in in_roll:
            graph.node(f"n{position}", label(record))
    seen: set[tuple[int, int, str]] = set()
    for edge in flow_edges(records, text):
        source = stand_in.get(edge.source, edge.source)
        target = stand_in.get(edge.target, edge.target)
        if source == target or (source != INPUT and source in in_roll and in_roll.get(target) is in_roll[source]
                                and source >= target):
            continue  # inside a rolled run: one block's output feeding the next copy
        key = (source, target, edge.label)
        if key in seen:
            continue
        seen.add(key)
        graph.edge("input" if source == INPUT else f"n{source}", f"n{target}", label=edge.label or None)
    return graph


def check_plot_path(path: str, output: str | None) -> None:
    """``BadInput`` unless ``path`` names a .svg or .png other than the table's output (checked before any work)."""
    fmt = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    if fmt not in FORMATS:
        raise BadInput(f"use a .svg or .png file (the picture's format comes from its extension), not .{fmt or '?'}",
                       parameter="plot", value=path)
    if output is not None and path == output:
        raise BadInput("is also the output; give the picture its own file", parameter="plot", value=path)


def write_graph(records: list[LayerRecord], input_shape: tuple[int, ...], title: str, text: bool, path: str) -> None:
    """Render the graph into ``path`` (``.svg`` or ``.png``), whole or not at all."""
    from vizcli.common.files import atomic_output

    check_plot_path(path, None)
    fmt = path.rsplit(".", 1)[-1].lower()
    try:
        import graphviz
    except ImportError:
        raise RunFailure("drawing the graph needs the graphviz Python package; install it with pip install graphviz",
                         parameter="plot", value=path) from None
    graph = graph_source(records, input_shape, title, text)
    try:
        data = graph.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise RunFailure("drawing the graph needs Graphviz's dot program; install it (apt install graphviz, or make setup)",
                         parameter="plot", value=path) from None
    except graphviz.CalledProcessError as error:
        detail = (error.stderr or b"").decode(errors="replace").strip().splitlines()
        raise RunFailure(f"Graphviz could not lay out the graph ({detail[0] if detail else error.returncode})",
                         parameter="plot", value=path) from None
    with atomic_output(path, binary=True) as handle:
        handle.write(data)



def records_at_depth(records: list[LayerRecord], depth: int, group_ops: dict[str, str]) -> list[LayerRecord]:
    """``records`` as the table shows them at ``depth``: one node per stage (1) or block (2), its MACs and params
    summed, its output the group's last; an edge wherever a computation of one group reads another's."""
    if depth >= 3:
        return records
    groups: dict[str, LayerRecord] = {}
    group_of_node: dict[str, str] = {}
    previous: str | None = None
    for record in records:
        key = ".".join(record.name.split(".")[:depth])
        if key not in groups:
            groups[key] = LayerRecord(index=len(groups), name=key, op=group_ops.get(key, record.op), kind=record.kind,
                                      shape=record.shape, dtype=record.dtype, params=0, macs=0, node=f"group{len(groups)}")
        group = groups[key]
        group.shape, group.params, group.macs = record.shape, group.params + record.params, group.macs + record.macs
        if record.node:
            group_of_node[record.node] = key
            sources = [group_of_node.get(name) for name in record.inputs]
        else:  # hooks: execution order
            sources = [previous]
        for source in sources:
            if source is not None and source != key and groups[source].node not in group.inputs:
                group.inputs.append(groups[source].node)
        previous = key
    return list(groups.values())
