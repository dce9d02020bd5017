"""The ``roi --plot`` picture: boxes on the feature grid, one box up close, pooled features."""

from __future__ import annotations

from vizcli.common.plotting import pyplot, save_png
from vizcli.roi.explain import explain_align
from vizcli.roi.report import RoiReport


def plot_roi(report: RoiReport, path: str) -> None:
    """Image with exact and RoIPool-rounded boxes on the feature grid; one box's bins and
    sample points up close; each box's pooled features (mean over channels)."""
    from matplotlib.patches import Rectangle
    plt = pyplot()
    image = report.images[0]
    grid_map = image.map_of(image.boxes[0]) if image.boxes else next(iter(image.feature_maps.values()))
    stride = grid_map.stride  # with fpn: the grid of the first box's level
    factor = image.resize_factor
    picture = image.picture
    boxes = image.boxes
    ops = report.ops
    columns = max(len(boxes), 1)
    figure = plt.figure(figsize=(14, 6 + 2.2 * len(ops)), dpi=110)
    grid = figure.add_gridspec(1 + len(ops), max(columns, 2), height_ratios=[4] + [1.2] * len(ops))
    overview = figure.add_subplot(grid[0, : max(columns, 2) // 2 or 1])
    closeup = figure.add_subplot(grid[0, max(columns, 2) // 2 or 1 :])
    width, height = image.size
    if picture is not None:
        overview.imshow(picture, extent=(0, width, height, 0))
    cell = stride / factor  # one feature cell in original image pixels
    for k in range(int(width / cell) + 2):
        overview.axvline(k * cell, color="white", lw=0.4, alpha=0.5)
    for k in range(int(height / cell) + 2):
        overview.axhline(k * cell, color="white", lw=0.4, alpha=0.5)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, result in enumerate(boxes):
        colour = colours[index % len(colours)]
        x1, y1, x2, y2 = result.box.coords
        overview.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec=colour, lw=2))
        px1, py1, px2, py2 = result.pool_cells
        overview.add_patch(Rectangle((px1 * cell, py1 * cell), (px2 - px1 + 1) * cell, (py2 - py1 + 1) * cell,
                                     fill=False, ec=colour, lw=1.5, ls="--"))
        overview.text(x1, y1 - 3, f"{result.box.number} {result.box.label}".strip(), color=colour, fontsize=9,
                      va="bottom", bbox={"fc": "black", "alpha": 0.5, "pad": 1, "lw": 0})
    overview.set_xlim(0, width)
    overview.set_ylim(height, 0)
    level = f"fpn level {image.boxes[0].level}" if len(image.feature_maps) > 1 and image.boxes else report.layer
    overview.set_title(f"boxes (solid) and RoIPool's rounded boxes (dashed) on the {level} grid "
                       f"(1 cell = {cell:g} px)", fontsize=10)
    if boxes:
        _draw_closeup(closeup, report, image, boxes[0], cell)
    for row, op in enumerate(ops, start=1):
        for column, result in enumerate(boxes[:columns]):
            axis = figure.add_subplot(grid[row, column])
            heat = image.outputs[op][column].float().mean(dim=0).cpu().numpy()
            axis.imshow(heat, cmap="viridis")
            axis.set_xticks([])
            axis.set_yticks([])
            axis.set_title(f"{op}: box {result.box.number} (mean over channels)", fontsize=8)
    figure.suptitle(f"vizcli roi · {image.source} · {report.weights_note}", fontsize=9)
    figure.tight_layout()
    save_png(figure, path)


def _draw_closeup(axis, report: RoiReport, image, result, cell: float) -> None:
    from matplotlib.patches import Rectangle

    x1, y1, x2, y2 = result.box.coords
    margin = cell * 1.5
    out_h, out_w = report.spec.output_size
    # the feature cells around the box
    for k in range(int((x1 - margin) // cell), int((x2 + margin) // cell) + 2):
        axis.axvline(k * cell, color="0.7", lw=0.6)
    for k in range(int((y1 - margin) // cell), int((y2 + margin) // cell) + 2):
        axis.axhline(k * cell, color="0.7", lw=0.6)
    axis.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec="tab:blue", lw=2, label="exact box"))
    px1, py1, px2, py2 = result.pool_cells
    axis.add_patch(Rectangle((px1 * cell, py1 * cell), (px2 - px1 + 1) * cell, (py2 - py1 + 1) * cell,
                             fill=True, fc="tab:orange", alpha=0.15, ec="tab:orange", ls="--", lw=1.5,
                             label="RoIPool's rounded box"))
    if "align" in report.ops:
        plane = image.map_of(result).tensor[0, 0].double().cpu()
        spec = report.spec.at_stride(1 / result.spatial_scale)
        offset_px = (0.5 if report.spec.aligned else 0.0) * cell  # cells → original pixels
        xs, ys = [], []
        for row in range(out_h):
            for col in range(out_w):
                e = explain_align(plane, result.input_box, spec, row, col)
                bx1, by1, bx2, by2 = (v * cell + offset_px for v in e.bin)
                axis.add_patch(Rectangle((bx1, by1), bx2 - bx1, by2 - by1, fill=False, ec="tab:green", lw=0.6))
                xs += [s.x * cell + offset_px for s in e.samples]
                ys += [s.y * cell + offset_px for s in e.samples]
        axis.scatter(xs, ys, s=6, color="tab:red", zorder=3, label="RoIAlign sample points")
        axis.plot([], [], color="tab:green", lw=0.6, label=f"RoIAlign bins ({out_h}×{out_w})")
    axis.set_xlim(x1 - margin, x2 + margin)
    axis.set_ylim(y2 + margin, y1 - margin)
    axis.set_aspect("equal")
    axis.legend(loc="upper right", fontsize=7, framealpha=0.8)
    shift = max(abs(v) for v in result.pool_error_px)
    axis.set_title(f"box {result.box.number} up close: grey = feature cells; RoIPool shifts an edge by up to {shift:.0f} px",
                   fontsize=10)
