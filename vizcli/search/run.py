"""``vizcli search`` as one call: build an index, answer query texts or stored ids, or list near-duplicate pairs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SearchRequest:
    """Everything ``vizcli search`` was asked, as the command line gave it (checked by ``run_search``)."""

    dataset: str
    texts: list[str]
    file: str | None
    field: str | None
    column: str | None
    ids: list[str]
    query_prefix: str | None
    k: int
    mode: str
    rescore: int
    pooling: str | None
    in_memory: bool
    batch_size: int
    block_rows: int
    threshold: float | None
    build: bool
    index_dtype: str
    connectivity: int
    expansion_add: int
    expansion_search: int | None
    output_format: str
    quiet: bool
    device: str
    threads: int | None
    root: str | None = None


def run_search(request: SearchRequest) -> None:
    """Build the index (``build``), then print the hits of every query, or the near-duplicate pairs (``threshold``)."""
    (dataset, texts, file, field, column, ids, query_prefix, k, mode, rescore, pooling, in_memory, batch_size, block_rows,
     threshold, build, index_dtype, connectivity, expansion_add, expansion_search, output_format, quiet, device,
     threads) = (request.dataset, request.texts, request.file, request.field, request.column, request.ids, request.query_prefix,
                 request.k, request.mode, request.rescore, request.pooling, request.in_memory, request.batch_size,
                 request.block_rows, request.threshold, request.build, request.index_dtype, request.connectivity,
                 request.expansion_add, request.expansion_search, request.output_format, request.quiet, request.device,
                 request.threads)
    import sys

    from vizcli.common.console import counter_progress, info, warn
    from vizcli.common.errors import BadInput
    from vizcli.common.runtime import check_threads
    from vizcli.search.render import ResultWriter

    threads = check_threads(threads, warn)
    asked = bool(texts or file or ids)
    if threshold is not None and asked:
        raise BadInput("--duplicates compares the output with itself; drop the query texts, --file and --id")
    if build:
        from vizcli.search.index import IndexSettings, build_index
        from vizcli.search.source import EmbedOutput

        settings = IndexSettings(index_dtype, connectivity, expansion_add, expansion_search or 64).check()
        output = EmbedOutput(dataset, pooling, block_rows)
        progress = None if quiet else counter_progress("indexing vectors")
        path = build_index(output, settings, threads or 0, progress)
        if progress is not None:
            progress(0, done=True)
        if not quiet:
            info(f"indexed {output.rows:,} vectors ({output.pooling}) in {path}")
        if not asked and threshold is None:
            return
    if not asked and threshold is None and sys.stdin.isatty():
        raise BadInput("no queries: give TEXT arguments, --file FILE, --id ID or lines on stdin (or --duplicates T, --build-index)")
    from vizcli.common.runtime import set_threads
    from vizcli.search.searcher import Searcher

    set_threads(threads, warn)
    searcher = Searcher(dataset, pooling, mode, rescore, in_memory, block_rows,
                        expansion_search, query_prefix, device, threads, request.root)
    writer = ResultWriter(output_format)
    if threshold is not None:
        writer.pairs(searcher.near_duplicates(threshold), f"pairs with cosine ≥ {threshold:g}")
        if not quiet:
            info(f"{writer.count:,} pairs with cosine ≥ {threshold:g}")
            if searcher.text_problem:
                warn(searcher.text_problem)
        return
    if texts or file or not ids:
        from vizcli.embed.texts import read_texts
        from vizcli.search.queries import batches

        queries = (item.text for item in read_texts(texts, file=file, field=field, column=column, skip_empty=True))
        for batch in batches(queries, batch_size):
            writer.matches(searcher.search(batch, k=k))
    if ids:
        writer.matches(searcher.search(ids=ids, k=k))
    if writer.count == 0:
        raise BadInput("no queries: the input held no text (give TEXT arguments, --file FILE, --id ID or lines on stdin)")
    if searcher.text_problem and not quiet:
        warn(searcher.text_problem)
