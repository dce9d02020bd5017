"""Vectors to stdout or one file (jsonl, json, csv, tsv, npy, npz, safetensors), or their similarity matrix.

The texts stream through the same ``Embedder`` as a dataset run (``Embedder.embed``: one ``Embedding``
per text, in input order), and the writers of ``vizcli.embed.writers`` read its rows. A few texts
(arguments or a small file) are computed in numpy, with no torch import, where the model allows.
"""

from __future__ import annotations

from typing import Any

from vizcli.common.errors import BadInput
from vizcli.embed.request import EmbedOutput, EmbedSettings, TextSource, report_dtype, warn_overflow

TEXT_FORMATS = ("jsonl", "csv", "tsv")  # formats that carry no metadata (so no int8 receipt)


def embed_to_file(source: TextSource, settings: EmbedSettings, output: EmbedOutput) -> None:
    """Write ``source``'s vectors (or, with ``output.similarity``, their cosine similarities) where ``output`` says."""
    from vizcli.common.console import counter_progress, info
    from vizcli.common.files import check_not_an_input, check_writable, refuse_overwriting_inputs
    from vizcli.common.models import model_input_files
    from vizcli.embed import writers

    fmt = output.format()
    if fmt == "npy" and settings.poolings is not None and len(settings.poolings) > 1 and not output.similarity:
        raise BadInput(f"npy holds one array and pooling={settings.pooling} gives {len(settings.poolings)}; use npz or "
                       "safetensors", parameter="output", value=output.path)
    check_writable(output.path, side_suffixes=(".json",) if fmt == "npy" and not output.similarity else ())
    check_not_an_input(output.path, [source.file])
    refuse_overwriting_inputs(output.path, model_input_files(settings.model))  # a model folder's config.json, weights, tokenizer
    items = source.items()
    embedder = _embedder(source, settings)
    encoder, options = embedder.encoder, embedder.options
    report_dtype(encoder, settings.dtype, output.quiet)
    if fmt == "npy" and len(options.poolings) > 1 and not output.similarity:
        raise BadInput(f"npy holds one array and the model's pooling gives {len(options.poolings)}; use npz or safetensors",
                       parameter="output", value=output.path)
    receipt = None
    if encoder.dtype == "int8" and not output.similarity and fmt not in TEXT_FORMATS:
        from vizcli.embed.embedder import int8_receipt
        from vizcli.embed.texts import peek_many

        sample, items = peek_many(items, settings.calibration)
        receipt = int8_receipt(encoder, sample, options)
    progress = None if output.quiet else counter_progress("embedding texts")
    rows = embedder.embed(items, progress)
    if output.similarity:
        writers.write_similarity(list(rows), options.poolings, fmt, output.path)
        count = None
    else:
        meta = {**writers.metadata(encoder, options.poolings, options.normalize, options.max_length), "prefix": options.prefix}
        if fmt not in TEXT_FORMATS:  # what vizcli verify rebuilds the Embedder from, as a dataset output records it
            from vizcli.embed.kind import EMBED_KIND
            from vizcli.embed.loading import weights_sha256

            meta.update(settings=embedder.worker_settings(), settings_version=EMBED_KIND.settings_version,
                        weights_sha256=weights_sha256(encoder))
        if receipt is not None:
            meta["int8_receipt"] = receipt
        count = writers.write_embeddings(rows, options.poolings, fmt, output.path, meta)
    if progress is not None:
        progress(0, done=True)
    overflow = rows.overflow
    warn_overflow(overflow.truncated, overflow.skipped, options.max_length or encoder.max_length, overflow.first)
    if output.to_file and not output.quiet:
        info(f"wrote {_written(count, options.poolings, fmt)} to {output.path}"
             + (f" (and its metadata to {output.path}.json)" if fmt == "npy" and count is not None else ""))


def _embedder(source: TextSource, settings: EmbedSettings) -> Any:
    """The ``Embedder``: numpy for a few texts when it computes what torch would (no torch import), else torch."""
    from vizcli.embed.embedder import Embedder
    from vizcli.embed.loading import load_numpy_bert, numpy_path_fits

    if settings.threads is None and source.is_small and numpy_path_fits(settings.model, settings.dtype, settings.device):
        return Embedder(**settings.embedder_arguments(), encoder=load_numpy_bert(settings.model))
    from vizcli.common.console import warn
    from vizcli.common.runtime import resolve_device, set_threads
    from vizcli.embed.loading import load_bert

    set_threads(settings.threads, warn)
    encoder = load_bert(settings.model, dtype=settings.dtype, device=str(resolve_device(settings.device)))
    return Embedder(**settings.embedder_arguments(), encoder=encoder)


def _written(count: int | None, poolings: tuple[str, ...], fmt: str) -> str:
    named = f"{poolings[0]} pooling" if len(poolings) == 1 else f"{', '.join(poolings[:-1])} and {poolings[-1]} poolings"
    if count is None:
        return f"the cosine similarities ({named})"
    vectors = "1 text's vector" if count == 1 else f"{count:,} texts' vectors"
    return f"{vectors} ({named}) as {fmt}"

