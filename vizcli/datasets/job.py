"""What a dataset run is given: the command's ``DatasetJob``, its input as ``Piece``s of ``Item``s, and
the run's ``DatasetSettings`` (every dataset flag, checked by ``datasets.options``).

Both engines read these: ``datasets.run`` (the run, and the local engine) and ``datasets.ray_engine``;
neither imports the other's module for them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from vizcli.datasets.keys import Shard

STALL_TIMEOUT = 600.0  # seconds a Ray run may go without finishing a unit or writing a file before it ends
COMMIT_SECONDS = 30.0  # finished rows of a long unit are written at least this often


@dataclass(frozen=True)
class DatasetSettings:
    """How a dataset run is run and stored: every dataset flag, checked (``datasets.options``)."""

    output: str
    resume: bool = False
    shard: Shard = Shard()
    shard_format: str = "safetensors"
    unit_megabytes: float = 16.0
    engine: str = "local"
    workers: int = 1  # Ray actors, one model each
    threads: int = 1  # torch threads per Ray actor
    ray_address: str | None = None
    ray_timeout: float = 60.0  # seconds to join the cluster at ray_address
    on_error: str = "skip"
    quiet: bool = False
    stall_timeout: float = STALL_TIMEOUT  # Ray: seconds without progress before the run ends with why
    commit_seconds: float = COMMIT_SECONDS  # a unit's finished rows are written at least this often


@dataclass(frozen=True)
class Item:
    """One input row of a dataset: its key (the output's key column), its 0-based position in the
    whole input, the output rows it is expected to give (for unit sizing), and the value itself."""

    key: str
    position: int
    rows: int
    value: Any


class Piece(Protocol):
    """A part of the input a Ray task (or this process) reads: yields its items in input order."""

    def items(self) -> Iterator[Item]: ...


@dataclass(frozen=True)
class ItemsPiece:
    """Items already in memory (the images of an annotation file, texts given as arguments)."""

    values: tuple[Item, ...]

    def items(self) -> Iterator[Item]:
        yield from self.values


@dataclass
class DatasetJob:
    """What a command's dataset run computes (see ``datasets.run``'s docstring)."""

    command: str  # "roi", "embed": for messages
    key: str  # the rows' key column ("image", "id"); --resume skips items whose key is on disk
    schema: Any  # pyarrow.Schema of the rows
    metadata: dict[str, Any]  # recorded in every unit: everything that changes the rows
    worker: type  # the callable class: input batch dict → result batch dict
    worker_kwargs: dict[str, Any]
    to_batch: Callable[[list[Any]], dict[str, Any]]  # item values → the callable's input batch
    to_rows: Callable[[dict[str, Any], Any], Any]  # (result batch, schema) → pyarrow.Table of rows
    row_bytes: int  # stored bytes per row: units hold about --shard-size MB …
    max_unit_rows: int | None = None  # … and at most this many rows, so a run spreads over the workers
    min_slice_items: int = 1  # a unit's slices hold at least this many items (a job whose rows depend on how its items
    # are batched together, like embed's length-sorted batches, keeps its whole unit in one call: rows stay bit-exact)
    problems_of: Callable[[dict[str, Any], dict[str, Any]], list[dict[str, Any]]] = lambda batch, result: []  # rows dropped
    tally_of: Callable[[dict[str, Any]], dict[str, int]] = lambda result: {}  # counts the summary reports (truncated texts)
    array_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    actor_env: dict[str, str] = field(default_factory=dict)  # environment of the Ray actors
    early_problems: list[dict[str, Any]] = field(default_factory=list)  # found while listing (annotation files)
    local_worker: Any = None  # an instance already built here (the local engine uses it instead of building one)
