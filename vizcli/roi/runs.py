"""A ``roi`` or ``detect`` run as the command line asks for it: single images shown, or a dataset's rows written.

Both commands hand their worker's settings (``RoIExtractor``'s or ``Detector``'s keyword arguments)
and their ``ImageInputs`` here. ``write_rows`` runs a dataset through ``vizcli.datasets`` (the roi
job of ``vizcli.roi.rows``); ``pool_images`` runs single images through the same ``RoIExtractor``
and prints, saves and draws the report; ``detect_images`` does that with the ``Detector``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from vizcli.common.errors import BadInput
from vizcli.roi.inputs import ImageInputs

ARRAY_FORMATS = ("pt", "npy", "npz", "safetensors")
MAX_BATCH_SIZE = 1024
MAX_DECODE_THREADS = 64
FLAGS = {"output_format": "--output-format", "stdout_format": "--format", "plot": "--plot", "explain": "--explain",
         "channel": "--channel"}  # Shown's settings, as a dataset run that refuses them names them


@dataclass(frozen=True)
class RunOptions:
    """How the worker runs: images per forward pass, decoding threads, torch threads, and quiet."""

    batch_size: int = 8
    decode_threads: int = 2
    threads: int | None = None
    quiet: bool = False

    def check(self) -> None:
        if not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise BadInput(f"use 1..{MAX_BATCH_SIZE} images", parameter="batch_size", value=self.batch_size)
        if not 1 <= self.decode_threads <= MAX_DECODE_THREADS:
            raise BadInput(f"use 1..{MAX_DECODE_THREADS} threads", parameter="decode_threads", value=self.decode_threads)


@dataclass(frozen=True)
class Shown:
    """What a single-image run shows and writes: stdout's format, the arrays file, the picture, an explained value."""

    output: str | None = None
    output_format: str | None = None  # of the file -o writes (default: its suffix)
    stdout_format: str | None = None  # table or json (default table; nothing with quiet and -o)
    plot: str | None = None
    explain: str | None = None
    channel: int = 0

    def given(self) -> list[str]:
        """The flags given a value other than their default, as ``--flag value`` (a dataset run refuses them)."""
        defaults = Shown()
        return [f"{FLAGS[item.name]} {getattr(self, item.name)}" for item in fields(self)
                if item.name in FLAGS and getattr(self, item.name) != getattr(defaults, item.name)]

    def shown_format(self, quiet: bool) -> str | None:
        return self.stdout_format or (None if quiet and self.output else "table")


def refuse_dataset_flags(given: list[str]) -> None:
    """``BadInput`` for dataset flags (``DatasetFlags.given()``) on a run of single images."""
    if given:
        raise BadInput(f"{', '.join(given)} {'runs' if len(given) == 1 else 'run'} datasets: write rows with -o out.parquet or "
                       "-o DIR/, or drop " + ("it" if len(given) == 1 else "them"))


# ---------------------------------------------------------------- single images


def pool_images(settings: dict[str, Any], inputs: ImageInputs, shown: Shown, run: RunOptions) -> None:
    """``vizcli roi IMAGE...``: pool the boxes through ``RoIExtractor(**settings)``, then print the table (or
    JSON), the ``explain``ed value, and write the arrays and the picture; each file written is said on stderr."""
    from vizcli.common.console import info, warn
    from vizcli.common.files import check_not_an_input, check_writable, choose_format, format_for_path, require_file
    from vizcli.common.runtime import set_threads
    from vizcli.roi.explain import parse_explain
    from vizcli.roi.extract import RoIExtractor
    from vizcli.roi.pooling import check_channel
    from vizcli.roi.render import print_report, save_features
    from vizcli.roi.report import report_images

    inputs.check_single()
    run.check()
    file_format = choose_format(shown.output, shown.output_format, {name: name for name in ARRAY_FORMATS} | {"pth": "pt"}, "")
    if shown.output and not file_format:
        format_for_path(shown.output, ARRAY_FORMATS)  # no output_format and a suffix that names none: say so
    check_writable(shown.output, side_suffixes=(".json",) if file_format == "npy" else ())
    check_not_an_input(shown.output, [*inputs.files(), settings.get("weights")])
    _check_plot(shown.plot, [*inputs.files(), shown.output])
    boxes = inputs.boxes_by_image()
    if shown.explain:
        check_channel(settings["layer"], shown.channel, settings["model"])
    elif shown.channel:
        raise BadInput("picks the channel explain=BOX shows; add explain=BOX, or drop it", parameter="channel", value=shown.channel)
    for image in inputs.images:
        if image != "-":
            require_file(image, "image", "an image file")  # before the backbone loads
    set_threads(run.threads, warn)
    extractor = RoIExtractor(**settings, batch_size=run.batch_size, decode_workers=run.decode_threads)
    if file_format == "npy" and len(extractor.ops) > 1:
        raise BadInput(f"-o {shown.output}: .npy holds one array and op={settings['op']!r} gives {len(extractor.ops)}; use .npz, "
                       ".safetensors or .pt")
    total = sum(len(boxes.get(image, [])) for image in inputs.images)
    target = parse_explain(shown.explain, total, extractor.spec.output_size) if shown.explain else None
    for note in extractor.notes:
        warn(note)
    report = report_images(extractor, list(inputs.images), boxes, warn)
    say = (lambda message: None) if run.quiet else info
    print_report(report, shown.shown_format(run.quiet), target, shown.channel, say)
    if shown.output:
        from vizcli.roi.kind import ROI_KIND
        from vizcli.roi.rows import recorded_settings

        recorded = {"settings": recorded_settings(settings), "settings_version": ROI_KIND.settings_version,
                    "weights_sha256": extractor.weights_sha256}
        say(save_features(report, shown.output, file_format, recorded))
    if shown.plot:
        from vizcli.roi.plot import plot_roi

        plot_roi(report, shown.plot)
        say(f"wrote the picture to {shown.plot}")


def detect_images(settings: dict[str, Any], inputs: ImageInputs, shown: Shown, run: RunOptions) -> None:
    """``vizcli detect IMAGE...``: the ``Detector`` on single images (with given boxes when there are any)."""
    from vizcli.roi.detections import detect_command

    inputs.check_single()
    run.check()
    if shown.explain is not None or shown.channel:
        raise BadInput("explains RoIAlign/RoIPool on a backbone's map (vizcli roi); drop it", parameter="explain",
                       value=shown.explain)
    boxes = inputs.boxes_by_image() if inputs.has_boxes else None
    detect_command({**settings, "batch_size": run.batch_size, "decode_workers": run.decode_threads}, list(inputs.images), boxes,
                   shown.output, shown.output_format, shown.stdout_format, shown.plot, run.quiet, run.threads)


def _check_plot(plot: str | None, inputs: list[str | None]) -> None:
    from vizcli.common.files import check_not_an_input, check_writable, format_for_path

    if plot:
        format_for_path(plot, ("png",), parameter="plot")
        check_writable(plot, parameter="plot")
        check_not_an_input(plot, inputs, parameter="plot")


# ---------------------------------------------------------------- datasets


def write_rows(settings: dict[str, Any], inputs: ImageInputs, dataset: Any, output: str | None, run: RunOptions,
               shown: Shown) -> int:
    """``vizcli roi|detect DATASET -o out.parquet|DIR/``: every box of a dataset, streamed to rows by
    the worker ``settings`` describe (``dataset``: the ``DatasetFlags``). Returns the exit status."""
    from vizcli.common.console import info, progress_factory, warn
    from vizcli.common.files import check_not_an_input
    from vizcli.common.runtime import flat_heap, set_threads
    from vizcli.datasets.options import summary_exit
    from vizcli.datasets.run import run_dataset
    from vizcli.roi.rows import build_worker, image_pieces, roi_job

    for given in shown.given():
        raise BadInput(f"{given} is for single images; a dataset run writes rows (-o out.parquet, or -o DIR/ with "
                       "--shard-format): drop it")
    if not output:
        raise BadInput("a dataset run writes rows: give -o out.parquet or -o DIR/ (a folder of shards)")
    run.check()
    chosen = dataset.settings(output, run.threads, run.quiet)
    detecting = bool(settings.get("detect"))
    if "model" in settings:
        from vizcli.roi.backbones import check_backbone

        check_backbone(settings["model"], settings["layer"])
    check_not_an_input(output, [*inputs.files(), settings.get("weights")])
    images, problems = inputs.dataset_images(detecting)
    set_threads(run.threads, warn)
    with flat_heap(mapped_blocks="model" in settings):  # a dataset run is long: keep peak memory flat (see keep_heap_flat)
        worker = build_worker(settings)  # with engine ray: for the schema and metadata; the actors build their own
        for note in worker.notes:
            warn(note)
        job = roi_job(settings, worker, problems, run.batch_size, run.decode_threads, run.threads if chosen.engine == "ray" else None)
        pieces = image_pieces([image for image in images if chosen.shard.holds(image.image_id)],
                              settings["max_detections"] if detecting else None)
        total = sum(len(piece.values) for piece in pieces)
        start = None if run.quiet or chosen.engine == "ray" else progress_factory("pooling images", total, threshold=2)
        summary = run_dataset(job, pieces, chosen, progress=start(total) if start else None)  # Ray shows its own progress
    if not run.quiet:
        info(summary_line(summary))
    return summary_exit(summary.problems, f"see {summary.problems_path}", chosen.on_error)


def summary_line(summary: Any) -> str:
    """``wrote 36 rows from 1 image to out.parquet; 13 images were finished by an earlier run; …``."""
    line = f"wrote {_count(summary.rows, 'row')} from {_count(summary.items, 'image')} to {summary.output}"
    if summary.skipped:
        were = "was" if summary.skipped == 1 else "were"
        line += f"; {_count(summary.skipped, 'image')} {were} already finished by an earlier run (resumed, not redone)"
    if summary.problems:
        line += f"; {_count(summary.problems, 'problem')} recorded in {summary.problems_path}"
    return line


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}" if number == 1 else f"{number:,} {noun}s"
