"""``vizcli search``: parse the flags, call ``vizcli.search``'s core, print the results."""

from __future__ import annotations

from typing import Annotated

import typer

from vizcli.common.choices import Choice
from vizcli.common.options import DeviceOption, QuietOption, ThreadsOption

INPUT, SEARCH, DUPLICATES, INDEX, OUTPUT, RUNTIME = "Queries", "Search", "Near-duplicates", "Index", "Output", "Runtime"


class SearchMode(Choice):
    exact = "exact"
    binary = "binary"
    int8 = "int8"
    ann = "index"  # not `index`: str.index


class SearchFormat(Choice):
    table = "table"
    jsonl = "jsonl"
    tsv = "tsv"


class IndexDtype(Choice):
    f32 = "f32"
    f16 = "f16"
    bf16 = "bf16"
    i8 = "i8"


EPILOG = (
    "Examples:\n\n"
    "  vizcli embed --file corpus.txt -p mean --normalize --keep-text -o vectors.parquet\n\n"
    '  vizcli search vectors.parquet "how do I parse dates" -k 5\n\n'
    "  vizcli search vectors.parquet --file questions.txt -f jsonl > answers.jsonl\n\n"
    "  vizcli search vectors.parquet --id 42 --id 99 -f tsv            # rows like stored rows (their own row left out)\n\n"
    "  vizcli search vectors.parquet --duplicates 0.95 -f tsv          # every pair with cosine ≥ 0.95\n\n"
    "  vizcli search vectors.parquet --build-index                    # once: vectors.parquet.mean.usearch beside it\n\n"
    '  vizcli search vectors.parquet "parse dates" --mode index\n\n'
    "Query texts are embedded with the output's recorded model, pooling, prefix, normalization and dtype. "
    "Scores are cosine similarities. Modes: exact (float32, streamed in blocks), binary / int8 (codes in memory, "
    "the best k × --rescore candidates rescored in float32), index (usearch's HNSW; pip install 'vizcli[index]')."
)


def search(
    dataset: Annotated[str, typer.Argument(help="An embed output: a .parquet file or a shard folder (vizcli embed -o).",
                                           show_default=False)],
    texts: Annotated[list[str] | None, typer.Argument(help="Query texts; '-' (or none, with input piped) reads stdin, one a line.",
                                                      show_default=False)] = None,
    file: Annotated[str | None, typer.Option("--file", rich_help_panel=INPUT,
                                             help="Query texts from a file: .txt one a line, .jsonl (with --field), .csv/.tsv/.parquet (with --column).")] = None,
    field: Annotated[str | None, typer.Option("--field", rich_help_panel=INPUT, help="JSONL key holding the query text.")] = None,
    column: Annotated[str | None, typer.Option("--column", rich_help_panel=INPUT, help="CSV/TSV/Parquet column holding the query text.")] = None,
    ids: Annotated[list[str] | None, typer.Option("--id", rich_help_panel=INPUT,
                                                  help="Search with a stored row's vector (its id; repeat for several); its own row is left out.")] = None,
    query_prefix: Annotated[str | None, typer.Option("--query-prefix", rich_help_panel=INPUT,
                                                     help="Prefix for query texts instead of the recorded one (e.g. 'query: ').")] = None,
    k: Annotated[int, typer.Option("--top-k", "-k", rich_help_panel=SEARCH, help="Hits per query.")] = 10,
    mode: Annotated[SearchMode, typer.Option("--mode", rich_help_panel=SEARCH, help="exact, binary, int8 (quantized + float rescoring) or index.")] = SearchMode.exact,
    rescore: Annotated[int, typer.Option("--rescore", rich_help_panel=SEARCH,
                                         help="binary/int8: candidates per hit rescored in float32 (k × this).")] = 10,
    pooling: Annotated[str | None, typer.Option("--pooling", "-p", rich_help_panel=SEARCH,
                                                help="Which stored pooling to search (default: the output's first).")] = None,
    in_memory: Annotated[bool, typer.Option("--in-memory", rich_help_panel=SEARCH,
                                            help="exact: read the vectors once and keep them (many query batches) instead of streaming each time.")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", rich_help_panel=SEARCH, help="Query texts per forward pass and per search pass.")] = 256,
    block_rows: Annotated[int, typer.Option("--block-rows", rich_help_panel=SEARCH, help="Stored rows read and scored at a time (memory).")] = 65536,
    threshold: Annotated[float | None, typer.Option("--duplicates", rich_help_panel=DUPLICATES,
                                                    help="Print every pair of stored rows with cosine ≥ this, instead of searching.")] = None,
    build: Annotated[bool, typer.Option("--build-index", rich_help_panel=INDEX,
                                        help="Build the usearch index beside the output (then --mode index uses it).")] = False,
    index_dtype: Annotated[IndexDtype, typer.Option("--index-dtype", rich_help_panel=INDEX, help="Vector type inside the index.")] = IndexDtype.f32,
    connectivity: Annotated[int, typer.Option("--connectivity", rich_help_panel=INDEX, help="HNSW edges per node.")] = 16,
    expansion_add: Annotated[int, typer.Option("--expansion-add", rich_help_panel=INDEX, help="Candidates while building.")] = 128,
    expansion_search: Annotated[int | None, typer.Option("--expansion-search", rich_help_panel=INDEX,
                                                         help="Candidates while searching (default: as built, 64).")] = None,
    output_format: Annotated[SearchFormat, typer.Option("--format", "-f", rich_help_panel=OUTPUT, case_sensitive=False,
                                                        help="table, jsonl (an object per query) or tsv (a row per hit).")] = SearchFormat.table,
    root: Annotated[str | None, typer.Option("--root", rich_help_panel=OUTPUT,
                                             help="The folder the recorded input moved to since the run (for the texts of an "
                                                  "output that keeps none).")] = None,
    quiet: QuietOption = False,
    device: DeviceOption = "auto",
    threads: ThreadsOption = None,
) -> None:
    """Nearest stored texts of an embed output, for query texts or stored ids; near-duplicate pairs; its index."""
    from vizcli.search.run import SearchRequest, run_search

    run_search(SearchRequest(dataset, list(texts or []), file, field, column, list(ids or []), query_prefix, k, mode.value, rescore,
                             pooling, in_memory, batch_size, block_rows, threshold, build, index_dtype.value, connectivity,
                             expansion_add, expansion_search, output_format.value, quiet, device, threads, root))
