"""Model against model: each traced as ``vizcli shapes`` traces one, then totals side by side and the rows aligned.

Rows are aligned by name: at depth 1 the stages (``layer3``), at depth 2 the blocks (``layer3.5``), at depth 3
every computation (``layer3.5.conv1``; a module's second call is its own row). A row only one model has keeps
its place in that model's order, with a blank for the other. The difference columns are the last model's
figure minus the first's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vizcli.common.errors import BadInput

MAX_MODELS = 4


@dataclass
class ModelOptions:
    """How each model is built and fed (the shared part of a ``vizcli shapes`` request)."""

    images: list[str] = field(default_factory=list)
    input_size: list[str] = field(default_factory=list)
    keep_size: bool = False
    weights: list[str] = field(default_factory=list)  # none, one, or one per model
    model_args: dict[str, Any] = field(default_factory=dict)
    text: str | None = None
    seq_len: str | None = None
    seed: int = 0
    device: str = "auto"
    max_pixels: int | None = None
    depth: int = 3


def run_one_model(model: str, options: ModelOptions, memory: Any = None, activations: Any = None, weights: str | None = None) -> Any:
    """The ``ShapesReport`` of one model: torchvision's (``run_shapes``) or any other (``run_any_shapes``)."""
    from vizcli.shapes.any_model import is_any_model
    from vizcli.shapes.report import run_any_shapes, run_shapes
    from vizcli.shapes.sweep import parse_seq_lens

    weights = weights if weights is not None else (options.weights[0] if options.weights else None)
    lengths = parse_seq_lens(options.seq_len)
    if is_any_model(model):
        if weights is not None or options.keep_size:
            raise BadInput(f"--{'weights' if weights is not None else 'keep-size'} is for torchvision models; your factory or "
                           "model folder brings its own weights and input")
        return run_any_shapes(model, list(options.images), options.input_size or None, options.model_args, options.text,
                              lengths[0] if lengths else None, options.seed, options.device, options.max_pixels, memory,
                              activations=activations)
    if options.model_args or options.text is not None or options.seq_len is not None:
        raise BadInput("--model-arg, --text and --seq-len are for your own or text models (file.py:factory, a model folder, minilm)")
    if len(options.input_size) > 1:
        raise BadInput("several inputs are for your own model (file.py:factory); a torchvision model takes one CxHxW",
                       parameter="input_size", value=", ".join(options.input_size))
    return run_shapes(list(options.images), options.input_size[0] if options.input_size else None, options.keep_size, model,
                      weights, options.seed, options.device, options.max_pixels, memory, activations=activations)


@dataclass
class AlignedRow:
    """One name's row in every model (None where a model has no such row)."""

    name: str
    cells: list[Any]  # per model: report.GroupRow or None

    def delta(self, attribute: str) -> int:
        first, last = self.cells[0], self.cells[-1]
        return (getattr(last, attribute) if last else 0) - (getattr(first, attribute) if first else 0)


@dataclass
class ModelComparison:
    """Several models' reports, their totals and their rows aligned by name at ``depth``."""

    reports: list[Any]
    depth: int
    rows: list[AlignedRow]

    def totals(self) -> list[dict[str, Any]]:
        figures = []
        for report in self.reports:
            run = report.runs[0]
            totals = report.totals(run)
            figures.append({"model": report.model_name, "input": "×".join(map(str, run.trace.input_shape)),
                            "weights": report.weights_note, "rows": len(run.trace.records), "parameters": totals["parameters"],
                            "macs": totals["macs"], "activation_bytes": sum(totals["activation_bytes"].values()),
                            "forward_ms": totals["forward_ms"], "error": run.trace.error})
        return figures

    def as_dict(self) -> dict[str, Any]:
        names = [report.model_name for report in self.reports]
        return {
            "models": names, "depth": self.depth, "totals": self.totals(),
            "rows": [{"name": row.name,
                      **{f"{label}": _cell(cell) for label, cell in zip(_labels(names), row.cells)},
                      "delta_params": row.delta("params"), "delta_macs": row.delta("macs")} for row in self.rows],
        }

    def flat_rows(self) -> list[dict[str, Any]]:
        """CSV rows: name, then each model's op, shape, params, MACs, then the differences."""
        labels = _labels([report.model_name for report in self.reports])
        flat = []
        for row in self.rows:
            line: dict[str, Any] = {"name": row.name}
            for label, cell in zip(labels, row.cells):
                line.update({f"{label}_op": cell.op if cell else "", f"{label}_shape": _shape(cell),
                             f"{label}_params": cell.params if cell else "", f"{label}_macs": cell.macs if cell else ""})
            line.update(delta_params=row.delta("params"), delta_macs=row.delta("macs"))
            flat.append(line)
        return flat


def _labels(names: list[str]) -> list[str]:
    """Column labels: the model names, numbered when two are the same."""
    return [name if names.count(name) == 1 else f"{name}#{position + 1}" for position, name in enumerate(names)]


def _shape(cell: Any) -> str:
    return "×".join(map(str, cell.shape)) if cell else ""


def _cell(cell: Any) -> dict[str, Any] | None:
    if cell is None:
        return None
    return {"op": cell.op, "shape": list(cell.shape), "params": cell.params, "macs": cell.macs}


def aligned_rows(reports: list[Any], depth: int) -> list[AlignedRow]:
    """Each report's rows at ``depth``, merged by name in the models' own orders."""
    from vizcli.shapes.report import group_records

    tables: list[dict[str, Any]] = []
    for report in reports:
        trace = report.runs[0].trace
        rows: dict[str, Any] = {}
        calls: dict[str, int] = {}
        for group in group_records(trace, depth, {}):
            call = calls.get(group.name, 0)
            calls[group.name] = call + 1
            rows[group.name if call == 0 else f"{group.name} (call {call + 1})"] = group
        tables.append(rows)
    order: list[str] = list(tables[0])
    for table in tables[1:]:
        at = -1
        for name in table:
            if name in order:
                at = order.index(name)
            else:
                at += 1
                order.insert(at, name)
    return [AlignedRow(name, [table.get(name) for table in tables]) for name in order]


def compare_models(models: list[str], options: ModelOptions) -> ModelComparison:
    """Trace every model in ``models`` on the same input and align their rows at ``options.depth``.

    ``options.weights``: none, or one per model (``--weights`` given as often as ``--model``).
    """
    if not 2 <= len(models) <= MAX_MODELS:
        raise BadInput(f"compare 2 to {MAX_MODELS} models", parameter="model", value=", ".join(models))
    if options.weights and len(options.weights) != len(models):
        raise BadInput("give --weights once per --model, in the same order, or not at all", parameter="weights",
                       value=options.weights[0])
    reports = []
    for position, model in enumerate(models):
        weights = options.weights[position] if options.weights else None
        reports.append(run_one_model(model, ModelOptions(**{**options.__dict__, "weights": []}), weights=weights))
    return ModelComparison(reports, options.depth, aligned_rows(reports, options.depth))
