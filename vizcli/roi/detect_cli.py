"""``vizcli detect``: a torchvision detector finds the boxes (or takes given ones) and pools them with its own
pooler and box head, for single images or datasets.

The command parses flags, makes one call into ``vizcli.roi.runs`` and returns; the options it shares
with ``vizcli roi`` are declared once, in ``vizcli.roi.cli``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from vizcli.datasets.options import DatasetFlags, dataset_options
from vizcli.roi.cli import (
    POOLING,
    AnnotationsFormatOption,
    AnnotationsOption,
    BatchSizeOption,
    BoxesFileOption,
    BoxesOption,
    DecodeThreadsOption,
    DetectionsOutputOption,
    DetectionsPlotOption,
    Device,
    FormatOption,
    GlobOption,
    ImagesArgument,
    ImagesRootOption,
    MaxBoxesOption,
    MaxPixels,
    OutputFormatOption,
    Quiet,
    Seed,
    StrictOption,
    Threads,
    Weights,
    image_inputs,
)

DETECTION = "Detection"

EPILOG = (
    "Examples:\n\n"
    "  vizcli detect photo.jpg --weights DEFAULT --op align,box-head --plot detections.png\n\n"
    "  vizcli detect images/ --weights DEFAULT --op box-head --max-detections 36 -o feats.parquet\n\n"
    "  vizcli detect photo.jpg --weights DEFAULT --classes person,dog --format json\n\n"
    "  vizcli detect images/ --annotations instances.json --weights DEFAULT --op box-head -o feats.parquet   # given boxes\n\n"
    "  vizcli export feats.parquet --layout butd-tsv -o feats.tsv   # the bottom-up-attention TSV\n\n"
    "Without boxes the detector finds them (the bottom-up-attention recipe: 10 to 36 an image); with --boxes, "
    "--boxes-file or --annotations it pools the given boxes instead. Either way the boxes go through the detector's "
    "own transform, MultiScaleRoIAlign (align: 256×7×7) and TwoMLPHead (box-head: 1024 values). To pool from a "
    "classifier's stages (RoIAlign, RoIPool, worked explanations): vizcli roi."
)


@dataset_options
def detect(
    images: ImagesArgument = None,
    images_root: ImagesRootOption = None,
    glob: GlobOption = None,
    max_pixels: MaxPixels = None,
    detector: Annotated[str, typer.Option("--detector", rich_help_panel=DETECTION, help=(
        "A torchvision detector: fasterrcnn_*/maskrcnn_*/keypointrcnn_* (features), retinanet_*/fcos_* (boxes only)."))
    ] = "fasterrcnn_resnet50_fpn_v2",
    min_score: Annotated[float, typer.Option("--min-score", rich_help_panel=DETECTION,
                                             help="Keep detections scoring at least this.")] = 0.2,
    max_detections: Annotated[int, typer.Option("--max-detections", rich_help_panel=DETECTION,
                                                help="At most this many boxes an image (36 is usual).")] = 36,
    min_detections: Annotated[int | None, typer.Option("--min-detections", rich_help_panel=DETECTION, help=(
        "At least this many boxes an image, the top ones even under --min-score (default 10, or --max-detections if "
        "fewer)."))] = None,
    classes: Annotated[str | None, typer.Option("--classes", rich_help_panel=DETECTION,
                                                help="Only these classes, e.g. person,dog (COCO's names, or --class-names').")] = None,
    class_names: Annotated[str | None, typer.Option("--class-names", rich_help_panel=DETECTION, help=(
        "A text file naming the detector's classes, one a line in index order (a fine-tuned detector's own)."))] = None,
    boxes: BoxesOption = None,
    boxes_file: BoxesFileOption = None,
    annotations: AnnotationsOption = None,
    annotations_format: AnnotationsFormatOption = None,
    max_boxes: MaxBoxesOption = 1_000_000,
    strict: StrictOption = False,
    op: Annotated[str, typer.Option("--op", rich_help_panel=POOLING, help=(
        "align (the detector's MultiScaleRoIAlign, 256×7×7), box-head (its TwoMLPHead, 1024 values), none (boxes "
        "only), or a list: align,box-head."))] = "align",
    weights: Weights = None,
    seed: Seed = 0,
    device: Device = "auto",
    batch_size: BatchSizeOption = 8,
    decode_threads: DecodeThreadsOption = 2,
    threads: Threads = None,
    output: DetectionsOutputOption = None,
    output_format: OutputFormatOption = None,
    stdout_format: FormatOption = None,
    plot: DetectionsPlotOption = None,
    quiet: Quiet = False,
    dataset: DatasetFlags = DatasetFlags(),
) -> int | None:
    """Detect objects with a torchvision detector (or take given boxes) and pool each box with the detector's own
    RoIAlign and box head."""
    from vizcli.roi.runs import RunOptions, Shown, detect_images, refuse_dataset_flags, write_rows

    inputs = image_inputs(images, boxes, boxes_file, annotations, annotations_format, images_root, glob, max_boxes)
    settings = {"detector": detector, "weights": weights, "detect": not inputs.has_boxes, "op": op, "min_score": min_score,
                "max_detections": max_detections, "min_detections": min_detections, "classes": classes,
                "class_names": class_names, "device": device, "seed": seed, "max_pixels": max_pixels, "strict": strict}
    run = RunOptions(batch_size, decode_threads, threads, quiet)
    shown = Shown(output, output_format and output_format.value, stdout_format and stdout_format.value, plot)
    if inputs.is_dataset(output):
        return write_rows(settings, inputs, dataset, output, run, shown)
    refuse_dataset_flags(dataset.given())
    detect_images(settings, inputs, shown, run)
    return None
