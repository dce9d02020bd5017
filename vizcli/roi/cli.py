"""``vizcli roi``: parse the flags and boxes, pool, then print, save and plot."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from vizcli.common.options import (
    AnnotationsFormat,
    ComputeDtype,
    DeviceOption,
    Engine,
    FeatureFormat,
    MaxPixelsOption,
    OnError,
    QuietOption,
    RoiFormat,
    RoiLayer,
    SeedOption,
    ShardFormat,
    ThreadsOption,
    WeightsOption,
)
from vizcli.datasets.options import (
    DEFAULT_SAMPLE,
    EngineOption,
    OnErrorOption,
    RayAddressOption,
    RayTimeoutOption,
    ResumeOption,
    SampleOption,
    ShardFormatOption,
    ShardOption,
    ShardSizeOption,
    ToleranceOption,
)

EPILOG = (
    "Examples:\n\n"
    "  vizcli roi examples/chelsea.png --boxes 140,80,210,150 --boxes 290,100,350,165 --op both\n\n"
    "  vizcli roi examples/chelsea.png --boxes 140,80,210,150 --explain 1:3,3 --op both\n\n"
    "  vizcli roi examples/chelsea.png --boxes-file boxes.json --plot roi.png -o feats.npz\n\n"
    "  vizcli roi examples/chelsea.png --boxes 140,80,210,150 --model resnet50 --layer fpn --explain 1\n\n"
    "  vizcli roi --explain-notes\n\n"
    "Datasets (one row per box, resumable, shardable):\n\n"
    "  vizcli roi images/ --annotations instances.json -o feats.parquet           # COCO\n\n"
    "  vizcli roi VOC/JPEGImages --annotations VOC/Annotations -o feats/ --layer fpn --model resnet50\n\n"
    "  vizcli roi images/ --annotations labels/ -o feats.parquet --shard 0/4 --resume   # YOLO, 1 of 4 machines\n\n"
    "  vizcli roi merge part0.parquet part1.parquet -o all.parquet\n\n"
    "  vizcli roi verify feats.parquet --sample 16      # recompute 16 images' rows, exit 1 unless equal\n\n"
    "Detect, then pool (the bottom-up-attention recipe):\n\n"
    "  vizcli roi photo.jpg --detect --weights DEFAULT --op align,box-head --plot detections.png\n\n"
    "  vizcli roi images/ --detect --weights DEFAULT --op box-head --max-detections 36 -o feats.parquet\n\n"
    "  vizcli roi export feats.parquet --layout butd-tsv -o feats.tsv   # the bottom-up-attention TSV\n\n"
    "Boxes are x1,y1,x2,y2 in the original image's pixels. --aligned (the default, as in "
    "Detectron2's ROIAlignV2) shifts box coordinates by half a cell so that a continuous "
    "coordinate lines up with pixel centres; --no-aligned is the original Mask R-CNN/torchvision "
    "default, which samples half a cell off and stretches tiny boxes to at least one cell. "
    "RoIPool ignores it."
)

SAVE_FORMATS = tuple(member.value for member in FeatureFormat)
SUBCOMMANDS = ("merge", "verify", "export")  # vizcli roi merge|verify|export OUTPUT...


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
                     "MultiScaleRoIAlign assigns each box."),
    ] = RoiLayer.layer3,
    op: Annotated[str | None, typer.Option("--op", help="align (RoIAlign, the default), pool (RoIPool), both, box-head (a "
                                            "detector's TwoMLPHead, 1024 values), none (--detect: boxes only), or a list: "
                                            "align,box-head. export: the features to write (default: box-head if stored).")] = None,
    layout: Annotated[str, typer.Option("--layout", help="export: butd-tsv (one TSV line an image) or butd-npz (a folder, "
                                        "one .npz an image), the bottom-up-attention layouts.")] = "butd-tsv",
    detect: Annotated[bool, typer.Option("--detect", help="Find the boxes with --detector, then pool them from its own pyramid.")] = False,
    detector: Annotated[str, typer.Option("--detector", help="A torchvision detector: fasterrcnn_*/maskrcnn_*/keypointrcnn_* "
                                          "(features), retinanet_*/fcos_* (boxes only).")] = "fasterrcnn_resnet50_fpn_v2",
    min_score: Annotated[float, typer.Option("--min-score", help="--detect: keep detections scoring at least this.")] = 0.2,
    max_detections: Annotated[int, typer.Option("--max-detections", help="--detect: at most this many boxes an image (36 is usual).")] = 36,
    min_detections: Annotated[int | None, typer.Option("--min-detections", help="--detect: at least this many, the top ones even "
                                                       "under --min-score (default 10, or --max-detections if fewer).")] = None,
    classes: Annotated[str | None, typer.Option("--classes", help="--detect: only these COCO classes, e.g. person,dog.")] = None,
    class_names: Annotated[str | None, typer.Option("--class-names", help="--detect: a text file naming the detector's "
                                                    "classes, one a line in index order (a fine-tuned detector's own).")] = None,
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
        str, typer.Option("--model", help="Any torchvision ResNet/ResNeXt/Wide-ResNet, or fasterrcnn_resnet50_fpn etc. with --layer fpn.")
    ] = "resnet18",
    resume: ResumeOption = False,
    shard: ShardOption = None,
    shard_format: ShardFormatOption = ShardFormat.safetensors,
    shard_size: ShardSizeOption = 16.0,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images of one padded size run through the backbone together.")] = 8,
    workers: Annotated[int | None, typer.Option("--workers", help="Threads decoding images ahead of the model (default 2); with --engine ray: actors, one model each (default: the CPUs here).")] = None,
    engine: EngineOption = Engine.local,
    ray_address: RayAddressOption = None,
    ray_timeout: RayTimeoutOption = 60.0,
    on_error: OnErrorOption = OnError.skip,
    dtype: Annotated[ComputeDtype, typer.Option("--dtype", help="The backbone's compute dtype (features are stored as float32).")] = ComputeDtype.float32,
    weights: WeightsOption = None,
    seed: SeedOption = 0,
    sample: SampleOption = DEFAULT_SAMPLE,
    tolerance: ToleranceOption = None,
    quiet: QuietOption = False,
    device: DeviceOption = "auto",
    threads: ThreadsOption = None,
    max_pixels: MaxPixelsOption = None,
) -> int | None:
    """Crop boxes from a CNN feature map (ResNet18 by default) with RoIAlign / RoIPool and explain the values."""
    from vizcli.common.errors import BadInput
    from vizcli.common.files import check_not_an_input, check_writable, choose_format, format_for_path

    if explain_notes:
        from vizcli.roi.explain import notes_examples
        from vizcli.roi.render import notes_lines

        print("\n".join(notes_lines(notes_examples())))
        return None
    from vizcli.roi.boxes import check_max_boxes
    from vizcli.roi.dataset import is_dataset_input
    from vizcli.roi.explain import parse_explain
    from vizcli.roi.pooling import PoolSpec, check_channel, parse_output_size

    if images and images[0] in SUBCOMMANDS:
        from vizcli.roi.subcommands import run_subcommand

        run_subcommand(images[0], images[1:], output, quiet, shard_format=shard_format.value, sample=sample,
                       tolerance=tolerance, images_root=images_root, device=device, layout=layout, feature=op)
        return None
    from vizcli.datasets.sink import is_table_output
    from vizcli.roi.detectors import parse_ops

    op = op or "align"
    ops = parse_ops(op, detect, detector)
    through_detector = detect or "box-head" in ops
    from vizcli.roi.detectors import check_detection_settings

    check_detection_settings(detect, detector, min_score=min_score, max_detections=max_detections, min_detections=min_detections,
                             classes=classes, class_names=class_names, weights=weights if through_detector else None)
    if through_detector:
        from vizcli.roi.detectors import check_detector

        check_detector(detector)
        from vizcli.roi.detections import check_detector_flags

        check_detector_flags(detect, model, layer, output_size, sampling_ratio, aligned, max_size, dtype, explain,
                              annotations, boxes, boxes_file)
    worker_settings = {
        "detector": detector, "weights": weights, "detect": detect, "op": ",".join(ops) or "none", "min_score": min_score,
        "max_detections": max_detections, "min_detections": min_detections, "classes": classes, "class_names": class_names,
        "device": device,
        "seed": seed, "max_pixels": max_pixels, "strict": strict,
    } if through_detector else {
        "model": model, "weights": weights, "layer": layer.value, "op": op, "output_size": output_size,
        "sampling_ratio": sampling_ratio, "aligned": aligned, "max_size": max_size, "dtype": dtype.value,
        "device": device, "seed": seed, "max_pixels": max_pixels, "strict": strict,
    }

    if is_dataset_input(list(images or []), annotations) or (output and is_table_output(output)):
        from vizcli.datasets.options import dataset_settings

        if explain or plot:
            raise BadInput(f"--{'explain' if explain else 'plot'} explains single images; drop it for a dataset run")
        for flag, given in (("--save-format", save_format_option), ("--format", output_format)):
            if given is not None:
                raise BadInput(f"{flag} {given.value} is for single images; a dataset run writes Parquet (-o out.parquet) or "
                               "shards (-o DIR/ with --shard-format): drop it")
        if not output:
            raise BadInput("a dataset run writes rows: give -o out.parquet or -o DIR/ (a folder of shards)")
        if not 1 <= batch_size <= 1024:
            raise BadInput("use 1..1024", parameter="batch_size", value=batch_size)
        if engine is Engine.local and workers is not None and not 1 <= workers <= 64:
            raise BadInput("use 1..64 decode threads", parameter="workers", value=workers)
        settings = dataset_settings(output, resume, shard, shard_format, shard_size, engine, workers, ray_address, on_error,
                                    threads, quiet, ray_timeout)
        from vizcli.common.runtime import flat_heap

        with flat_heap(mapped_blocks=not through_detector):  # a dataset run is long: keep peak memory flat (see keep_heap_flat)
            return _run_dataset(settings, worker_settings, list(images or []), boxes, boxes_file, annotations,
                                annotations_format.value if annotations_format else None, images_root, glob, max_boxes,
                                batch_size, workers or 2, threads)
    if engine is not Engine.local or ray_address is not None:
        raise BadInput("--engine ray runs datasets: write rows with -o out.parquet or -o DIR/")
    if not images:
        raise BadInput("no image given; give one: vizcli roi IMAGE --boxes x1,y1,x2,y2, or a DATASET folder "
                       "(or use --explain-notes)")
    if through_detector:
        from vizcli.roi.detections import detect_command

        given_boxes = None if detect else _boxes_by_image(list(images), boxes, boxes_file, max_boxes)
        detect_command(worker_settings, list(images), given_boxes, output, save_format_option.value if save_format_option else None,
                       output_format.value if output_format else None, plot, quiet, threads)
        return None
    from vizcli.roi.backbones import check_backbone

    check_backbone(model, layer.value)
    spec = PoolSpec.for_layer(layer.value, parse_output_size(output_size), sampling_ratio, aligned)
    check_max_boxes(max_boxes)
    if explain:
        check_channel(layer.value, channel, model)
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
        max_pixels, warn=warn, progress_factory=None if quiet else progress_factory("pooling boxes", total), model=model,
    )
    for note in report.notes:
        warn(note)
    shown = output_format.value if output_format else (None if quiet and output else "table")
    print_report(report, shown, explain_target, channel)
    say = (lambda message: None) if quiet else info
    if output and save_format:
        say(save_features(report, output, save_format))
    if plot:
        from vizcli.roi.plot import plot_roi

        plot_roi(report, plot)
        say(f"saved picture to {plot}")
    return None


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


def _run_dataset(settings: Any, worker_settings: dict[str, Any], images: list[str], boxes: list[str] | None,
                 boxes_file: str | None, annotations: str | None, annotations_format: str | None, images_root: str | None,
                 glob: str | None, max_boxes: int, batch_size: int, decode_workers: int, threads: int | None) -> int:
    """``vizcli roi DATASET ... -o out.parquet|DIR/``: every box of a dataset, streamed to rows."""
    from vizcli.common.errors import BadInput
    from vizcli.common.files import check_not_an_input
    from vizcli.datasets.keys import Shard
    from vizcli.roi.backbones import check_backbone
    from vizcli.roi.dataset import is_dataset_input, listed_images, load_dataset

    output = settings.output
    detecting = bool(worker_settings.get("detect"))
    if "model" in worker_settings:
        check_backbone(worker_settings["model"], worker_settings["layer"])
    check_not_an_input(output, [*images, annotations, worker_settings["weights"], boxes_file])
    if boxes and (annotations or boxes_file):
        raise BadInput("give boxes with --boxes or --annotations, not both")
    if boxes_file and annotations:
        raise BadInput("give boxes with --annotations or --boxes-file, not both")
    annotations = annotations or boxes_file
    if detecting:  # the detector finds the boxes: every image of the folder, list or command line
        from vizcli.roi.annotations import AnnotatedImage
        from vizcli.roi.dataset import list_images

        dataset_images = (list_images(images[0], glob, images_root) if len(images) == 1 and is_dataset_input(images, None)
                          else [AnnotatedImage(image_id=path, path=path) for path in images])
        problems: list[dict[str, Any]] = []
    elif boxes and len(images) == 1 and is_dataset_input(images, None):  # a folder or list, the same boxes on every image
        from vizcli.roi.annotations import Annotation, Annotations, attach
        from vizcli.roi.boxes import parse_box_text
        from vizcli.roi.dataset import list_images

        every = [Annotation(box.coords, str(box.number), box.label)
                 for box in (parse_box_text(text, number) for number, text in enumerate(boxes, start=1))]
        dataset_images = attach(Annotations("boxes", None, every_image=every), list_images(images[0], glob, images_root))
        problems = []
    elif is_dataset_input(images, annotations) and len(images) <= 1 and not boxes:
        dataset_images, problems = load_dataset(images[0] if images else None, annotations, annotations_format, images_root,
                                                glob, Shard(), max_boxes)
    else:
        dataset_images, problems = listed_images(images, boxes, annotations, Shard(), max_boxes)
    from vizcli.common.console import info, progress_factory, warn
    from vizcli.common.runtime import set_threads
    from vizcli.datasets.options import summary_exit
    from vizcli.datasets.run import run_dataset
    from vizcli.roi.rows import build_worker, image_pieces, roi_job

    set_threads(threads, warn)
    extractor = build_worker(worker_settings)  # with --engine ray: for the schema and metadata; the actors build their own
    for note in extractor.notes:
        warn(note)
    from vizcli.common.runtime import cpu_has_bfloat16_units

    if getattr(extractor, "dtype", None) == "bfloat16" and extractor.device.type == "cpu" and cpu_has_bfloat16_units() is False:
        warn("this CPU has no bfloat16 units (AVX512-BF16/AMX): bfloat16 convolutions are emulated and run many "
             "times slower than float32 here (16× in benchmarks/RESULTS.md)")
    job = roi_job(worker_settings, extractor, problems, batch_size, decode_workers, threads if settings.engine == "ray" else None)
    pieces = image_pieces([image for image in dataset_images if settings.shard.holds(image.image_id)],
                          worker_settings["max_detections"] if detecting else None)
    total = sum(len(piece.values) for piece in pieces)
    start = None if settings.quiet or settings.engine == "ray" else progress_factory("pooling images", total, threshold=2)
    progress = start(total) if start else None  # Ray shows its own progress
    summary = run_dataset(job, pieces, settings, progress=progress)
    if not settings.quiet:
        skipped = f", {summary.skipped:,} already there" if summary.skipped else ""
        problems_note = f"; {summary.problems:,} problems in {summary.problems_path}" if summary.problems else ""
        info(f"wrote {summary.rows:,} rows from {summary.items:,} images to {summary.output}{skipped}{problems_note}")
    return summary_exit(summary.problems, f"see {summary.problems_path}", settings.on_error)
