"""Reading texts for ``embed``: arguments, stdin or files, one text per input line.

Every text keeps its 0-based ``index`` in the input (line number − 1), so output row *i*
can always be matched to input line *i*, also when empty lines are skipped.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from vizcli.common.choices import EncodingErrors, values
from vizcli.common.errors import BadInput
from vizcli.common.files import checked_glob, checked_os_call, is_folder, require_file
from vizcli.common.parsing import is_unicode, parse_json

DEFAULT_MAX_LINE_BYTES = 1 << 20  # 1 MiB: far beyond any model's 512 tokens, small enough to stop /dev/zero
READ_CHUNK = 1 << 16


@dataclass(frozen=True)
class InputText:
    index: int  # 0-based position in the input (line number - 1)
    text: str
    source: str  # "argument 2", "stdin line 3", "a.csv line 4"
    id: str = ""  # the --id-column value, a text file's relative path; "" means the index

    @property
    def key(self) -> str:
        """The row's identity in dataset outputs: its id, else its index."""
        return self.id or str(self.index)


def read_texts(
    arguments: list[str],
    file: str | None = None,
    field: str | None = None,
    column: str | None = None,
    encoding_errors: str = "strict",
    skip_empty: bool = False,
    stdin: IO[bytes] | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    id_column: str | None = None,
    glob: str | None = None,
    row_groups: tuple[int, ...] | None = None,
    start_index: int = 0,
) -> Iterator[InputText]:
    """Yield the texts to embed, lazily (stdin and files are streamed line by line).

    ``row_groups`` (a Parquet file): read only those row groups, whose first row has index ``start_index``.

    No line is read past ``max_line_bytes``: a file without newlines (``/dev/zero``) is refused
    after that many bytes instead of growing in memory.
    """
    if max_line_bytes < 1:
        raise BadInput("must be at least 1", parameter="max_line_bytes", value=max_line_bytes)
    if encoding_errors not in values(EncodingErrors):
        raise BadInput("use strict or replace", parameter="encoding_errors", value=encoding_errors)
    if file is not None and arguments and arguments != ["-"]:
        raise BadInput("give texts as arguments or with file=PATH, not both")
    if file is not None:
        items = _from_file(file, field, column, encoding_errors, max_line_bytes, id_column, glob, row_groups, start_index)
    elif arguments and arguments != ["-"]:
        items = (InputText(i, text, f"argument {i + 1}") for i, text in enumerate(arguments))
    else:
        stream = stdin if stdin is not None else sys.stdin.buffer
        items = _from_lines(stream, "stdin", encoding_errors, max_line_bytes)
    for item in items:
        if "\x00" in item.text:
            raise BadInput(f"{item.source}: contains a NUL byte; remove it (binary input is not text)")
        if not is_unicode(item.text) or not is_unicode(item.id):
            if encoding_errors != "replace":
                raise BadInput(f"{item.source}: holds a lone surrogate (text that is not Unicode, e.g. undecodable bytes in "
                               "an argument or a \\ud800 escape in JSON); fix it, or pass encoding_errors='replace'")
            item = InputText(item.index, _replace_surrogates(item.text), item.source, _replace_surrogates(item.id))
        if skip_empty and not item.text.strip():
            continue
        yield item


def _replace_surrogates(text: str) -> str:
    return "".join("\ufffd" if 0xD800 <= ord(char) <= 0xDFFF else char for char in text)  # as decoding with 'replace' does


def _bounded_lines(stream: IO[bytes], name: str, limit: int) -> Iterator[bytes]:
    """Lines of ``stream`` (newline kept), none longer than ``limit`` bytes; a UTF-8 BOM is dropped."""
    index = 0
    while True:
        parts: list[bytes] = []
        size = 0
        while size <= limit:  # in chunks, so a signal is handled between them even on an endless line
            piece = stream.readline(min(READ_CHUNK, limit + 1 - size))
            if not piece:
                break
            parts.append(piece)
            size += len(piece)
            if piece.endswith(b"\n"):
                break
        if not parts:
            return
        raw = b"".join(parts)
        if size > limit and not (size == limit + 1 and raw.endswith(b"\n")):
            raise BadInput(
                f"{name} line {index + 1}: longer than {limit:,} bytes; split it, or raise max_line_bytes=N"
            )
        if index == 0:
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        yield raw
        index += 1


def _from_lines(stream: IO[bytes], name: str, encoding_errors: str, limit: int) -> Iterator[InputText]:
    for index, raw in enumerate(_bounded_lines(stream, name, limit)):
        yield InputText(index, _decode(raw, f"{name} line {index + 1}", encoding_errors).rstrip("\r\n"), f"{name} line {index + 1}")


def _decode(raw: bytes, where: str, encoding_errors: str) -> str:
    try:
        return raw.decode("utf-8", errors=encoding_errors)
    except UnicodeDecodeError as error:
        raise BadInput(
            f"{where}: invalid UTF-8 at byte {error.start + 1}; fix the text or pass encoding_errors='replace'"
        ) from None


def _from_file(path: str, field: str | None, column: str | None, encoding_errors: str, limit: int,
               id_column: str | None = None, glob: str | None = None, row_groups: tuple[int, ...] | None = None,
               start_index: int = 0) -> Iterator[InputText]:
    if is_folder(path):
        return _from_folder(Path(path), glob or "**/*.txt", encoding_errors, limit)
    file = require_file(path, "file", "a .txt, .jsonl, .csv, .tsv or .parquet file, or a folder of text files")
    suffix = file.suffix.lower()
    if suffix == ".parquet":
        if not column:
            raise BadInput("a .parquet file needs column=NAME (the column holding the text)", parameter="file", value=path)
        return _from_parquet(file, column, id_column, row_groups, start_index, limit)
    if suffix == ".jsonl":
        if not field:
            raise BadInput("a .jsonl file needs field=NAME (the key holding the text)", parameter="file", value=path)
        return _from_jsonl(file, field, encoding_errors, limit, id_column)
    if suffix in (".csv", ".tsv"):
        if not column:
            raise BadInput(f"a {suffix} file needs column=NAME (the header of the text column)", parameter="file", value=path)
        return _from_table(file, column, "\t" if suffix == ".tsv" else ",", encoding_errors, limit, id_column)
    if id_column:
        raise BadInput("a plain text file has no columns; ids are line numbers", parameter="id_column", value=id_column)
    return _from_open_lines(file, encoding_errors, limit)


def _from_folder(folder: Path, glob: str, encoding_errors: str, limit: int) -> Iterator[InputText]:
    """One document per file (sorted by relative path, which is its id), each at most ``limit`` bytes."""
    files = checked_glob(folder, glob)
    if not files:
        raise BadInput(f"no files match {glob!r}; choose them with glob=PATTERN", parameter="file", value=str(folder))
    for index, path in enumerate(files):
        relative = path.relative_to(folder).as_posix()
        size = checked_os_call(path.stat, "file", str(path)).st_size
        if size > limit:
            raise BadInput(f"{path}: {size:,} bytes, more than max_line_bytes={limit:,}; split it, or raise the limit")
        data = checked_os_call(path.read_bytes, "file", str(path)).removeprefix(b"\xef\xbb\xbf")
        yield InputText(index, _decode(data, str(path), encoding_errors), str(path), id=relative)


def _open_parquet(file: Path, column: str | None, id_column: str | None) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(file)
    except (pa.ArrowException, OSError) as error:
        raise BadInput(f"cannot be read as Parquet ({error})", parameter="file", value=str(file)) from None
    names = parquet.schema_arrow.names
    for name in (column, id_column):
        if name is not None and name not in names:
            raise BadInput(f"no column {name!r}; the file has {', '.join(names)}", parameter="file", value=str(file))
    return parquet


def parquet_row_groups(file: Path, column: str | None, id_column: str | None) -> list[tuple[int, int]]:
    """(number, rows) of each row group of a Parquet corpus, from its footer."""
    parquet = _open_parquet(file, column, id_column)
    return [(number, parquet.metadata.row_group(number).num_rows) for number in range(parquet.num_row_groups)]


def _from_parquet(file: Path, column: str, id_column: str | None, row_groups: tuple[int, ...] | None = None,
                  start_index: int = 0, limit: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[InputText]:
    """Rows of a Parquet file, one record batch at a time (never the whole file in memory)."""
    import pyarrow as pa

    parquet = _open_parquet(file, column, id_column)
    wanted = [column] + ([id_column] if id_column and id_column != column else [])
    index = start_index
    batches = parquet.iter_batches(batch_size=4096, columns=wanted, row_groups=list(row_groups) if row_groups is not None else None)
    try:
        yield from _parquet_texts(batches, file, column, id_column, index, limit)
    except (pa.ArrowException, OSError) as error:
        raise BadInput(f"cannot be read as Parquet ({' '.join(str(error).split())[:200]})", parameter="file", value=str(file)) from None


def _parquet_texts(batches: Iterator[Any], file: Path, column: str, id_column: str | None, index: int,
                   limit: int) -> Iterator[InputText]:
    import pyarrow.compute as pc

    for batch in batches:
        sizes = pc.binary_length(batch.column(column))
        longest = pc.max(sizes).as_py()
        if longest is not None and longest > limit:
            row = index + pc.index(sizes, longest).as_py() + 1
            raise BadInput(f"{file} row {row}: column {column!r} holds {longest:,} bytes, more than max_line_bytes={limit:,}; "
                           "split the text, or raise the limit")
        texts = batch.column(column).to_pylist()
        ids = batch.column(id_column).to_pylist() if id_column else [None] * len(texts)
        for text, identity in zip(texts, ids):
            where = f"{file} row {index + 1}"
            if not isinstance(text, str):
                raise BadInput(f"{where}: column {column!r} holds {type(text).__name__}, not text")
            if id_column is not None and (identity is None or str(identity) == ""):
                raise BadInput(f"{where}: id column {id_column!r} is empty; every row needs an id (row numbers could clash with real ids)")
            yield InputText(index, text, where, id="" if identity is None else str(identity))
            index += 1


def _open(file: Path) -> IO[bytes]:
    return checked_os_call(lambda: open(file, "rb"), "file", str(file))


def _from_open_lines(file: Path, encoding_errors: str, limit: int) -> Iterator[InputText]:
    with _open(file) as stream:
        yield from _from_lines(stream, str(file), encoding_errors, limit)


def _from_jsonl(file: Path, field: str, encoding_errors: str, limit: int, id_column: str | None = None) -> Iterator[InputText]:
    with _open(file) as stream:
        for index, raw in enumerate(_bounded_lines(stream, str(file), limit)):
            where = f"{file} line {index + 1}"
            line = _decode(raw, where, encoding_errors)
            record = parse_json(line, "file", str(file), where=f"line {index + 1}: ")
            if not isinstance(record, dict) or field not in record:
                raise BadInput(f"{where}: no field {field!r}; check field=NAME")
            value = record[field]
            if not isinstance(value, str):
                raise BadInput(f"{where}: field {field!r} is {type(value).__name__}, not text")
            if id_column is not None and record.get(id_column) is None:
                raise BadInput(f"{where}: no id field {id_column!r}; check id_column=NAME")
            yield InputText(index, value, where, id=str(record[id_column]) if id_column else "")


def _from_table(file: Path, column: str, delimiter: str, encoding_errors: str, limit: int,
                id_column: str | None = None) -> Iterator[InputText]:
    previous_limit = csv.field_size_limit(limit)  # a field past the limit is a csv.Error, reported with its line
    try:
        yield from _table_rows(file, column, delimiter, encoding_errors, id_column)
    finally:
        csv.field_size_limit(previous_limit)  # the limit is global to the csv module: put it back


def _table_rows(file: Path, column: str, delimiter: str, encoding_errors: str, id_column: str | None = None) -> Iterator[InputText]:
    with _open(file) as raw_stream:
        text_stream = io.TextIOWrapper(raw_stream, encoding="utf-8-sig", errors=encoding_errors, newline="")
        reader = csv.reader(text_stream, delimiter=delimiter, strict=True)  # an unclosed quote is an error
        try:
            header = next(reader)
        except StopIteration:
            raise BadInput(f"is empty; it needs a header row with {column!r}", parameter="file", value=file) from None
        except UnicodeDecodeError:
            raise BadInput(f"file={str(file)!r} line 1: invalid UTF-8; fix it or pass encoding_errors='replace'") from None
        except csv.Error as error:
            raise BadInput(f"file={str(file)!r} line 1: {error} (the header row)") from None
        if column not in header:
            raise BadInput(f"no column {column!r}; the header has {', '.join(header)}", parameter="file", value=file)
        position = header.index(column)
        if id_column is not None and id_column not in header:
            raise BadInput(f"no column {id_column!r}; the header has {', '.join(header)}", parameter="id_column", value=id_column)
        id_position = header.index(id_column) if id_column is not None else None
        index = 0
        while True:
            line_number = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError:
                raise BadInput(f"file={str(file)!r} line {line_number}: invalid UTF-8; fix it or pass encoding_errors='replace'") from None
            except csv.Error as error:
                hint = "raise max_line_bytes=N if the field is right" if "field larger" in str(error) else "close the quote"
                raise BadInput(f"file={str(file)!r} line {line_number}: {error}; {hint}") from None
            text = row[position] if position < len(row) else ""
            identity = row[id_position] if id_position is not None and id_position < len(row) else ""
            if id_position is not None and not identity:
                raise BadInput(f"file={str(file)!r} line {line_number}: id column {id_column!r} is empty; every row needs an id "
                               "(row numbers could clash with real ids)")
            yield InputText(index, text, f"{file} line {line_number}", id=identity)
            index += 1


def peek_many(items: Iterable[InputText], count: int) -> tuple[list[InputText], Iterator[InputText]]:
    """The first ``count`` items and an iterator that still yields them."""
    import itertools

    iterator = iter(items)
    head = list(itertools.islice(iterator, count))
    return head, itertools.chain(head, iterator)


def peek(items: Iterable[InputText]) -> tuple[InputText | None, Iterator[InputText]]:
    """The first item and an iterator that still yields it (to detect empty input early)."""
    iterator = iter(items)
    first = next(iterator, None)
    if first is None:
        return None, iter(())

    def _chain():
        yield first
        yield from iterator

    return first, _chain()


SMALL_INPUT_BYTES = 8192  # texts up to this size (about 2,000 tokens) embed faster in numpy than torch's import takes


def is_small_input(texts: list[str], file: str | None) -> bool:
    """Texts given as arguments, or a file, of at most ``SMALL_INPUT_BYTES`` (stdin: unknown, so no)."""
    import os

    if file is not None:
        try:
            return os.path.isfile(file) and os.path.getsize(file) <= SMALL_INPUT_BYTES
        except OSError:
            return False
    return bool(texts) and texts != ["-"] and sum(len(text.encode("utf-8", "replace")) for text in texts) <= SMALL_INPUT_BYTES
