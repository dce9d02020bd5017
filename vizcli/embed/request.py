"""What a ``vizcli embed`` run is asked to do, as three values, each checked once on construction (before any
model loads):

* ``TextSource``: where the texts come from (arguments, stdin, a file or a folder) and how to read them;
* ``EmbedSettings``: how vectors are made (model, pooling, dtype, batching) and stored (precision, ranges);
* ``EmbedOutput``: where they go (stdout or a file, in which format; a similarity matrix instead).

``vizcli.embed.run.run_embed`` takes them (and the dataset settings, for a dataset output); ``report_dtype`` and
``warn_overflow`` are the notes both kinds of run print on stderr.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from vizcli.common.choices import EmbedFormat, values
from vizcli.common.errors import BadInput
from vizcli.embed.texts import DEFAULT_MAX_LINE_BYTES, InputText

STDOUT_FORMATS = ("jsonl", "json", "csv", "tsv")  # what stdout shows; "table" too for a similarity matrix
FILE_FORMATS = values(EmbedFormat)


@dataclass(frozen=True)
class TextSource:
    """The texts: ``texts`` (none, or ``["-"]``: stdin, one text per line) or ``file`` (.txt, .jsonl with
    ``field``, .csv/.tsv/.parquet with ``column``, or a folder of text files chosen by ``glob``)."""

    texts: tuple[str, ...] = ()
    file: str | None = None
    field: str | None = None
    column: str | None = None
    id_column: str | None = None
    glob: str | None = None
    encoding_errors: str = "strict"
    skip_empty: bool = False
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES

    def __post_init__(self) -> None:
        if self.texts and self.file is not None and list(self.texts) != ["-"]:
            raise BadInput("give texts as arguments or with file=PATH, not both")

    def read_arguments(self) -> dict[str, Any]:
        """``read_texts``' keyword arguments (all but the texts themselves), as an output records them."""
        return {"file": self.file, "field": self.field, "column": self.column, "encoding_errors": self.encoding_errors,
                "skip_empty": self.skip_empty, "max_line_bytes": self.max_line_bytes, "id_column": self.id_column,
                "glob": self.glob}

    def items(self) -> Iterator[InputText]:
        """The texts, read lazily; ``BadInput`` when there are none."""
        from vizcli.embed.texts import peek, read_texts

        first, items = peek(read_texts(list(self.texts), **self.read_arguments()))
        if first is None:
            raise BadInput("no input text: give TEXT arguments, file=PATH, or lines on stdin")
        return items

    @property
    def is_small(self) -> bool:
        """A few texts (arguments or a small file): numpy computes them sooner than torch imports."""
        from vizcli.embed.texts import is_small_input

        return is_small_input(list(self.texts), self.file)


@dataclass(frozen=True)
class EmbedSettings:
    """How the vectors are made and stored. ``pooling`` None is the model's own (see ``Embedder``); ``precision``,
    ``ranges`` (a ``.ranges.json`` file), ``truncate_dim`` and ``keep_text`` apply to dataset outputs."""

    model: str | None = None
    pooling: str | None = None
    normalize: bool | None = None
    prompt: str | None = None
    prefix: str = ""
    dtype: str = "float32"
    device: str = "auto"
    threads: int | None = None
    max_length: int | None = None
    on_overflow: str = "warn"
    batch_size: int = 256
    batch_tokens: int = 4096
    precision: str = "float32"
    calibration: int = 1000
    ranges: str | None = None
    truncate_dim: int | None = None
    keep_text: bool = False
    poolings: tuple[str, ...] | None = field(init=False, default=None)  # ``pooling`` parsed; None: the model's own

    def __post_init__(self) -> None:
        from vizcli.embed.encode import check_options, parse_poolings
        from vizcli.embed.precision import check_precision

        check_options(self.batch_size, self.dtype, self.on_overflow, self.max_length, self.batch_tokens)
        check_precision(self.precision)
        if self.calibration < 2:
            raise BadInput("at least 2 texts", parameter="calibration", value=self.calibration)
        if self.truncate_dim is not None and self.truncate_dim < 1:
            raise BadInput("at least 1 dimension", parameter="truncate_dim", value=self.truncate_dim)
        if self.pooling is not None and self.pooling != "auto":
            object.__setattr__(self, "poolings", parse_poolings(self.pooling))

    def storage_choices(self) -> list[str]:
        """The storage settings given a value other than their default (they apply to dataset outputs only)."""
        defaults = EmbedSettings()
        return [name for name in ("precision", "ranges", "truncate_dim", "keep_text") if getattr(self, name) != getattr(defaults, name)]

    def embedder_arguments(self) -> dict[str, Any]:
        """``Embedder``'s keyword arguments for these settings (storage ones aside)."""
        return {"model": self.model, "pooling": self.poolings, "dtype": self.dtype, "prefix": self.prefix, "prompt": self.prompt,
                "normalize": self.normalize, "batch_size": self.batch_size, "batch_tokens": self.batch_tokens,
                "max_length": self.max_length, "on_overflow": self.on_overflow, "calibration": self.calibration}


@dataclass(frozen=True)
class EmbedOutput:
    """Where the vectors go. ``path`` None or ``"-"``: stdout, shown as ``stdout_format`` (jsonl, json, csv, tsv;
    with ``similarity``: table or json). A file takes its format from its suffix, or ``file_format``."""

    path: str | None = None
    stdout_format: str | None = None
    file_format: str | None = None
    similarity: bool = False
    quiet: bool = False

    def __post_init__(self) -> None:
        shown = ("table", "json") if self.similarity else STDOUT_FORMATS
        if self.stdout_format is not None and self.stdout_format not in shown:
            if self.stdout_format in FILE_FORMATS and not self.similarity:
                raise BadInput(f"sets what stdout shows ({', '.join(shown)}); write {self.stdout_format} to a file with "
                               f"output=FILE.{self.stdout_format} (the suffix names the format) or file_format={self.stdout_format}",
                               parameter="stdout_format", value=self.stdout_format)
            raise BadInput(f"use one of {', '.join(shown)}", parameter="stdout_format", value=self.stdout_format)
        if self.stdout_format is not None and self.to_file:
            raise BadInput(f"sets what stdout shows, and output={self.path} leaves stdout empty: a file takes its format from "
                           f"its suffix (or file_format={self.stdout_format}); drop it", parameter="stdout_format",
                           value=self.stdout_format)
        if self.file_format is not None and self.file_format not in FILE_FORMATS:
            raise BadInput(f"use one of {', '.join(FILE_FORMATS)}", parameter="file_format", value=self.file_format)

    @property
    def to_file(self) -> bool:
        """A regular file (or one to be made), not stdout or a device such as /dev/null."""
        from vizcli.common.files import is_special_file

        return self.path not in (None, "-") and not is_special_file(str(self.path))

    def format(self) -> str:
        """The format written: the file's suffix (or ``file_format``), else ``stdout_format``, else jsonl (similarity: table)."""
        from vizcli.common.files import choose_format, format_for_path

        if self.to_file:
            if self.file_format is None:
                chosen = format_for_path(str(self.path), FILE_FORMATS)
            else:
                chosen = choose_format(self.path, self.file_format, {name: name for name in FILE_FORMATS}, self.file_format)
            if self.similarity and chosen != "json":
                raise BadInput("a similarity matrix is written as JSON: name a .json file, or drop output to print the table",
                               parameter="output", value=self.path)
            return chosen
        return self.file_format or self.stdout_format or ("table" if self.similarity else "jsonl")


def report_dtype(encoder: Any, asked: str, quiet: bool) -> None:
    """Say what ``dtype="auto"`` picked, and warn when bfloat16 was asked for but measured slower (stderr)."""
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


def warn_overflow(truncated: int, skipped: int, limit: int, first: str | None, where: str = "") -> None:
    """The texts longer than ``limit`` tokens, counted (stderr)."""
    from vizcli.common.console import warn

    if truncated:
        texts = "1 text" if truncated == 1 else f"{truncated:,} texts"
        warn(f"{texts} longer than {limit} tokens {'was' if truncated == 1 else 'were'} truncated and flagged "
             f"({where or f'first: {first}'}); on_overflow=error or on_overflow=skip changes this")
    if skipped:
        texts = "1 text" if skipped == 1 else f"{skipped:,} texts"
        warn(f"{texts} longer than {limit} tokens {'was' if skipped == 1 else 'were'} skipped (first: {first})")
