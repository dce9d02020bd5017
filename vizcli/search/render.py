"""Search results on stdout: a table per query, JSON lines (one object per query or pair), or TSV
(a header, then one row per hit or pair). Scores are cosines; texts appear where the output keeps them."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import IO, Any

from vizcli.common.formats import write_records
from vizcli.search.duplicates import Pair
from vizcli.search.hits import Matches

SEARCH_FORMATS = ("table", "jsonl", "tsv")
TABLE_TEXT = 80  # characters of a text a table cell shows


def match_records(matches: Matches) -> list[dict[str, Any]]:
    """One record per hit: query, rank, id, score, text."""
    return [{"query": matches.query, "rank": rank, "id": hit.id, "score": hit.score, "text": hit.text}
            for rank, hit in enumerate(matches.hits, start=1)]


def _query_document(matches: Matches) -> dict[str, Any]:
    found = [{"rank": rank, "id": hit.id, "score": hit.score, **({"text": hit.text} if hit.text is not None else {})}
             for rank, hit in enumerate(matches.hits, start=1)]
    return {("id" if matches.by_id else "query"): matches.query, "hits": found}


def pair_record(pair: Pair) -> dict[str, Any]:
    record: dict[str, Any] = {"id_a": pair.id_a, "id_b": pair.id_b, "score": pair.score}
    if pair.text_a is not None:
        record.update(text_a=pair.text_a, text_b=pair.text_b)
    return record


class ResultWriter:
    """Writes results as they come (``matches`` batch by batch, or ``pairs``) in ``fmt``; TSV's header once."""

    def __init__(self, fmt: str, stream: IO[str] | None = None) -> None:
        self.fmt = fmt
        self.stream = stream if stream is not None else sys.stdout
        self._header = False
        self.count = 0

    def matches(self, found: Iterable[Matches]) -> None:
        for matches in found:
            if self.fmt == "jsonl":
                write_records([_query_document(matches)], "jsonl", self.stream)
            elif self.fmt == "tsv":
                self._tsv(match_records(matches), ("query", "rank", "id", "score", "text"))
            else:
                self._table(f"{'id' if matches.by_id else 'query'}: {matches.query}", ["rank", "score", "id", "text"],
                            [[str(rank), f"{hit.score:.4f}", hit.id, _short(hit.text)] for rank, hit in enumerate(matches.hits, 1)])
            self.count += 1

    def pairs(self, pairs: Iterable[Pair], title: str) -> None:
        rows: list[list[str]] = []
        for pair in pairs:
            self.count += 1
            if self.fmt == "jsonl":
                write_records([pair_record(pair)], "jsonl", self.stream)
            elif self.fmt == "tsv":
                self._tsv([{"id_a": pair.id_a, "id_b": pair.id_b, "score": pair.score, "text_a": pair.text_a, "text_b": pair.text_b}],
                          ("id_a", "id_b", "score", "text_a", "text_b"))
            else:
                rows.append([f"{pair.score:.4f}", pair.id_a, pair.id_b, _short(pair.text_a), _short(pair.text_b)])
        if self.fmt == "table":
            self._table(title, ["score", "id a", "id b", "text a", "text b"], rows)

    def _tsv(self, records: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
        import csv

        writer = csv.writer(self.stream, delimiter="\t", lineterminator="\n")
        if not self._header:
            writer.writerow(columns)
            self._header = True
        for record in records:
            writer.writerow(["" if record[name] is None else repr(record[name]) if isinstance(record[name], float)
                             else str(record[name]) for name in columns])

    def _table(self, title: str, columns: list[str], rows: list[list[str]]) -> None:
        from rich.table import Table
        from rich.text import Text

        from vizcli.common.console import print_renderables
        from vizcli.common.errors import printable

        table = Table(title=Text(printable(title)), title_justify="left")  # Text: a query's [brackets] are not markup
        for name in columns:
            table.add_column(name, justify="right" if name in ("rank", "score") else "left")
        for row in rows:
            table.add_row(*(Text(printable(cell)) for cell in row))
        print_renderables([table], self.stream)


def _short(text: str | None) -> str:
    from vizcli.common.errors import shorten

    return "" if text is None else shorten(" ".join(text.split()), TABLE_TEXT)
