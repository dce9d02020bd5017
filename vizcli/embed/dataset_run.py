"""A dataset run: every text one row of ``-o vectors.parquet`` or ``-o DIR/``, resumable, shardable, local or on Ray.

``embed_dataset`` builds the one ``Embedder`` (the model's pooling and ``dtype="auto"`` resolved, int8/uint8
ranges calibrated, all on construction), records its settings and the input in the output's metadata, and
hands the embed job (``vizcli.embed.rows``) to ``vizcli.datasets.run_dataset``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vizcli.common.errors import BadInput
from vizcli.embed.request import EmbedSettings, TextSource, report_dtype, warn_overflow


def embed_dataset(source: TextSource, settings: EmbedSettings, dataset: Any) -> int:
    """Embed every text of ``source`` into ``dataset.output`` (``DatasetSettings``); the exit status (3: rows skipped)."""
    from vizcli.common.console import counter_progress, info, warn
    from vizcli.common.files import check_not_an_input, refuse_overwriting_inputs
    from vizcli.common.models import model_input_files
    from vizcli.common.runtime import resolve_device, set_threads
    from vizcli.datasets.options import summary_exit
    from vizcli.datasets.run import run_dataset
    from vizcli.embed.loading import load_bert
    from vizcli.embed.precision import NEEDS_RANGES, save_ranges
    from vizcli.embed.rows import embed_job, first_texts, text_pieces

    check_not_an_input(dataset.output, [source.file, settings.ranges])
    refuse_overwriting_inputs(dataset.output, model_input_files(settings.model))  # a model folder's config.json, weights, tokenizer
    needs_ranges = settings.precision in NEEDS_RANGES
    ranges_file = _ranges_file(dataset.output)
    if needs_ranges and settings.ranges is None and ranges_file.parent.is_dir():
        from vizcli.common.files import check_writable

        check_writable(str(ranges_file))  # before the model loads: a folder in its place is refused now, not after the run
    if needs_ranges and settings.ranges is None and source.file is None:
        raise BadInput("int8/uint8 from stdin or arguments need ranges=FILE (a calibration sample is read from file=PATH)",
                       parameter="precision", value=settings.precision)
    source.items()  # no text at all is refused before the model loads
    set_threads(settings.threads, warn)
    encoder = load_bert(settings.model, dtype=settings.dtype, device=str(resolve_device(settings.device)))
    report_dtype(encoder, settings.dtype, dataset.quiet)
    embedder = _embedder(encoder, source, settings)
    pieces = text_pieces(source.read_arguments(), list(source.texts))
    metadata = _metadata(embedder, source, dataset)
    if encoder.dtype == "int8":
        from vizcli.embed.embedder import int8_receipt

        sample = first_texts(pieces, list(source.texts), source.read_arguments(), settings.calibration)
        metadata["int8_receipt"] = int8_receipt(encoder, sample, embedder.options)
    worker_settings = {**metadata["settings"], "device": settings.device, "threads": dataset.threads}
    job = embed_job(embedder, worker_settings, metadata)
    progress = None if dataset.quiet or dataset.engine == "ray" else counter_progress("embedding texts")  # Ray shows its own
    summary = run_dataset(job, pieces, dataset, progress=progress)
    if progress is not None:
        progress(0, done=True)
    if needs_ranges and settings.ranges is None:
        save_ranges(ranges_file, embedder.options.ranges or {})
        if not dataset.quiet:
            info(f"wrote the {settings.precision} ranges to {ranges_file} (give them to a later run with --ranges)")
    if not dataset.quiet:
        info(_summary_line(summary))
    warn_overflow(summary.tally.get("truncated", 0), 0, settings.max_length or encoder.max_length, None, where="column truncated")
    return summary_exit(summary.problems, f"see {summary.problems_path}", dataset.on_error)


def _embedder(encoder: Any, source: TextSource, settings: EmbedSettings) -> Any:
    """The run's ``Embedder`` on ``encoder``: int8/uint8 ranges read from ``settings.ranges``, else calibrated on the input."""
    from vizcli.embed.embedder import Embedder
    from vizcli.embed.precision import NEEDS_RANGES, load_ranges

    needs_ranges, given = settings.precision in NEEDS_RANGES, None
    if needs_ranges and settings.ranges is not None:
        from vizcli.embed.model_settings import model_pooling

        poolings = model_pooling(settings.poolings, settings.normalize, settings.prompt, settings.prefix, encoder.path,
                                 encoder.has_pooler)[0]
        given = load_ranges(settings.ranges, poolings, settings.truncate_dim or encoder.hidden_size)
    return Embedder(**settings.embedder_arguments(), precision=settings.precision, truncate_dim=settings.truncate_dim,
                    keep_text=settings.keep_text, ranges=given, encoder=encoder,
                    calibration_texts=source.items() if needs_ranges and given is None else None)


def _ranges_file(output: str) -> Path:
    """Where the int8/uint8 ranges of a run go: ``DIR/ranges.json``, or ``out.ranges.json`` beside ``out.parquet``."""
    from vizcli.datasets.sink import is_directory_output

    path = Path(output)
    return path / "ranges.json" if is_directory_output(output) else path.with_name(path.stem + ".ranges.json")


def _metadata(embedder: Any, source: TextSource, dataset: Any) -> dict[str, Any]:
    """What the output records: the model (by its weights' sha256), every setting, the input read and the worker settings."""
    from vizcli.common.formats import EMBED_DATASET_SCHEMA
    from vizcli.embed import writers
    from vizcli.embed.loading import weights_sha256
    from vizcli.embed.rows import recorded_input

    options, encoder = embedder.options, embedder.encoder
    settings = embedder.worker_settings()
    metadata = writers.metadata(encoder, options.poolings, options.normalize, options.max_length)
    metadata.pop("model_path")  # differs per machine; the weights' sha256 identifies the model
    metadata.update({"weights_sha256": weights_sha256(encoder), "schema": EMBED_DATASET_SCHEMA, "pooling": list(options.poolings),
                     "normalize": options.normalize, "prefix": options.prefix, "precision": options.precision,
                     "truncate_dim": options.truncate_dim, "dimensions": embedder.dimensions, "keep_text": options.keep_text,
                     "id_column": source.id_column, "ranges": settings["ranges"]})
    metadata["settings"] = json.loads(json.dumps(settings))  # as JSON reads it back (tuples as lists): resume compares the two
    from vizcli.embed.kind import EMBED_KIND

    metadata["settings_version"] = EMBED_KIND.settings_version
    metadata["input"] = recorded_input(source.read_arguments())  # what `vizcli verify` reads again when no text is kept
    return metadata


def _summary_line(summary: Any) -> str:
    rows = "1 row" if summary.rows == 1 else f"{summary.rows:,} rows"
    line = f"wrote {rows} to {summary.output}"
    if summary.skipped:
        texts = "1 text" if summary.skipped == 1 else f"{summary.skipped:,} texts"
        line += f"; {texts} already embedded there by an earlier run were skipped (--resume)"
    return line

