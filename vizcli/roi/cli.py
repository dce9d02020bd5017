"""``vizcli roi``: parse the flags and boxes, pool, then print, save and plot."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from vizcli.common.options import (
    DeviceOption,
    FeatureFormat,
    MaxPixelsOption,
    QuietOption,
    RoiFormat,
    RoiLayer,
    RoiOp,
    SeedOption,
    ThreadsOption,
    WeightsOption,
)

EPILOG = (
    "Examples:\n\n"
    "  vizcli roi examples/chelsea.png --boxes 140,80,210,150 --boxes 290,100,350,165 --op both\n\n"
    "  vizcli roi examples/chelsea.png --boxes 140,80,210,150 --explain 1:3,3 --op both\n\n"
    "  vizcli roi examples/chelsea.png --boxes-file boxes.json --plot roi.png -o feats.npz\n\n"
    "  vizcli roi --explain-notes\n\n"
    "Boxes are x1,y1,x2,y2 in the original image's pixels. --aligned (the default, as in "
    "Detectron2's ROIAlignV2) shifts box coordinates by half a cell so that a continuous "
    "coordinate lines up with pixel centres; --no-aligned is the original Mask R-CNN/torchvision "
    "default, which samples half a cell off and stretches tiny boxes to at least one cell. "
    "RoIPool ignores it."
)

SAVE_FORMATS = tuple(member.value for member in FeatureFormat)


def roi(
    images: Annotated[list[str] | None, typer.Argument(help="Image files ('-' for stdin).")] = None,
    boxes: Annotated[
        list[str] | None, typer.Option("--boxes", "-b", help="A box x1,y1,x2,y2 in image pixels; repeatable.")
    ] = None,
    boxes_file: Annotated[
        str | None,
        typer.Option(
            "--boxes-file",
            help="JSON list of [x1,y1,x2,y2] or {box, label}, an object keyed by image name, "
            "or CSV x1,y1,x2,y2[,label][,image]; '-' = stdin.",
        ),
    ] = None,
    layer: Annotated[
        RoiLayer, typer.Option("--layer", help="Stage to pool from: strides 4, 8, 16 (the notes' 1/16), 32.")
    ] = RoiLayer.layer3,
    op: Annotated[RoiOp, typer.Option("--op", help="RoIAlign, RoIPool or both.")] = RoiOp.align,
    output_size: Annotated[str, typer.Option("--output-size", help="N or HxW bins.")] = "7",
    sampling_ratio: Annotated[
        int, typer.Option("--sampling-ratio", help="Samples per bin side (the notes' 2×2); 0 = adaptive.")
    ] = 2,
    aligned: Annotated[
        bool, typer.Option("--aligned/--no-aligned", help="Half-cell offset for RoIAlign (see below).")
    ] = True,
    max_size: Annotated[
        int | None, typer.Option("--max-size", help="Downscale so the longest side is at most N (boxes follow).")
    ] = None,
    explain: Annotated[
        str | None, typer.Option("--explain", help="BOX or BOX:ROW,COL: print the worked computation of one value.")
    ] = None,
    channel: Annotated[int, typer.Option("--channel", help="Channel for --explain.")] = 0,
    explain_notes: Annotated[
        bool, typer.Option("--explain-notes", help="Reproduce the notes' two worked examples and exit.")
    ] = False,
    plot: Annotated[
        str | None,
        typer.Option("--plot", help="Draw boxes, grid, rounded boxes, bins, samples and pooled maps to a PNG."),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", help="Save [K, C, h, w] features: .pt, .npy (+ .json), .npz or .safetensors."),
    ] = None,
    save_format_option: Annotated[
        FeatureFormat | None,
        typer.Option("--save-format", help="Format of -o (default: its extension); needed for /dev/stdout or a pipe."),
    ] = None,
    output_format: Annotated[
        RoiFormat | None,
        typer.Option(
            "--format", "-f", case_sensitive=False, help="What stdout shows (default table; nothing with --quiet -o FILE)."
        ),
    ] = None,
    max_boxes: Annotated[
        int, typer.Option("--max-boxes", help="Refuse more boxes than this per image (checked before reading them all).")
    ] = 1_000_000,
    strict: Annotated[
        bool, typer.Option("--strict", help="Boxes partly outside the image are an error instead of being clipped.")
    ] = False,
    weights: WeightsOption = None,
    seed: SeedOption = 0,
    quiet: QuietOption = False,
    device: DeviceOption = "auto",
    threads: ThreadsOption = None,
    max_pixels: MaxPixelsOption = None,
) -> None:
    """Crop boxes from a ResNet18 feature map with RoIAlign / RoIPool and explain the values."""
    from vizcli.common.errors import BadInput
    from vizcli.common.files import check_not_an_input, check_writable, choose_format, format_for_path

    if explain_notes:
        from vizcli.roi.explain import notes_examples
        from vizcli.roi.render import notes_lines

        print("\n".join(notes_lines(notes_examples())))
        return
    from vizcli.roi.boxes import check_max_boxes
    from vizcli.roi.explain import parse_explain
    from vizcli.roi.pooling import OPS, PoolSpec, check_channel, parse_output_size

    if not images:
        raise BadInput("no image given; give one: vizcli roi IMAGE --boxes x1,y1,x2,y2 (or use --explain-notes)")
    ops = OPS if op is RoiOp.both else (op.value,)
    spec = PoolSpec.for_layer(layer.value, parse_output_size(output_size), sampling_ratio, aligned)
    check_max_boxes(max_boxes)
    if explain:
        check_channel(layer.value, channel)
    save_format = choose_format(output, save_format_option.value if save_format_option else None,
                                {name: name for name in SAVE_FORMATS} | {"pth": "pt"}, "") if output else None
    if output and not save_format:
        format_for_path(output, SAVE_FORMATS)  # no --save-format and an extension that names none: say so
    if save_format == "npy" and len(ops) > 1:
        raise BadInput(f"-o {output}: .npy holds one array and --op both gives two; use .npz, .safetensors or .pt")
    check_writable(output, side_suffixes=(".json",) if save_format == "npy" else ())
    inputs = [*images, boxes_file, weights]
    check_not_an_input(output, inputs)
    if plot:
        format_for_path(plot, ("png",), parameter="plot")
        check_writable(plot, parameter="plot")
        check_not_an_input(plot, [*inputs, output], parameter="plot")
    boxes_by_image = _boxes_by_image(list(images), boxes, boxes_file, max_boxes)
    total = sum(len(boxes_by_image.get(image, [])) for image in images)
    explain_target = parse_explain(explain, total, spec.output_size) if explain else None
    from vizcli.common.console import info, progress_factory, warn
    from vizcli.common.runtime import set_threads
    from vizcli.roi.pooling import run_roi
    from vizcli.roi.render import print_report, save_features

    set_threads(threads, warn)
    report = run_roi(
        list(images), boxes_by_image, layer.value, ops, spec, max_size, weights, seed, device, strict,
        max_pixels, warn=warn, progress_factory=None if quiet else progress_factory("pooling boxes", total),
    )
    shown = output_format.value if output_format else (None if quiet and output else "table")
    print_report(report, shown, explain_target, channel)
    say = (lambda message: None) if quiet else info
    if output and save_format:
        say(save_features(report, output, save_format))
    if plot:
        from vizcli.roi.plot import plot_roi

        plot_roi(report, plot)
        say(f"saved picture to {plot}")


def _boxes_by_image(images: list[str], boxes: list[str] | None, boxes_file: str | None, max_boxes: int) -> dict[str, Any]:
    from vizcli.common.errors import BadInput
    from vizcli.roi.boxes import load_boxes_file, parse_box_text

    if boxes and boxes_file:
        raise BadInput("give boxes with --boxes or --boxes-file, not both")
    if boxes:
        if len(boxes) > max_boxes:
            raise BadInput(f"--boxes given {len(boxes):,} times, more than --max-boxes {max_boxes:,}")
        parsed = [parse_box_text(text, number) for number, text in enumerate(boxes, start=1)]
        return {image: parsed for image in images}
    if boxes_file:
        return load_boxes_file(boxes_file, images, max_boxes)
    raise BadInput("no boxes given; use --boxes x1,y1,x2,y2 (repeatable) or --boxes-file FILE")
