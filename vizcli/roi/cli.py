"""``vizcli roi``: parse the flags and boxes, pool, then print, save and plot."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from vizcli.common.options import (
    AnnotationsFormat,
    ComputeDtype,
    DeviceOption,
    Engine,
    EngineOption,
    FeatureFormat,
    MaxPixelsOption,
    OnError,
    QuietOption,
    RayAddressOption,
    RoiFormat,
    RoiLayer,
    RoiOp,
    SeedOption,
    ShardFormat,
    ThreadsOption,
    WeightsOption,
)

EPILOG = (
    "Examples:\n\n"
    "  vizcli roi examples/chelsea.png --boxes 140,80,210,150 --boxes 290,100,350,165 --op both\n\n"
    "  vizcli roi examples/chelsea.png --boxes 140,80,210,150 --explain 1:3,3 --op both\n\n"
    "  vizcli roi examples/chelsea.png --boxes-file boxes.json --plot roi.png -o feats.npz\n\n"
    "  vizcli roi --explain-notes\n\n"
    "Datasets (one row per box, resumable, shardable):\n\n"
    "  vizcli roi images/ --annotations instances.json -o feats.parquet           # COCO\n\n"
    "  vizcli roi VOC/JPEGImages --annotations VOC/Annotations -o feats/ --layer fpn --model resnet50\n\n"
    "  vizcli roi images/ --annotations labels/ -o feats.parquet --shard 0/4 --resume   # YOLO, 1 of 4 machines\n\n"
    "  vizcli roi merge part0.parquet part1.parquet -o all.parquet\n\n"
    "Boxes are x1,y1,x2,y2 in the original image's pixels. --aligned (the default, as in "
    "Detectron2's ROIAlignV2) shifts box coordinates by half a cell so that a continuous "
    "coordinate lines up with pixel centres; --no-aligned is the original Mask R-CNN/torchvision "
    "default, which samples half a cell off and stretches tiny boxes to at least one cell. "
    "RoIPool ignores it."
)

SAVE_FORMATS = tuple(member.value for member in FeatureFormat)


def roi(
    images: Annotated[
        list[str] | None,
        typer.Argument(help="Image files ('-' for stdin); or one DATASET: an image folder or a text file of image paths; "
                       "or 'merge' followed by finished outputs to join."),
    ] = None,
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
        RoiLayer,
        typer.Option("--layer", help="Stage to pool from: strides 4, 8, 16 (the notes' 1/16), 32; fpn: the pyramid level "
                     "MultiScaleRoIAlign assigns each box (dataset runs)."),
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
    annotations: Annotated[
        str | None,
        typer.Option("--annotations", help="COCO JSON, Pascal VOC XML (file or folder), YOLO labels folder, or a boxes CSV/JSON."),
    ] = None,
    annotations_format: Annotated[
        AnnotationsFormat | None, typer.Option("--annotations-format", help="Force the format (default: from the content).")
    ] = None,
    images_root: Annotated[
        str | None, typer.Option("--images-root", help="Folder that relative image names resolve against.")
    ] = None,
    glob: Annotated[str | None, typer.Option("--glob", help="Which files of a DATASET folder are images (e.g. '**/*.jpg').")] = None,
    model: Annotated[
        str, typer.Option("--model", help="Dataset runs: any torchvision ResNet/ResNeXt/Wide-ResNet, or fasterrcnn_resnet50_fpn etc. with --layer fpn.")
    ] = "resnet18",
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted dataset run: images already on disk are skipped.")] = False,
    shard: Annotated[str | None, typer.Option("--shard", help="K/N: only the images whose id hashes to K of N (0 <= K < N).")] = None,
    shard_format: Annotated[ShardFormat, typer.Option("--shard-format", help="Shards of -o DIR/.")] = ShardFormat.safetensors,
    shard_size: Annotated[float, typer.Option("--shard-size", help="MB of features per shard / Parquet row group (memory holds about one).")] = 16.0,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images of one padded size run through the backbone together.")] = 8,
    workers: Annotated[int | None, typer.Option("--workers", help="Threads decoding images ahead of the model (default 2); with --engine ray: actors, one model each (default: the CPUs here).")] = None,
    engine: EngineOption = Engine.local,
    ray_address: RayAddressOption = None,
    on_error: Annotated[
        OnError, typer.Option("--on-error", help="A bad image or box: skip it (recorded in problems.jsonl) or stop.")
    ] = OnError.skip,
    dtype: Annotated[ComputeDtype, typer.Option("--dtype", help="The backbone's compute dtype (features are stored as float32).")] = ComputeDtype.float32,
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
    from vizcli.roi.dataset import is_dataset_input
    from vizcli.roi.explain import parse_explain
    from vizcli.roi.pooling import OPS, PoolSpec, check_channel, parse_output_size

    if images and images[0] == "merge" and len(images) > 1:
        _merge(images[1:], output, shard_format.value, quiet)
        return
    from vizcli.common.tables import is_table_output

    if is_dataset_input(list(images or []), annotations) or (output and is_table_output(output)):
        _run_dataset(locals())
        return
    if engine is not Engine.local or ray_address is not None:
        raise BadInput("--engine ray runs datasets: write rows with -o out.parquet or -o DIR/")
    if not images:
        raise BadInput("no image given; give one: vizcli roi IMAGE --boxes x1,y1,x2,y2, or a DATASET folder "
                       "(or use --explain-notes)")
    if layer is RoiLayer.fpn or model != "resnet18":
        raise BadInput("--layer fpn and --model are for dataset runs; write rows with -o out.parquet or -o DIR/")
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


def _run_dataset(options: dict[str, Any]) -> None:
    """``vizcli roi DATASET ... -o out.parquet|DIR/``: every box of a dataset, streamed to rows."""
    import contextlib

    from vizcli.common.errors import BadInput
    from vizcli.common.files import check_not_an_input
    from vizcli.common.sharding import Shard
    from vizcli.roi.backbones import check_backbone
    from vizcli.roi.dataset import is_dataset_input, load_dataset

    output, images = options["output"], list(options["images"] or [])
    from vizcli.common.tables import is_table_output

    if not output or not is_table_output(output):
        raise BadInput("a dataset run writes rows: give -o out.parquet or -o DIR/ (a folder of shards)")
    for name in ("explain", "plot"):
        if options[name]:
            raise BadInput(f"--{name} explains single images; drop it for a dataset run")
    for name, low, high in (("batch_size", 1, 1024), ("workers", 1, 4096 if options["engine"] is Engine.ray else 64)):
        if options[name] is not None and not low <= options[name] <= high:
            raise BadInput(f"use {low}..{high}", parameter=name, value=options[name])
    from vizcli.common.ray_engine import check_engine, check_workers

    check_engine(options["engine"].value, options["ray_address"])
    if not 0.01 <= options["shard_size"] <= 65536:
        raise BadInput("use 0.01..65536 (MB)", parameter="shard_size", value=options["shard_size"])
    layer = options["layer"].value
    check_backbone(options["model"], layer)
    shard = Shard.parse(options["shard"])
    check_not_an_input(output, [*images, options["annotations"], options["weights"], options["boxes_file"]])
    from vizcli.common.tables import check_output

    check_output(output)
    annotations = options["annotations"] or options["boxes_file"]
    if is_dataset_input(images, annotations) and len(images) <= 1:
        dataset_images, problems = load_dataset(
            images[0] if images else None, annotations,
            options["annotations_format"].value if options["annotations_format"] else None,
            options["images_root"], options["glob"], shard, options["max_boxes"],
        )
    else:
        dataset_images, problems = _listed_images(images, options["boxes"], annotations, shard, options["max_boxes"])
    if options["boxes"] and annotations:
        raise BadInput("give boxes with --boxes or --annotations, not both")
    from vizcli.common.console import info, progress_factory, warn
    from vizcli.common.runtime import keep_heap_flat, set_threads
    from vizcli.roi.dataset_run import run_dataset
    from vizcli.roi.extract import RoIExtractor

    keep_heap_flat()  # a dataset run is long: keep peak memory flat (see its docstring)
    set_threads(options["threads"], warn)
    settings = {
        "model": options["model"], "weights": options["weights"], "layer": layer, "op": options["op"].value,
        "output_size": options["output_size"], "sampling_ratio": options["sampling_ratio"], "aligned": options["aligned"],
        "max_size": options["max_size"], "dtype": options["dtype"].value, "device": options["device"], "seed": options["seed"],
        "max_pixels": options["max_pixels"],
    }
    extractor = RoIExtractor(**settings)  # with --engine ray: for the schema and metadata; the actors build their own
    for note in extractor.backbone.notes:
        warn(note)
    from vizcli.common.runtime import cpu_has_bfloat16_units

    if extractor.dtype == "bfloat16" and extractor.device.type == "cpu" and cpu_has_bfloat16_units() is False:
        warn("this CPU has no bfloat16 units (AVX512-BF16/AMX): bfloat16 convolutions are emulated and run many "
             "times slower than float32 here (16× in benchmarks/RESULTS.md)")
    start = None if options["quiet"] else progress_factory("pooling images", len(dataset_images), threshold=2)
    progress = start(len(dataset_images)) if start else None
    session: Any = contextlib.nullcontext()
    engine = None
    if options["engine"].value == "ray":
        from vizcli.common.ray_engine import ray_session
        from vizcli.roi.dataset_run import ray_engine

        actors, threads = check_workers(options["workers"]), options["threads"] or 1
        engine = ray_engine(settings, extractor.ops, options["batch_size"], actors, threads)
        session, progress = ray_session(options["ray_address"], actors * threads, options["quiet"]), None  # Ray shows its own progress
    with session:
        summary = run_dataset(
            dataset_images, problems, extractor, output, shard, options["resume"], options["shard_format"].value,
            options["shard_size"], options["batch_size"], options["workers"] or 2, options["on_error"].value,
            progress=progress, warn=warn, engine=engine,
        )
    if not options["quiet"]:
        skipped = f", {summary.skipped:,} already there" if summary.skipped else ""
        problems_note = f"; {summary.problems:,} problems in {summary.problems_path}" if summary.problems else ""
        info(f"wrote {summary.rows:,} rows from {summary.images:,} images to {summary.output}{skipped}{problems_note}")


def _listed_images(images: list[str], boxes: list[str] | None, annotations: str | None, shard: Any, max_boxes: int):
    """Image files named on the command line, as a dataset (ids = the paths given)."""
    from vizcli.common.errors import BadInput
    from vizcli.roi.annotations import AnnotatedImage, Annotation, Annotations, attach, read_annotations
    from vizcli.roi.boxes import parse_box_text

    if not images:
        raise BadInput("give the images: files, a folder, or a text file of paths")
    listed = [AnnotatedImage(image_id=path, path=path) for path in images if shard.holds(path)]
    if boxes:
        parsed = [parse_box_text(text, number) for number, text in enumerate(boxes, start=1)]
        every = [Annotation(box.coords, str(box.number), box.label) for box in parsed]
        return attach(Annotations("boxes", None, every_image=every), listed), []
    if not annotations:
        raise BadInput("no boxes given; use --annotations FILE, --boxes-file FILE or --boxes x1,y1,x2,y2")
    read = read_annotations(annotations, None, max_boxes)
    if read.images is not None:
        raise BadInput(f"{read.format} annotations name their images; give their folder instead of image files")
    return attach(read, listed), read.problems


def _merge(inputs: list[str], output: str | None, shard_format: str, quiet: bool) -> None:
    from vizcli.common.console import info
    from vizcli.common.tables import merge_command

    path, rows = merge_command(inputs, output, "roi", ("image", "annotation_id"), shard_format)
    if not quiet:
        info(f"merged {len(inputs)} outputs: {rows:,} rows to {path}")
