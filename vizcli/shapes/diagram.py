"""The notes' ResNet18 Mermaid diagram as data, and the check of a measured run against it.

Each ``DiagramNode`` keeps the node id, the label and the size the notes state (H×W×C as
the notes write it; ``None`` where the notes state none). "保持尺寸" (keeps the size) nodes
state their input's size implicitly; we record the implied size and say it was implied.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vizcli.shapes.records import LayerRecord, Trace, diagram_shape


@dataclass(frozen=True)
class DiagramNode:
    """One node of the notes' flowchart."""

    id: str  # "layer2_0_conv1"
    label: str  # the notes' label, verbatim
    size: str | None  # the stated output size in the notes' H×W×C wording, e.g. "28×28×128"
    implied: bool = False  # True when the notes say only "保持尺寸" (keeps the size)


def _stage_nodes(stage: int, channels: int, size: int, downsample: bool) -> list[DiagramNode]:
    prefix = f"layer{stage}_0"
    hwc = f"{size}×{size}×{channels}"
    stride = ", stride=2" if downsample else ""
    first = f"输出尺寸：{hwc}" if downsample else f"保持尺寸：{hwc}"
    nodes = [
        DiagramNode(f"{prefix}_conv1", f"Conv2d 3x3, {channels}{stride} {first}", hwc),
        DiagramNode(f"{prefix}_bn1", f"BatchNorm2d {channels} 保持尺寸", hwc, implied=True),
        DiagramNode(f"{prefix}_relu", "ReLU 保持尺寸", hwc, implied=True),
        DiagramNode(f"{prefix}_conv2", f"Conv2d 3x3, {channels} 保持尺寸：{hwc}", hwc),
        DiagramNode(f"{prefix}_bn2", f"BatchNorm2d {channels} 保持尺寸", hwc, implied=True),
        DiagramNode(f"{prefix}_add", "Add", None),
    ]
    if downsample:
        nodes.append(DiagramNode(f"{prefix}_skip", f"Conv2d 1x1, {channels}, stride=2 输出尺寸：{hwc}", hwc))
    else:
        nodes.append(DiagramNode(f"{prefix}_skip", "Identity", hwc))  # edge label: 直连路径 56×56×64
    nodes.append(DiagramNode(f"{prefix}_relu2", f"ReLU 输出尺寸：{hwc}", hwc))
    return nodes


NOTES_DIAGRAM: tuple[DiagramNode, ...] = (
    DiagramNode("input", "Input Image 3×224×224 (RGB通道)", "224×224×3"),
    DiagramNode("conv1", "Conv2d 7x7, 64, stride=2 输出尺寸：112×112×64", "112×112×64"),
    DiagramNode("bn1", "BatchNorm2d 64 保持尺寸：112×112×64", "112×112×64"),
    DiagramNode("relu", "ReLU 保持尺寸：112×112×64", "112×112×64"),
    DiagramNode("pool1", "MaxPool2d 3x3, stride=2 输出尺寸：56×56×64", "56×56×64"),
    *_stage_nodes(1, 64, 56, downsample=False),
    *_stage_nodes(2, 128, 28, downsample=True),
    *_stage_nodes(3, 256, 14, downsample=True),
    *_stage_nodes(4, 512, 7, downsample=True),
    DiagramNode("pool2", "AvgPool2d 7x7 输出尺寸：1×1×512", "1×1×512"),
    DiagramNode("flatten", "Flatten 输出向量：512维", "512"),
    DiagramNode("fc", "Linear 512->1000 输出向量：1000维", "1000"),
    DiagramNode("output", "Output 1000类概率", None),
)

_TOP_LEVEL = {("conv1", 0): "conv1", ("bn1", 0): "bn1", ("relu", 0): "relu", ("maxpool", 0): "pool1",
              ("avgpool", 0): "pool2", ("flatten", 0): "flatten", ("fc", 0): "fc"}
_IN_BLOCK = {("conv1", 0): "conv1", ("bn1", 0): "bn1", ("relu", 0): "relu", ("conv2", 0): "conv2",
             ("bn2", 0): "bn2", ("add", 0): "add", ("relu", 1): "relu2", ("downsample.0", 0): "skip"}
_BLOCK = re.compile(r"^layer(\d)\.0\.(.+)$")


def diagram_node_for(record: LayerRecord) -> str | None:
    """The notes' node id drawn for this computation, or None if the notes do not draw it.

    The notes draw only the first BasicBlock of each stage (``layerN.0``).
    """
    key = (record.name, record.call)
    if key in _TOP_LEVEL:
        return _TOP_LEVEL[key]
    match = _BLOCK.match(record.name)
    if match and (match.group(2), record.call) in _IN_BLOCK:
        return f"layer{match.group(1)}_0_{_IN_BLOCK[(match.group(2), record.call)]}"
    return None


@dataclass
class NodeVerdict:
    node: DiagramNode
    measured: str | None  # measured size in H×W×C wording; None when no computation matched
    holds: bool | None  # None when the notes state no size
    row: int | None  # index of the matching record

    def as_dict(self) -> dict:
        return {
            "node": self.node.id,
            "label": self.node.label,
            "stated": self.node.size,
            "implied": self.node.implied,
            "measured": self.measured,
            "holds": self.holds,
            "row": self.row,
        }


@dataclass
class DiagramCheck:
    verdicts: list[NodeVerdict]
    simplifications: list[str]

    @property
    def all_hold(self) -> bool:
        return all(verdict.holds is not False for verdict in self.verdicts)

    @property
    def differing(self) -> list[NodeVerdict]:
        return [verdict for verdict in self.verdicts if verdict.holds is False]

    def as_dict(self) -> dict:
        return {
            "all_hold": self.all_hold,
            "nodes": [verdict.as_dict() for verdict in self.verdicts],
            "simplifications": list(self.simplifications),
        }


def check_diagram(trace: Trace, model) -> DiagramCheck:
    """Compare every size the notes state with the measured run of ``model``."""
    by_node: dict[str, LayerRecord] = {}
    for record in trace.records:
        node_id = diagram_node_for(record)
        if node_id:
            by_node[node_id] = record
    verdicts = []
    for node in NOTES_DIAGRAM:
        measured, row = None, None
        if node.id == "input":
            measured = diagram_shape(trace.input_shape)
        elif node.id == "layer1_0_skip" and "layer1_0_add" in by_node:
            # Identity: its output is the block's input, i.e. what the add received.
            add = by_node["layer1_0_add"]
            measured, row = diagram_shape(add.shape), add.index
        elif node.id == "output" and trace.records:
            last = trace.records[-1]
            measured, row = diagram_shape(last.shape), last.index
        elif node.id in by_node:
            record = by_node[node.id]
            measured, row = diagram_shape(record.shape), record.index
        holds = None if node.size is None else (measured == node.size)
        verdicts.append(NodeVerdict(node=node, measured=measured, holds=holds, row=row))
    return DiagramCheck(verdicts=verdicts, simplifications=_simplifications(trace, model))


def _simplifications(trace: Trace, model) -> list[str]:
    import torch.nn as nn

    found = []
    for stage in range(1, 5):
        layer = getattr(model, f"layer{stage}", None)
        if isinstance(layer, nn.Sequential) and len(layer) != 1:
            found.append(
                f"layer{stage}: the diagram draws one {type(layer[0]).__name__}; the model runs {len(layer)} "
                f"(layer{stage}.0 … layer{stage}.{len(layer) - 1})"
            )
    pool = getattr(model, "avgpool", None)
    if pool is not None and not isinstance(pool, nn.AvgPool2d):
        pool_row = next((r for r in trace.records if r.name == "avgpool"), None)
        op = pool_row.op if pool_row else type(pool).__name__
        found.append(
            f"pool2: the diagram draws 'AvgPool2d 7x7'; the model uses {op} "
            "(averages whatever spatial size arrives, so other input sizes still give 1×1×512)"
        )
    if trace.records and not any(r.kind.lower() in ("softmax", "log_softmax") for r in trace.records):
        found.append(
            "output: the diagram labels it '1000类概率' (probabilities); the network returns 1000 logits — "
            "apply softmax to get probabilities"
        )
    relus = [r for r in trace.records if r.name.endswith(".relu") and r.call == 1]
    if relus:
        found.append(
            "relu / relu2: the diagram draws two ReLU nodes per block; the model calls one ReLU module twice "
            f"({len(relus)} blocks do this)"
        )
    return found
