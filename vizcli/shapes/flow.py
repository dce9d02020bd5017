"""Which computation feeds which: the edges of a traced run, for the Mermaid flow and the graph picture.

* torch.fx traces record each node's inputs: those are the edges (the residual adds included).
* hooks traces record no inputs. A BERT-family encoder (``report.task == "text"``) gets its known
  flow: the three embeddings summed, each layer's Q, K and V from the layer's input into attention
  (or eager attention's QKᵀ, softmax, ·V), and the two residual paths a layer. Any other model
  traced with hooks is drawn in execution order, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from vizcli.shapes.records import LayerRecord

INPUT = -1  # the model's input, as an edge's source


@dataclass(frozen=True)
class Edge:
    source: int  # a record's index, or INPUT
    target: int
    label: str = ""


def flow_edges(records: list[LayerRecord], text: bool) -> list[Edge]:
    """The edges between ``records`` (see the module's docstring)."""
    if any(record.node for record in records):
        return _fx_edges(records)
    if text:
        return _text_edges(records)
    return [Edge(position - 1 if position else INPUT, position) for position in range(len(records))]


def _fx_edges(records: list[LayerRecord]) -> list[Edge]:
    by_node = {record.node: position for position, record in enumerate(records)}
    edges: list[Edge] = []
    for position, record in enumerate(records):
        sources = [by_node[name] for name in record.inputs if name in by_node]
        edges.extend(Edge(source, position) for source in sources)
        if not sources:
            edges.append(Edge(INPUT, position))
    return edges


def _text_edges(records: list[LayerRecord]) -> list[Edge]:
    edges: list[Edge] = []
    layer_input, attention_out, previous = INPUT, None, INPUT
    summed: list[int] = []  # the three embeddings, added before their LayerNorm
    projections: dict[str, int] = {}  # query, key, value of the layer running
    for position, record in enumerate(records):
        name, last = record.name, record.name.rsplit(".", 1)[-1]
        if name.startswith("embeddings.") and last.endswith("_embeddings"):
            edges.append(Edge(INPUT, position))
            summed.append(position)
        elif name == "embeddings.LayerNorm" and summed:
            edges.extend(Edge(source, position, "+") for source in summed)
        elif ".attention.self." in name and last in ("query", "key", "value"):
            edges.append(Edge(layer_input, position))
            projections[last] = position
        elif record.kind == "attention" and projections:  # scaled_dot_product_attention(q, k, v)
            edges.extend(Edge(projections.get(source, previous), position, source[0].upper()) for source in ("query", "key", "value"))
        elif record.kind == "matmul" and projections and record.call % 2 == 0:  # eager attention: QKᵀ …
            edges += [Edge(projections.get("query", previous), position, "Q"), Edge(projections.get("key", previous), position, "Kᵀ")]
        elif record.kind == "matmul" and projections:  # … softmax, then ·V
            edges += [Edge(previous, position), Edge(projections.get("value", previous), position, "V")]
        elif name == "pooler.dense":
            edges.append(Edge(previous, position, "h[CLS]"))
        else:
            edges.append(Edge(previous, position))
        if name.endswith(".attention.output.LayerNorm"):  # LayerNorm(dense(attention) + the layer's input)
            edges.append(Edge(layer_input, position, "residual"))
            attention_out = position
        elif name.startswith("encoder.layer.") and name.endswith(".output.LayerNorm"):
            edges.append(Edge(attention_out if attention_out is not None else layer_input, position, "residual"))
            layer_input, projections = position, {}
        elif name in ("embeddings.LayerNorm", "embeddings.dropout"):  # what the first layer reads
            layer_input = position
        previous = position
    return edges
