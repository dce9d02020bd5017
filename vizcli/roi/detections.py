"""``vizcli roi IMAGE --detect`` (or ``--op box-head`` on given boxes) for single images: run the
``Detector``, then print the table or JSON, save the arrays, and draw the detections."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vizcli.common.formats import to_json, write_arrays
from vizcli.roi.detect import Detector
from vizcli.roi.detectors import feature_column

DETECTIONS_SCHEMA = "vizcli.roi.detections/1"


@dataclass
class Detections:
    """The detector's rows for the images of one command."""

    detector: Detector
    images: list[str]
    result: dict[str, Any]  # Detector's output batch

    def rows(self) -> list[dict[str, Any]]:
        """One JSON-safe row per box: image, rank, class, score, box, level, and per op its shape and norm."""
        import math

        import numpy as np

        rows = []
        for number, source in enumerate(self.images):
            for rank, box in enumerate(self.result["box"][number]):
                score = float(self.result["score"][number][rank])
                row: dict[str, Any] = {
                    "image": source, "box_index": int(self.result["kept"][number][rank]),
                    "class": str(self.result["class_name"][number][rank]) or None,
                    "score": None if math.isnan(score) else round(score, 6),
                    "box": [round(float(value), 3) for value in box],
                    "level": str(self.result["levels"][number][rank]) or None if len(self.result["levels"][number]) else None,
                }
                for op in self.detector.ops:
                    value = np.asarray(self.result[feature_column(op)][number][rank])
                    row[op] = {"shape": list(value.shape), "l2": round(float(np.linalg.norm(value)), 6)}
                rows.append(row)
        return rows

    def metadata(self) -> dict[str, Any]:
        return {**self.detector.metadata(), "images": list(self.images)}


def detect_images(detector: Detector, images: list[str], boxes: dict[str, list[Any]] | None) -> Detections:
    """``detector`` on ``images`` (paths, or ``-`` for stdin's bytes), with ``boxes`` per image when given."""
    import sys

    sources: list[Any] = [sys.stdin.buffer.read() if image == "-" else image for image in images]
    batch: dict[str, Any] = {"image": sources, "id": list(images)}
    if boxes is not None:
        batch["boxes"] = [[list(box.coords) for box in boxes.get(image, [])] for image in images]
    return Detections(detector, list(images), detector(batch))


def print_detections(detections: Detections, output_format: str | None) -> None:
    import sys

    if output_format == "json":
        print(to_json({"schema": DETECTIONS_SCHEMA, "metadata": detections.metadata(), "rows": detections.rows()}))
    elif output_format == "table":
        from vizcli.common.console import print_renderables

        print_renderables([detections_table(detections)], sys.stdout)


def detections_table(detections: Detections) -> Any:
    from rich.table import Table

    detector = detections.detector
    what = "detections" if detector.detect else "given boxes through the box head"
    table = Table(title=f"{detector.detector} · {what} · {detector.weights_label}", title_justify="left")
    several = len(detections.images) > 1
    for name, justify in (("#", "right"), *((("image", "left"),) if several else ()), ("class", "left"), ("score", "right"),
                          ("box x1,y1,x2,y2", "right"), ("level", "right"), *((op, "right") for op in detector.ops)):
        table.add_column(name, justify=justify)
    for number, row in enumerate(detections.rows()):
        cells = [str(number), *((row["image"],) if several else ()), row["class"] or "—",
                 "—" if row["score"] is None else f"{row['score']:.3f}", ",".join(f"{v:.1f}" for v in row["box"]),
                 row["level"] or "—"]
        cells += [f"{'×'.join(map(str, row[op]['shape']))} ‖·‖={row[op]['l2']:.3g}" for op in detector.ops]
        table.add_row(*cells)
    return table


def save_detections(detections: Detections, path: str, save_format: str) -> str:
    """Write the boxes, scores, classes (as indices into the metadata's ``categories``), image
    numbers and every op's features, all rows of all images stacked; returns what was saved."""
    import numpy as np

    result, detector = detections.result, detections.detector
    counts = [len(boxes) for boxes in result["box"]]
    arrays: dict[str, Any] = {
        "boxes": np.concatenate(result["box"]).astype(np.float32).reshape(-1, 4),
        "scores": np.concatenate(result["score"]).astype(np.float32),
        "image_index": np.repeat(np.arange(len(counts), dtype=np.int64), counts),
    }
    if detector.detect:  # the detector's class indices as they are (names repeat: COCO has ten N/A)
        arrays["labels"] = np.concatenate(result["class_index"]).astype(np.int64).reshape(-1)
    for op in detector.ops:
        shape = detector.feature_shapes[op]
        arrays[feature_column(op)] = np.concatenate(result[feature_column(op)]).reshape(-1, *shape)
    metadata = {**detections.metadata(), "categories": detector.categories}
    write_arrays(arrays, metadata, save_format, path)
    return f"saved {', '.join(f'{k} {list(v.shape)}' for k, v in arrays.items())} to {path}"


def plot_detections(detections: Detections, path: str) -> None:
    """The first image with each box, its class and score (random weights: said in the title)."""
    from matplotlib.patches import Rectangle

    from vizcli.common.images import load_image
    from vizcli.common.plotting import pyplot, save_png

    plt = pyplot()
    source = detections.images[0]
    picture = load_image(source, max_pixels=detections.detector.max_pixels).image if source != "-" else None
    rows = [row for row in detections.rows() if row["image"] == source]
    width, height = int(detections.result["width"][0]), int(detections.result["height"][0])
    figure = plt.figure(figsize=(10, 10 * height / max(width, 1) + 0.8), dpi=110)
    axis = figure.add_subplot(1, 1, 1)
    if picture is not None:
        axis.imshow(picture, extent=(0, width, height, 0))
    axis.set_xlim(0, width)
    axis.set_ylim(height, 0)
    colours = plt.get_cmap("tab10")
    for number, row in enumerate(rows):
        x1, y1, x2, y2 = row["box"]
        colour = colours(number % 10)
        axis.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, linewidth=1.6, edgecolor=colour))
        label = " ".join(part for part in (row["class"], None if row["score"] is None else f"{row['score']:.2f}") if part)
        axis.text(x1, y1, f"{number} {label}".strip(), fontsize=7, color="white", va="bottom",
                  bbox={"facecolor": colour, "alpha": 0.8, "pad": 1, "linewidth": 0})
    detector = detections.detector
    title = f"{detector.detector}: {len(rows)} {'detections' if detector.detect else 'boxes'}"
    if not detector.pretrained:
        title += "\nrandom weights: these boxes are meaningless"
    axis.set_title(title, fontsize=10)
    axis.axis("off")
    figure.tight_layout()
    save_png(figure, path)


def check_detector_flags(detect: bool, model: str, layer: Any, output_size: str, sampling_ratio: int, aligned: bool,
                         max_size: int | None, dtype: Any, explain: str | None, annotations: str | None,
                         boxes: list[str] | None, boxes_file: str | None) -> None:
    """``BadInput`` for a flag a detector run would ignore: the detector pools with its own pyramid,
    pooler and transform."""
    from vizcli.common.errors import BadInput

    own = "the detector pools with its own pyramid, MultiScaleRoIAlign (7×7, sampling ratio 2) and transform"
    for flag, given in (("--model", model != "resnet18"), ("--layer", getattr(layer, "value", layer) != "layer3"),
                        ("--output-size", output_size != "7"), ("--sampling-ratio", sampling_ratio != 2),
                        ("--no-aligned", not aligned), ("--max-size", max_size is not None),
                        ("--dtype", getattr(dtype, "value", dtype) != "float32"), ("--explain", explain is not None)):
        if given:
            raise BadInput(f"{flag} is for pooling from a classifier's stages; {own}: drop {flag} (choose the detector "
                           "with --detector)")
    if detect and (annotations or boxes or boxes_file):
        raise BadInput("--detect finds the boxes itself: drop --boxes/--boxes-file/--annotations, or drop --detect to pool "
                       "your boxes through the box head (--op box-head)")


def detect_command(settings: dict[str, Any], images: list[str], boxes: dict[str, list[Any]] | None, output: str | None,
                   save_format: str | None, output_format: str | None, plot: str | None, quiet: bool,
                   threads: int | None) -> None:
    """``vizcli roi IMAGE... --detect`` (or given boxes with ``--op box-head``): table, ``-o`` arrays, ``--plot``."""
    import json

    from vizcli.common.console import info, warn
    from vizcli.common.errors import BadInput
    from vizcli.common.files import check_not_an_input, check_writable, choose_format, format_for_path
    from vizcli.common.runtime import set_threads

    formats = ("npz", "safetensors", "pt")
    chosen = choose_format(output, save_format, {name: name for name in (*formats, "npy")} | {"pth": "pt"}, "") if output else None
    if output and not chosen:
        format_for_path(output, formats)
    if chosen not in (None, *formats):
        raise BadInput(f"-o {output}: detections are several arrays; use .npz, .safetensors or .pt")
    check_writable(output)
    check_not_an_input(output, [*images, settings.get("weights")])
    if plot:
        format_for_path(plot, ("png",), parameter="plot")
        check_writable(plot, parameter="plot")
        check_not_an_input(plot, [*images, output], parameter="plot")
    from vizcli.common.files import require_file

    for image in images:
        if image != "-":
            require_file(image, "images", "an image file")  # before the detector loads
    set_threads(threads, warn)
    detector = Detector(**{"batch_size": 1, **settings})  # settings may give batch_size and decode_workers
    for note in detector.notes:
        warn(note)
    detections = detect_images(detector, images, boxes)
    for text in detections.result["problems"]:
        for problem in json.loads(str(text)):
            warn(f"{problem.get('image')}: {problem['problem']}")
    shown = output_format or (None if quiet and output else "table")
    print_detections(detections, shown)
    say = (lambda message: None) if quiet else info
    if output and chosen:
        say(save_detections(detections, output, chosen))
    if plot:
        plot_detections(detections, plot)
        say(f"saved picture to {plot}")
