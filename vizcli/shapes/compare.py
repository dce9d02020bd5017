"""``vizcli shapes --compare``: what torchinfo and ``torch.utils.flop_counter.FlopCounterMode`` count for
the same model and input, row by row beside vizcli's own count, and why each row that differs does.

* FlopCounterMode is run through the same tracer (``trace_with_counter``), so each row gets what it
  counted while that row ran; it counts FLOPs, shown here as MACs (FLOPs ÷ 2). It has no formula
  for the CPU attention kernels (``scaled_dot_product_attention`` on a CPU, ``nn.MultiheadAttention``'s
  fused path), so it counts nothing there.
* torchinfo counts per module call, from the module's parameters: a convolution's weight and bias
  times the output positions, anything else's parameters times the batch only. So a Linear on a
  sequence misses its positions (TylerYep/torchinfo#226), norms and embedding tables count their
  parameters, a bias counts, and functional operations (adds, attention matmuls) have no row.
Both are optional (``pip install torchinfo``; FlopCounterMode comes with torch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from vizcli.common.errors import RunFailure
from vizcli.shapes.records import LayerRecord, Trace, human_count

NORMS = ("BatchNorm", "LayerNorm", "GroupNorm", "InstanceNorm", "LocalResponseNorm")


@dataclass
class RowCounts:
    index: int
    torchinfo: int | None  # None: torchinfo has no row for it (a functional operation) or is not installed
    flop_counter: int | None  # MACs (FLOPs ÷ 2)
    why: list[str] = field(default_factory=list)


@dataclass
class Comparison:
    rows: list[RowCounts]
    totals: dict[str, int | None]  # vizcli, torchinfo, flop_counter (MACs)
    tools: dict[str, str]  # tool → version, or why it is missing

    def as_dict(self) -> dict[str, Any]:
        return {"tools": self.tools, "totals": self.totals,
                "rows": [{"index": r.index, "torchinfo_macs": r.torchinfo, "flop_counter_macs": r.flop_counter, "why": r.why}
                         for r in self.rows]}


class _FlopCounterTake:
    """FlopCounterMode with the ``take()`` the tracer calls: the MACs (FLOPs ÷ 2) since the last take."""

    def __init__(self) -> None:
        from torch.utils.flop_counter import FlopCounterMode

        self.mode = FlopCounterMode(display=False)
        self._last = 0

    def __enter__(self) -> _FlopCounterTake:
        self.mode.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.mode.__exit__(*exc)

    def _total(self) -> int:
        return int(sum(self.mode.flop_counts["Global"].values())) if "Global" in self.mode.flop_counts else 0

    def take(self) -> int:
        total = self._total()
        delta, self._last = total - self._last, total
        return delta // 2

    def reset(self) -> None:
        self._last = self._total()


def compare_counts(model: Any, example: Any, trace: Trace) -> Comparison:
    """Count ``model`` on ``example`` with FlopCounterMode and torchinfo, row by row against ``trace``."""
    import torch

    from vizcli.shapes.trace import trace_with_counter

    tools: dict[str, str] = {"FlopCounterMode": f"torch {torch.__version__}"}
    counted = trace_with_counter(model, example, trace.method, _FlopCounterTake())
    if [r.name for r in counted.records] != [r.name for r in trace.records]:
        raise RunFailure("FlopCounterMode's run of the model took another path than vizcli's; the rows cannot be compared")
    flop_rows = [r.macs for r in counted.records]
    info_rows, info_total = _torchinfo_rows(model, example, trace.records, tools)
    rows = []
    for position, record in enumerate(trace.records):
        module = _module_of(model, record)
        row = RowCounts(record.index, info_rows[position] if info_rows is not None else None, flop_rows[position])
        if info_rows is not None and (row.torchinfo or 0) != record.macs:
            row.why.append(_torchinfo_why(record, module, row.torchinfo))
        if row.flop_counter != record.macs:
            row.why.append(_flop_counter_why(record, module, row.flop_counter or 0))
        rows.append(row)
    totals = {"vizcli": sum(r.macs for r in trace.records), "torchinfo": info_total, "flop_counter": sum(flop_rows)}
    return Comparison(rows, totals, tools)


def _module_of(model: Any, record: LayerRecord) -> Any:
    """The module a row is a call of (None for a functional operation)."""
    if record.kind in ("add", "flatten") or (record.node and not _is_module_row(model, record)):
        return None
    try:
        return model.get_submodule(record.name)
    except AttributeError:
        return None


def _is_module_row(model: Any, record: LayerRecord) -> bool:
    try:
        module = model.get_submodule(record.name)
    except AttributeError:
        return False
    return type(module).__name__ == record.kind


def _torchinfo_rows(model: Any, example: Any, records: list[LayerRecord], tools: dict[str, str]) -> tuple[list[int | None] | None, int | None]:
    try:
        import torchinfo
    except ImportError:
        tools["torchinfo"] = "not installed (pip install torchinfo)"
        return None, None
    from importlib import metadata

    tools["torchinfo"] = f"torchinfo {metadata.version('torchinfo')}"
    stats = torchinfo.summary(model, input_data=[example], verbose=0, depth=10**6, col_names=("mult_adds",), mode="eval",
                              device=example.device)
    calls: dict[int, list[int]] = {}
    for info in stats.summary_list:
        if info.is_leaf_layer:
            calls.setdefault(id(info.module), []).append(int(info.macs))
    seen: dict[int, int] = {}
    rows: list[int | None] = []
    for record in records:
        module = _module_of(model, record)
        if module is None or id(module) not in calls:
            rows.append(None)
            continue
        call = seen.get(id(module), 0)
        seen[id(module)] = call + 1
        made = calls[id(module)]
        rows.append(made[call] if call < len(made) else None)
    return rows, int(stats.total_mult_adds)


def _torchinfo_why(record: LayerRecord, module: Any, theirs: int | None) -> str:
    if module is None:
        return "torchinfo counts modules only: this functional operation has no row there"
    name = type(module).__name__
    if name == "Linear" and len(record.shape) > 2:
        positions = math.prod(record.shape[1:-1])
        return (f"torchinfo multiplies a Linear's parameters by the batch only, not by the {positions:,} positions of each "
                "sample (TylerYep/torchinfo#226)")
    if (name.startswith("Conv") or name == "Linear") and getattr(module, "bias", None) is not None:
        return "torchinfo counts the bias too: one more MAC per output value"
    if name.startswith(NORMS):
        return "torchinfo counts a norm's scale and shift parameters as MACs; vizcli counts only matmul and convolution work"
    if name == "Embedding":
        return "torchinfo counts the embedding table's parameters as MACs; a lookup multiplies nothing"
    if name == "MultiheadAttention":
        return ("torchinfo counts MultiheadAttention from its in-projection parameters; the attention matmuls and the fused "
                "out-projection are missing")
    if not theirs:
        return "torchinfo has no formula for this module (it counts parameters × output positions)"
    return "torchinfo's formula (parameters × output positions) differs from the operators that ran"


def _flop_counter_why(record: LayerRecord, module: Any, theirs: int) -> str:
    if record.kind == "attention" or (module is not None and type(module).__name__ == "MultiheadAttention"):
        return ("FlopCounterMode has no formula for the CPU attention kernel (scaled_dot_product_attention's or "
                "MultiheadAttention's fused path): it counts nothing there")
    if theirs < record.macs:
        return "FlopCounterMode has no formula for an operator this row ran"
    return "FlopCounterMode counts an operator vizcli does not (see its flop_registry)"


def comparison_lines(comparison: Comparison, records: list[LayerRecord]) -> list[str]:
    """The totals of each counter, and one line per row that differs saying why."""
    def count(value: int | None) -> str:
        return human_count(value) if value is not None else "—"

    totals = comparison.totals
    tools = ", ".join(f"{name}: {version}" for name, version in comparison.tools.items())
    lines = [f"compared ({tools}); FlopCounterMode counts FLOPs, shown as MACs (÷ 2)",
             f"total MACs: vizcli {count(totals['vizcli'])} · torchinfo {count(totals['torchinfo'])} · "
             f"FlopCounterMode {count(totals['flop_counter'])}"]
    for row in comparison.rows:
        for why in row.why:
            lines.append(f"  #{row.index} {records[row.index].name}: {why}")
    if not any(row.why for row in comparison.rows):
        lines.append("  every row agrees")
    return lines
