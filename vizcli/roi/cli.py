"""``vizcli roi``: pool given boxes from a backbone's feature map (RoIAlign / RoIPool), for single images or datasets.

The command parses flags, makes one call into ``vizcli.roi.runs`` and returns; the options shared
with ``vizcli detect`` (inputs, boxes, output, model run) are declared here once, in their help panels.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

import typer

from vizcli.common.options import (
    AnnotationsFormat,
    ComputeDtype,
    DeviceOption,
    FeatureFormat,
    MaxPixelsOption,
    QuietOption,
    RoiFormat,
    RoiLayer,
    SeedOption,
    ThreadsOption,
    WeightsOption,
)
from vizcli.datasets.options import DatasetFlags, dataset_options

INPUT, BOXES, POOLING, EXPLAIN, OUTPUT, MODEL = "Input", "Boxes", "Pooling", "Explain", "Output", "Model"
NOTES = "the study notes on ResNet18, RoI pooling, BERT's pooler and universal approximation that vizcli checks"

EPILOG = (
    "Examples:\n\n"
    "  vizcli roi examples/chelsea.png --boxes 140,80,210,150 --boxes 290,100,350,165 --op both\n\n"
    "  vizcli roi examples/chelsea.png --boxes 140,80,210,150 --explain 1:3,3 --op both\n\n"
    "  vizcli roi examples/chelsea.png --boxes-file boxes.json --plot roi.png -o feats.npz\n\n"
    "  vizcli roi images/ --annotations instances.json -o feats.parquet           # a COCO dataset, one row a box\n\n"
    "  vizcli roi VOC/JPEGImages --annotations VOC/Annotations -o feats/ --layer fpn --model resnet50\n\n"
    "  vizcli roi images/ --annotations labels/ -o feats.parquet --shard 0/4 --resume   # YOLO, 1 of 4 machines\n\n"
    "  vizcli roi --explain-notes\n\n"
    "Finished outputs: vizcli info|verify|merge|export OUTPUT. Boxes found by a detector: vizcli detect.\n\n"
    "Boxes are x1,y1,x2,y2 in the original image's pixels. --aligned (the default, as in Detectron2's ROIAlignV2) "
    "shifts box coordinates by half a cell so that a continuous coordinate lines up with pixel centres; --no-aligned "
    "is the original Mask R-CNN/torchvision default, which samples half a cell off and stretches tiny boxes to at "
    f"least one cell. RoIPool ignores it. The notes: {NOTES}."
)

# The old spellings a user may still type: one Error line naming the new one.
OLD_VERBS = {"verify": "vizcli verify OUTPUT", "merge": "vizcli merge OUTPUTS... -o OUTPUT", "export": "vizcli export OUTPUT -o FILE"}
OLD_FLAGS = {"detect": "--detect is now its own command: vizcli detect IMAGE... (see vizcli detect --help)",
             "save_format": "--save-format is now --output-format (the format of the file -o writes)",
             "layout": "--layout belongs to vizcli export OUTPUT --layout ... -o FILE",
             "sample": "--sample belongs to vizcli verify OUTPUT --sample N",
             "tolerance": "--tolerance belongs to vizcli verify OUTPUT --tolerance X"}


def in_panel(alias: Any, panel: str) -> Any:
    """A shared ``Annotated`` option (declared once in ``vizcli.common.options``) shown in ``panel`` of the help."""
    info = copy.copy(alias.__metadata__[0])
    info.rich_help_panel = panel
    return Annotated[alias.__origin__, info]


ImagesArgument = Annotated[list[str] | None, typer.Argument(metavar="IMAGE", 
    help="Image files ('-' for stdin), or one DATASET: an image folder or a text file of image paths (with -o out.parquet).",
    show_default=False)]
BoxesOption = Annotated[list[str] | None, typer.Option("--boxes", "-b", rich_help_panel=BOXES,
                                                       help="A box x1,y1,x2,y2 in image pixels, on every image; repeatable.")]
BoxesFileOption = Annotated[str | None, typer.Option("--boxes-file", rich_help_panel=BOXES, help=(
    "JSON list of [x1,y1,x2,y2] or {box, label}, an object keyed by image name, or CSV x1,y1,x2,y2[,label][,image]; "
    "'-' = stdin."))]
AnnotationsOption = Annotated[str | None, typer.Option("--annotations", rich_help_panel=BOXES, help=(
    "A dataset's boxes: COCO JSON, Pascal VOC XML (file or folder), YOLO labels folder, or a boxes CSV/JSON."))]
AnnotationsFormatOption = Annotated[AnnotationsFormat | None, typer.Option(
    "--annotations-format", rich_help_panel=BOXES, help="The format of --annotations (default: read from the content).")]
MaxBoxesOption = Annotated[int, typer.Option("--max-boxes", rich_help_panel=BOXES,
                                             help="Refuse more boxes than this an image (checked before reading them all).")]
StrictOption = Annotated[bool, typer.Option("--strict", rich_help_panel=BOXES,
                                            help="A box partly outside its image is refused instead of clipped.")]
ImagesRootOption = Annotated[str | None, typer.Option("--images-root", rich_help_panel=INPUT,
                                                      help="The folder a dataset's relative image names resolve against.")]
GlobOption = Annotated[str | None, typer.Option("--glob", rich_help_panel=INPUT,
                                                help="Which files of a DATASET folder are images (e.g. '**/*.jpg').")]
OutputOption = Annotated[str | None, typer.Option("--output", "-o", rich_help_panel=OUTPUT, help=(
    "Write the features: .pt, .npy (+ .json), .npz or .safetensors for single images; out.parquet or DIR/ (shards) "
    "for a dataset, one row a box."))]
DetectionsOutputOption = Annotated[str | None, typer.Option("--output", "-o", rich_help_panel=OUTPUT, help=(
    "Write boxes, scores, classes and features: .npz, .safetensors or .pt for single images; out.parquet or DIR/ "
    "(shards) for a dataset, one row a box."))]
OutputFormatOption = Annotated[FeatureFormat | None, typer.Option("--output-format", rich_help_panel=OUTPUT, help=(
    "The format of the file -o writes (default: from its suffix); needed for /dev/stdout or a pipe."))]
FormatOption = Annotated[RoiFormat | None, typer.Option("--format", "-f", case_sensitive=False, rich_help_panel=OUTPUT,
                                                        help="What stdout shows (default table; nothing with --quiet -o FILE).")]
PlotOption = Annotated[str | None, typer.Option("--plot", rich_help_panel=OUTPUT, help=(
    "Draw the first image's boxes on the feature grid, RoIPool's rounded boxes, RoIAlign's bins and samples, and the "
    "pooled maps, to this PNG."))]
DetectionsPlotOption = Annotated[str | None, typer.Option("--plot", rich_help_panel=OUTPUT, help=(
    "Draw the first image with each box, its class and score, to this PNG."))]
BatchSizeOption = Annotated[int, typer.Option("--batch-size", rich_help_panel=MODEL,
                                              help="Images per forward pass (images of one padded size run together).")]
DecodeThreadsOption = Annotated[int, typer.Option("--decode-threads", rich_help_panel=MODEL,
                                                  help="Threads decoding images ahead of the model.")]
if TYPE_CHECKING:  # mypy sees the shared aliases; typer sees each in its help panel
    MaxPixels: TypeAlias = MaxPixelsOption
    Weights: TypeAlias = WeightsOption
    Seed: TypeAlias = SeedOption
    Device: TypeAlias = DeviceOption
    Threads: TypeAlias = ThreadsOption
    Quiet: TypeAlias = QuietOption
else:
    MaxPixels, Weights, Seed = in_panel(MaxPixelsOption, INPUT), in_panel(WeightsOption, MODEL), in_panel(SeedOption, MODEL)
    Device, Threads, Quiet = in_panel(DeviceOption, MODEL), in_panel(ThreadsOption, MODEL), in_panel(QuietOption, OUTPUT)


@dataset_options
def roi(
    images: ImagesArgument = None,
    images_root: ImagesRootOption = None,
    glob: GlobOption = None,
    max_size: Annotated[int | None, typer.Option("--max-size", rich_help_panel=INPUT,
                                                 help="Downscale so the longest side is at most N pixels (boxes follow).")] = None,
    max_pixels: MaxPixels = None,
    boxes: BoxesOption = None,
    boxes_file: BoxesFileOption = None,
    annotations: AnnotationsOption = None,
    annotations_format: AnnotationsFormatOption = None,
    max_boxes: MaxBoxesOption = 1_000_000,
    strict: StrictOption = False,
    op: Annotated[str, typer.Option("--op", rich_help_panel=POOLING,
                                    help="align (RoIAlign), pool (RoIPool), or both (also written align,pool).")] = "align",
    output_size: Annotated[str, typer.Option("--output-size", rich_help_panel=POOLING, help="N or HxW bins.")] = "7",
    sampling_ratio: Annotated[int, typer.Option("--sampling-ratio", rich_help_panel=POOLING, help=(
        "RoIAlign's samples per bin side (2 gives the 2×2 of the study notes on RoI pooling); 0 = adaptive."))] = 2,
    aligned: Annotated[bool, typer.Option("--aligned/--no-aligned", rich_help_panel=POOLING,
                                          help="RoIAlign's half-cell offset (see below).")] = True,
    model: Annotated[str, typer.Option("--model", rich_help_panel=MODEL, help=(
        "Any torchvision ResNet/ResNeXt/Wide-ResNet, or fasterrcnn_resnet50_fpn etc. with --layer fpn."))] = "resnet18",
    layer: Annotated[RoiLayer, typer.Option("--layer", rich_help_panel=MODEL, help=(
        "The stage to pool from: strides 4, 8, 16 (the 1/16 of the study notes on RoI pooling), 32; fpn: the pyramid "
        "level MultiScaleRoIAlign assigns each box."))] = RoiLayer.layer3,
    weights: Weights = None,
    seed: Seed = 0,
    dtype: Annotated[ComputeDtype, typer.Option("--dtype", rich_help_panel=MODEL, help=(
        "The backbone's compute dtype (features are stored as float32)."))] = ComputeDtype.float32,
    device: Device = "auto",
    batch_size: BatchSizeOption = 8,
    decode_threads: DecodeThreadsOption = 2,
    threads: Threads = None,
    explain: Annotated[str | None, typer.Option("--explain", rich_help_panel=EXPLAIN, help=(
        "BOX or BOX:ROW,COL: print the worked computation of one pooled value, by hand beside torchvision's."))] = None,
    channel: Annotated[int, typer.Option("--channel", rich_help_panel=EXPLAIN, help="The channel --explain shows.")] = 0,
    explain_notes: Annotated[bool, typer.Option("--explain-notes", rich_help_panel=EXPLAIN, help=(
        f"Reproduce the two worked examples of RoI pooling in {NOTES}, and exit."))] = False,
    output: OutputOption = None,
    output_format: OutputFormatOption = None,
    stdout_format: FormatOption = None,
    plot: PlotOption = None,
    quiet: Quiet = False,
    detect: Annotated[bool, typer.Option("--detect", hidden=True)] = False,
    save_format: Annotated[str | None, typer.Option("--save-format", hidden=True)] = None,
    layout: Annotated[str | None, typer.Option("--layout", hidden=True)] = None,
    sample: Annotated[str | None, typer.Option("--sample", hidden=True)] = None,
    tolerance: Annotated[str | None, typer.Option("--tolerance", hidden=True)] = None,
    dataset: DatasetFlags = DatasetFlags(),
) -> int | None:
    """Pool given boxes from a CNN's feature map (ResNet18 by default) with RoIAlign / RoIPool, and explain the values."""
    from vizcli.roi.runs import RunOptions, Shown, pool_images, refuse_dataset_flags, write_rows

    refuse_old_spellings(images, detect=detect, save_format=save_format, layout=layout, sample=sample, tolerance=tolerance)
    if explain_notes:
        from vizcli.roi.render import print_notes

        print_notes()
        return None
    inputs = image_inputs(images, boxes, boxes_file, annotations, annotations_format, images_root, glob, max_boxes)
    settings = {"model": model, "weights": weights, "layer": layer.value, "op": op, "output_size": output_size,
                "sampling_ratio": sampling_ratio, "aligned": aligned, "max_size": max_size, "dtype": dtype.value,
                "device": device, "seed": seed, "max_pixels": max_pixels, "strict": strict}
    run = RunOptions(batch_size, decode_threads, threads, quiet)
    shown = Shown(output, output_format and output_format.value, stdout_format and stdout_format.value, plot, explain, channel)
    if inputs.is_dataset(output):
        return write_rows(settings, inputs, dataset, output, run, shown)
    refuse_dataset_flags(dataset.given())
    pool_images(settings, inputs, shown, run)
    return None


def image_inputs(images: list[str] | None, boxes: list[str] | None, boxes_file: str | None, annotations: str | None,
                 annotations_format: AnnotationsFormat | None, images_root: str | None, glob: str | None,
                 max_boxes: int) -> Any:
    """The ``ImageInputs`` of a ``roi`` or ``detect`` command line."""
    from vizcli.roi.inputs import ImageInputs

    return ImageInputs(tuple(images or ()), tuple(boxes or ()), boxes_file, annotations,
                       annotations_format.value if annotations_format else None, images_root, glob, max_boxes)


def refuse_old_spellings(images: list[str] | None, **given: Any) -> None:
    """One ``Error:`` line for a spelling of an earlier vizcli: ``roi verify OUTPUT`` (the first argument
    is no file), ``--detect``, ``--save-format`` and the flags of the old output verbs."""
    from vizcli.common.errors import BadInput

    first = images[0] if images else ""
    if first in OLD_VERBS and not Path(first).exists():
        raise BadInput(f"'vizcli roi {first}' is now '{OLD_VERBS[first]}' (a command of its own; see its --help)")
    for name, value in given.items():
        if value:
            raise BadInput(OLD_FLAGS[name])
