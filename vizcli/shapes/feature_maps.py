"""Feature-map pictures (PNG): a grid of one layer's channels, and a strip from the input down the stages.

Each panel is scaled to its own value range, which the caption states, with the layer and its shape.
"""

from __future__ import annotations

import math
from typing import Any

from vizcli.shapes.activations import KeptMaps, channel_order

MAX_GRID_CHANNELS = 64


def _range(values: Any) -> str:
    return f"[{float(values.min()):.3g}, {float(values.max()):.3g}]"


def draw_channel_grid(name: str, channels: Any, path: str, limit: int = MAX_GRID_CHANNELS) -> None:
    """``channels`` (``Tensor[C, H, W]``, one sample) as a grid, most active channel first, into the PNG ``path``."""
    from vizcli.common.plotting import pyplot, save_png

    plt = pyplot()
    order = channel_order(channels)[:limit]
    columns = min(8, len(order))
    rows = math.ceil(len(order) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.6 * rows + 0.8), squeeze=False)
    for slot, axis in enumerate(axes.flat):
        axis.axis("off")
        if slot < len(order):
            index = order[slot]
            axis.imshow(channels[index].cpu().numpy(), cmap="viridis")
            axis.set_title(f"ch {index}", fontsize=7)
    count, height, width = channels.shape
    shown = f"the {len(order)} most active of {count}" if len(order) < count else f"all {count}"
    figure.suptitle(f"{name} · {count}×{height}×{width} · values {_range(channels)} · {shown} channels, most active first",
                    fontsize=9)
    figure.tight_layout()
    save_png(figure, path)


def draw_stage_strip(maps: KeptMaps, path: str, title: str) -> None:
    """The input image, then each stage's most active map, left to right, into the PNG ``path``."""
    from vizcli.common.plotting import pyplot, save_png

    plt = pyplot()
    panels: list[tuple[str, Any, bool]] = []
    if maps.input is not None:
        panels.append((f"input\n{'×'.join(map(str, maps.input.shape))}\n{_range(maps.input)}", maps.input, True))
    for stage, (values, record) in maps.stages.items():
        shape = "×".join(map(str, record.shape[1:]))
        panels.append((f"{stage}\n{shape}\n{_range(values)}", values, False))
    figure, axes = plt.subplots(1, len(panels), figsize=(2.0 * len(panels), 2.8), squeeze=False)
    for axis, (caption, values, is_image) in zip(axes.flat, panels):
        axis.axis("off")
        if is_image and values.dim() == 3 and values.shape[0] == 3:
            low, high = values.min(), values.max()
            picture = ((values - low) / (high - low + 1e-12)).permute(1, 2, 0).cpu().numpy()
            axis.imshow(picture)
        else:
            axis.imshow((values[0] if values.dim() == 3 else values).cpu().numpy(), cmap="viridis")
        axis.set_title(caption, fontsize=7)
    figure.suptitle(title + " · per stage, its most active channel", fontsize=9)
    figure.tight_layout()
    save_png(figure, path)
