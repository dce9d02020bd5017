"""``vizcli shapes --model minilm --seq-len 16,64,256``: a text model's MACs as a function of the sequence length.

Each length is traced and counted per operator (as one ``--seq-len N`` run is); the totals are then
fitted by least squares to ``MACs(L) = c + a·L + b·L²``. For a BERT encoder the fit recovers the
analytic count exactly: ``a = layers·(4H² + 2HI)`` (the Q, K, V, output and feed-forward
projections, once per token), ``b = 2·layers·H`` (QKᵀ and the product with V, once per token
pair), ``c = H²`` (the pooler, once per sequence). The quadratic part overtakes the linear one at
``L = a / b`` (``2H + I`` for BERT); the attention share at each L is the attention rows' MACs
over the total.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vizcli.common.errors import BadInput

ATTENTION_KINDS = ("attention", "matmul", "einsum")  # the rows a traced attention block's own code gets
MAX_LENGTHS = 16
SWEEP_SCHEMA = "vizcli.shapes.sweep/1"


@dataclass
class SweepPoint:
    length: int
    macs: int
    attention_macs: int

    @property
    def attention_share(self) -> float:
        return self.attention_macs / self.macs if self.macs else 0.0


@dataclass
class Sweep:
    """The counted points and the fit ``MACs(L) = constant + linear·L + quadratic·L²``."""

    model_name: str
    weights_note: str
    points: list[SweepPoint]
    constant: float
    linear: float
    quadratic: float

    @property
    def crossover(self) -> float | None:
        """The length at which the quadratic part equals the linear part (None without a quadratic part)."""
        return self.linear / self.quadratic if self.quadratic > 0 else None

    def fitted(self, length: int) -> float:
        return self.constant + self.linear * length + self.quadratic * length**2

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": SWEEP_SCHEMA, "model": self.model_name, "weights": self.weights_note,
            "fit": {"constant": self.constant, "linear": self.linear, "quadratic": self.quadratic, "crossover": self.crossover},
            "points": [{"seq_len": p.length, "macs": p.macs, "linear_part": self.linear * p.length,
                        "quadratic_part": self.quadratic * p.length**2, "attention_macs": p.attention_macs,
                        "attention_share": p.attention_share, "fit_error": p.macs - self.fitted(p.length)} for p in self.points],
        }


def parse_seq_lens(text: str | None) -> list[int] | None:
    """``"16"`` → ``[16]``; ``"16,64,256"`` → ``[16, 64, 256]`` (sorted, distinct); None stays None."""
    if text is None:
        return None
    try:
        lengths = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise BadInput("give a length or lengths like 16,64,256", parameter="seq_len", value=text) from None
    if not lengths:
        raise BadInput("give a length or lengths like 16,64,256", parameter="seq_len", value=text)
    if len(lengths) > MAX_LENGTHS:
        raise BadInput(f"{len(lengths)} lengths; a sweep takes at most {MAX_LENGTHS}", parameter="seq_len", value=text)
    if len(lengths) == 2:
        raise BadInput("a sweep fits three parts (constant, L, L²): give at least 3 lengths, or one", parameter="seq_len", value=text)
    return lengths


def sweep_seq_lens(spec: str, lengths: list[int], seed: int = 0, device: str = "auto") -> Sweep:
    """Trace the text model ``spec`` at each of ``lengths`` (seeded random ids, each a prefix of the
    longest) and fit its MACs (see the module's docstring)."""
    import numpy as np

    from vizcli.common.runtime import resolve_device
    from vizcli.shapes.any_model import load_text_model
    from vizcli.shapes.trace import trace_shapes

    source = load_text_model(spec, None, max(lengths), seed)  # checks the longest against the model's limit
    if min(lengths) < 2:
        raise BadInput("each length at least 2", parameter="seq_len", value=",".join(map(str, lengths)))
    target = resolve_device(device)
    model = source.module.to(target)
    points = []
    for length in lengths:
        trace = trace_shapes(model, source.example[:, :length].to(target))
        if trace.error is not None:
            from vizcli.common.errors import RunFailure

            raise RunFailure(f"the model failed at seq_len {length} in {trace.failed_at}: {trace.error}")
        points.append(SweepPoint(length, sum(r.macs for r in trace.records),
                                 sum(r.macs for r in trace.records if r.kind in ATTENTION_KINDS)))
    design = np.array([[1.0, p.length, p.length**2] for p in points])
    observed = np.array([float(p.macs) for p in points])
    (constant, linear, quadratic), *_ = np.linalg.lstsq(design, observed, rcond=None)
    return Sweep(source.name, source.note, points, float(constant), float(linear), float(quadratic))


def sweep_lines(sweep: Sweep) -> tuple[list[str], list[list[str]]]:
    """The fit's lines and the table's rows (L, MACs, linear part, quadratic part, attention share), as text."""
    from vizcli.shapes.records import human_count

    fit = (f"MACs(L) = {human_count(sweep.constant)} + {human_count(sweep.linear)}·L + {human_count(sweep.quadratic)}·L² "
           "(least squares over the counted lengths)")
    lines = [fit]
    if sweep.crossover is not None:
        lines.append(f"the L² part (attention's QKᵀ and ·V) equals the linear part (the projections) at L = {sweep.crossover:,.0f}")
    worst = max(abs(p.macs - sweep.fitted(p.length)) for p in sweep.points)
    lines.append(f"largest difference between the fit and a counted total: {worst:,.1f} MACs")
    rows = [[f"{p.length:,}", human_count(p.macs), human_count(sweep.linear * p.length), human_count(sweep.quadratic * p.length**2),
             f"{p.attention_share:.1%}"] for p in sweep.points]
    return lines, rows


def print_sweep(sweep: Any, output_format: str, output: str | None) -> None:
    """A ``--seq-len`` sweep (``vizcli.shapes.sweep.Sweep``) as a table with its fit, as JSON or as CSV."""
    from rich.table import Table
    from rich.text import Text

    from vizcli.common.console import print_renderables
    from vizcli.common.files import open_destination
    from vizcli.common.formats import to_json, write_records

    if output_format not in ("table", "json", "csv"):
        from vizcli.common.errors import BadInput

        raise BadInput("a sequence-length sweep prints as table, json or csv", parameter="format", value=output_format)
    with open_destination(output, binary=False) as stream:
        if output_format == "json":
            stream.write(to_json(sweep.as_dict()) + "\n")
            return
        if output_format == "csv":
            write_records(sweep.as_dict()["points"], "csv", stream)
            return
        lines, rows = sweep_lines(sweep)
        table = Table(title=f"{sweep.model_name} · MACs by sequence length", title_justify="left")
        for header in ("seq len L", "MACs", "linear part a·L", "quadratic part b·L²", "attention share"):
            table.add_column(header, justify="right")
        for row in rows:
            table.add_row(*row)
        print_renderables([table, *(Text(line) for line in lines), Text(sweep.weights_note)], stream)
