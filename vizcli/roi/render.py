"""Tables and worked computations for ``vizcli roi`` (pure functions from results to renderables)."""

from __future__ import annotations

from typing import Any

from vizcli.common.console import info, print_renderables
from vizcli.common.errors import printable
from vizcli.common.formats import ROI_SCHEMA, to_json, write_arrays
from vizcli.roi.explain import AlignExplanation, NotesExamples, PoolExplanation, explain_box
from vizcli.roi.report import RoiReport


def _box(values, digits: int = 1) -> str:
    return ",".join(f"{round(v, digits):g}" if isinstance(v, float) else str(v) for v in values)


def _statistics(features) -> dict[str, list[float]]:
    """Per-box mean, std, min and max of ``Tensor[K, C, h, w]``, computed for all boxes at once."""
    flat = features.float().flatten(start_dim=1)
    std = flat.std(dim=1) if flat.shape[1] > 1 else flat.new_zeros(flat.shape[0])
    return {"mean": flat.mean(dim=1).tolist(), "std": std.tolist(),
            "min": flat.min(dim=1).values.tolist(), "max": flat.max(dim=1).values.tolist()}


def roi_rows(report: RoiReport, limit: int | None = None) -> list[dict[str, Any]]:
    """One JSON-safe row per box (the first ``limit`` of each image): geometry, RoIPool's
    rounding, statistics per op."""
    rows = []
    for image in report.images:
        count = len(image.boxes) if limit is None else min(limit, len(image.boxes))
        outputs = {op: image.outputs[op][:count] for op in report.ops}
        stats = {op: _statistics(outputs[op]) for op in report.ops}
        if len(report.ops) == 2:
            difference = (outputs["pool"] - outputs["align"]).abs().flatten(start_dim=1)
            gaps = {"max_abs": difference.max(dim=1).values.tolist(), "mean_abs": difference.mean(dim=1).tolist()}
        output_shape = list(image.outputs[report.ops[0]].shape[1:])
        for local, result in enumerate(image.boxes[:count]):
            row: dict[str, Any] = {
                "image": image.source,
                "number": result.box.number,
                "label": result.box.label,
                "box": list(result.box.coords),
                "input_box": list(result.input_box),
                "feature_box": list(result.cells),
                "pool_box": list(result.pool_cells),
                "pool_shift_px": list(result.pool_error_px),
                "bin_size": list(result.bin_size),
                "level": result.level,
                "spatial_scale": result.spatial_scale,
                "output_shape": output_shape,
            }
            for op in report.ops:
                row[op] = {name: values[local] for name, values in stats[op].items()}
            if len(report.ops) == 2:
                row["pool_minus_align"] = {name: values[local] for name, values in gaps.items()}
            rows.append(row)
    return rows


TABLE_ROWS = 50  # more boxes than this: the table shows the first ones; json/-o have all


def roi_renderables(report: RoiReport) -> list[Any]:
    from rich.table import Table
    from rich.text import Text

    out: list[Any] = []
    rows = roi_rows(report, limit=TABLE_ROWS)
    for image in report.images:
        pyramid = len(image.feature_maps) > 1
        for name, fmap in image.feature_maps.items():
            _, channels, feature_h, feature_w = fmap.tensor.shape
            title = f"{report.model} fpn level {name}" if pyramid else f"{report.layer}"
            out.append(Text(
                f"{title} feature map {channels}×{feature_h}×{feature_w} from input {fmap.padded[0]}×{fmap.padded[1]} "
                f"(padded): spatial scale {fmap.spatial_scale:g} = 1/{fmap.stride:g}, measured"
            ))
        strides = {1 / fmap.spatial_scale for fmap in image.feature_maps.values()}
        cells_title = "box (cells of its level)" if pyramid else f"box (cells, ÷{strides.pop():g})"
        resized = image.resize_factor != 1.0
        geometry = Table(title="where each box lands", title_justify="left", pad_edge=True)
        for column in ("#", "label", "box (image px)", *(["box (resized px)"] if resized else []),
                       *(["level"] if pyramid else []), cells_title, "RoIPool box (cells)", "RoIPool edge shift (px)", "bin h×w (cells)"):
            geometry.add_column(column, justify="right" if column == "#" else "left")
        values = Table(title="what was pooled (all channels)", title_justify="left", pad_edge=True)
        values.add_column("#", justify="right")
        for op in report.ops:
            values.add_column(f"{op} mean", justify="right")
            values.add_column(f"{op} max", justify="right")
        if len(report.ops) == 2:
            values.add_column("|pool − align| max", justify="right")
            values.add_column("|pool − align| mean", justify="right")
        image_rows = [r for r in rows if r["image"] == image.source]
        for row, result in zip(image_rows[:TABLE_ROWS], image.boxes):
            geometry.add_row(
                str(result.box.number), printable(result.box.label) or "—", _box(result.box.coords),
                *([_box(result.input_box)] if resized else []),
                *([f"{result.level} (÷{1 / result.spatial_scale:g})"] if pyramid else []),
                _box(result.cells, 2), _box(result.pool_cells), " ".join(f"{v:+.0f}" for v in result.pool_error_px),
                f"{result.bin_size[0]:.3f}×{result.bin_size[1]:.3f}",
            )
            cells = [str(result.box.number)]
            for op in report.ops:
                cells += [f"{row[op]['mean']:.4f}", f"{row[op]['max']:.4f}"]
            if len(report.ops) == 2:
                cells += [f"{row['pool_minus_align']['max_abs']:.4f}", f"{row['pool_minus_align']['mean_abs']:.4f}"]
            values.add_row(*cells)
        out.append(geometry)
        out.append(values)
        if len(image.boxes) > TABLE_ROWS:
            more = len(image.boxes) - TABLE_ROWS
            out.append(Text(f"… and {more:,} more {'box' if more == 1 else 'boxes'} (all of them in --format json and -o FILE)"))
    out.append(Text(settings_line(report)))
    out.append(Text("RoIPool shift: how far each edge (x1, y1, x2, y2) of RoIPool's rounded box lies from the exact box, in image pixels."))
    out.append(Text(report.weights_note))
    return out


def settings_line(report: RoiReport) -> str:
    """The pooling settings that applied: RoIAlign's sampling ratio and alignment only when it ran."""
    spec = report.spec
    shapes = ", ".join(f"{op} {list(report.images[0].outputs[op].shape[1:])}" for op in report.ops)
    parts = [f"op {', '.join(report.ops)}", f"output {spec.output_size[0]}×{spec.output_size[1]} per channel ({shapes} per box)"]
    if "align" in report.ops:
        parts += [f"sampling ratio {spec.sampling_ratio or 'adaptive'}", f"aligned={spec.aligned}"]
    return " · ".join([*parts, f"device {report.device}"])


def preprocessing_lines(report: RoiReport) -> list[str]:
    """What was done to each image before the backbone saw it (one line an image)."""
    return [printable(f"{image.source}: " + " → ".join(image.steps)) for image in report.images]


def explanation_lines(explanation, label: str) -> list[str]:
    if isinstance(explanation, AlignExplanation):
        return _align_lines(explanation, label)
    return _pool_lines(explanation, label)


def _align_lines(e: AlignExplanation, label: str) -> list[str]:
    lines = [
        f"RoIAlign, {label}, bin (row {e.row}, col {e.col}), channel {e.channel}",
        f"  box in cells (x1, y1, x2, y2): {_box(e.roi, 4)} (image pixels × spatial scale, −0.5 if aligned)",
        f"  bin {e.row},{e.col} spans x {e.bin[0]:.4f}…{e.bin[2]:.4f}, y {e.bin[1]:.4f}…{e.bin[3]:.4f}; "
        f"{e.grid[0]}×{e.grid[1]} sample points, no rounding anywhere",
    ]
    for number, sample in enumerate(e.samples, start=1):
        lines.append(f"  point {number} at (x={sample.x:.4f}, y={sample.y:.4f}):")
        if not sample.neighbours:
            lines.append("    outside the map by more than one cell → 0")
        for row, col, value, weight in sample.neighbours:
            lines.append(f"    cell (x={col}, y={row}) value {value:+.6f} × weight {weight:.4f} = {value * weight:+.6f}")
        lines.append(f"    interpolated value {sample.value:+.6f}")
    total = sum(sample.value for sample in e.samples)
    lines.append(f"  average of {max(len(e.samples), 1)} points: {total:+.6f} / {max(len(e.samples), 1)} = {e.by_hand:+.6f}")
    lines.append(_agreement(e.by_hand, e.op_value, "torchvision.ops.roi_align"))
    return lines


def _pool_lines(e: PoolExplanation, label: str) -> list[str]:
    lines = [
        f"RoIPool, {label}, bin (row {e.row}, col {e.col}), channel {e.channel}",
        f"  rounding 1: box rounded to whole cells (x1, y1, x2, y2) = {e.rounded} (ends inclusive)",
        f"  rounding 2: bin rows {e.rows[0]}…{e.rows[1] - 1}, cols {e.cols[0]}…{e.cols[1] - 1} (floor start, ceil end)",
    ]
    for offset, values in enumerate(e.cells):
        lines.append(f"    row {e.rows[0] + offset}: " + "  ".join(f"{v:+.6f}" for v in values))
    lines.append(f"  maximum: {e.by_hand:+.6f}" + ("" if e.cells else " (empty bin → 0)"))
    lines.append(_agreement(e.by_hand, e.op_value, "torchvision.ops.roi_pool"))
    return lines


def _agreement(by_hand: float, op_value: float | None, op: str) -> str:
    if op_value is None:
        return f"  by hand: {by_hand:+.6f}"
    difference = abs(by_hand - op_value)
    verdict = "agree" if difference <= 1e-5 else "DISAGREE"
    return f"  by hand {by_hand:+.6f} vs {op} {op_value:+.6f}: {verdict} (|difference| {difference:.1e})"


def print_notes() -> None:
    """The two worked examples of RoI pooling in the study notes, recomputed, on stdout."""
    from vizcli.roi.explain import notes_examples

    print("\n".join(notes_lines(notes_examples())))


def notes_lines(examples: NotesExamples) -> list[str]:
    lines = ["The notes' example 1: a 14×14 region pooled to 7×7 with 2×2 cells (RoIPool, synthetic 16×16 map, scale 1)"]
    x1, y1, x2, y2 = examples.pool_box
    lines.append(f"  region: cells x {x1:g}…{x2:g}, y {y1:g}…{y2:g} (inclusive) = 14×14; bin = 14/7 = 2 cells per side")
    first = examples.pool_bins[0]
    lines.append(f"  bin (0,0) covers rows {first.rows[0]}…{first.rows[1] - 1}, cols {first.cols[0]}…{first.cols[1] - 1}: "
                 + ", ".join(f"{v:.4f}" for line in first.cells for v in line) + f" → max {first.by_hand:.4f}")
    sizes = {(b.rows[1] - b.rows[0], b.cols[1] - b.cols[0]) for b in examples.pool_bins}
    lines.append(f"  every bin is {' / '.join(f'{h}×{w}' for h, w in sorted(sizes))} cells")
    difference = float((examples.pool_output - examples.pool_by_hand).abs().max())
    lines.append(f"  roi_pool output vs max of each 2×2 block: max |difference| {difference:.1e} → "
                 + ("agree" if difference <= 1e-5 else "DISAGREE"))
    lines.append("")
    x, y = examples.point
    lines.append(f"The notes' example 2: bilinear interpolation at (x={x}, y={y}) (RoIAlign's one sample of a 1×1 box, aligned=False)")
    sample = examples.align.samples[0]
    for row, col, value, weight in sample.neighbours:
        lines.append(f"  neighbour ({col},{row}) weight {weight:.2f}  (value {value:+.4f})")
    lines.append(f"  weights sum to {sum(w for *_, w in sample.neighbours):.2f}; the notes give 0.32, 0.48, 0.08, 0.12")
    lines.append(_agreement(examples.align.by_hand, examples.align_output, "torchvision.ops.roi_align"))
    return lines


def print_report(
    report: RoiReport, output_format: str | None, explain_target: tuple[int, int, int] | None, channel: int,
    say: Any = info,
) -> None:
    """The report on stdout (table, JSON, or nothing for ``None``); the ``--explain`` computation
    after a table (or alone), on stderr after JSON so stdout stays one document. The images'
    preprocessing goes to ``say`` (stderr), so stdout holds the result alone."""
    import sys

    for line in preprocessing_lines(report):
        say(line)
    if output_format == "json":
        document = {"schema": ROI_SCHEMA, "metadata": report.metadata(), "rows": roi_rows(report)}
        print(to_json(document))
    elif output_format == "table":
        print_renderables(roi_renderables(report), sys.stdout)
    if explain_target is None:
        return
    index, row, column = explain_target
    lines: list[str] = []
    for explanation in explain_box(report, index, row, column, channel):
        lines += explanation_lines(explanation, f"box {index + 1}") + [""]
    (info if output_format == "json" else print)("\n".join(lines).rstrip())


def save_features(report: RoiReport, path: str, save_format: str, recorded: dict[str, Any] | None = None) -> str:
    """Write every op's ``Tensor[K, C, h, w]`` with the report's metadata (and ``recorded``: the worker's settings, which
    ``vizcli verify`` rebuilds it from); returns what was written, in words."""
    arrays = {f"roi_{name}": report.stacked(name) for name in report.ops}
    write_arrays(arrays, {**report.metadata(), **(recorded or {})}, save_format, path)
    from vizcli.common.files import writes_side_files

    side = f" and the metadata to {path}.json" if save_format == "npy" and writes_side_files(path) else ""
    return f"wrote {', '.join(f'{k} {list(v.shape)}' for k, v in arrays.items())} to {path}{side}"
