"""``Embedder``: a model loaded once, called on batch dicts of texts (the shape Ray Data maps).

    >>> embedder = Embedder(pooling="mean", normalize=True)
    >>> batch = embedder({"id": ["a", "b"], "text": ["a cat", "a dog"]})
    >>> batch["mean"].shape
    (2, 384)

Under Ray Data: ``ds.map_batches(Embedder, fn_constructor_kwargs={"pooling": "mean"},
batch_size=4096, concurrency=2)``. The numbers are those of the local engine (``vizcli embed -o
out.parquet``): the same tokenization, length-sorted batches, pooling, truncation, normalization
and stored precision, so ``vizcli embed --engine ray`` writes what ``--engine local`` writes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from vizcli.embed.encode import BATCH_SIZE, BATCH_TOKENS, Embedding, Encoder, parse_poolings
from vizcli.embed.precision import NEEDS_RANGES, check_precision, quantize, ranges_of
from vizcli.embed.texts import InputText


@dataclass
class CorpusOptions:
    """How vectors are made and stored (everything but the input and the output)."""

    poolings: tuple[str, ...] = ("mean",)
    normalize: bool = False
    prefix: str = ""
    precision: str = "float32"
    calibration: int = 1000  # texts whose vectors set the int8/uint8 ranges
    ranges: dict[str, Any] | None = None  # given ranges (from --ranges FILE), pooling → [2, D]
    truncate_dim: int | None = None
    keep_text: bool = False
    batch_size: int = BATCH_SIZE
    batch_tokens: int | None = BATCH_TOKENS
    max_length: int | None = None
    on_overflow: str = "warn"


def vectors(encoder: Encoder, items: Iterable[InputText], options: CorpusOptions,
             progress: Callable[[int], None] | None = None) -> Iterator[Embedding]:
    """Embeddings with the prefix added before tokenization, truncated to ``truncate_dim`` and then
    normalised (Matryoshka order); the texts come back without the prefix."""
    import numpy as np

    prefixed = (replace(item, text=options.prefix + item.text) for item in items) if options.prefix else items
    cut = options.truncate_dim
    stream = encoder.stream(prefixed, options.poolings, batch_size=options.batch_size, batch_tokens=options.batch_tokens,
                            max_length=options.max_length,
                            on_overflow=options.on_overflow, normalize=options.normalize and cut is None, progress=progress)
    for row in stream:
        if options.prefix:
            row.text = row.text[len(options.prefix):]
        if cut is not None:
            for name, vector in row.vectors.items():
                vector = vector[:cut]
                if options.normalize:
                    vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
                row.vectors[name] = vector
        yield row


def calibrate(encoder: Encoder, items: Iterable[InputText], options: CorpusOptions) -> dict[str, Any]:
    """int8/uint8 ranges per pooling from the first ``options.calibration`` texts."""
    import numpy as np

    sample = list(itertools.islice(items, options.calibration))
    rows = list(vectors(encoder, sample, options))
    return {name: ranges_of(np.stack([row.vectors[name] for row in rows])) for name in options.poolings}


def int8_receipt(encoder: Encoder, sample: list[InputText], options: CorpusOptions) -> dict[str, Any]:
    """What int8 lost on ``sample`` (the first ``--calibration`` texts): each pooling's min and mean
    cosine against float32 vectors of the same texts, made the same way (``vizcli.embed.int8``)."""
    import numpy as np

    from vizcli.embed.int8 import quality_receipt
    from vizcli.embed.loading import load_bert

    reference = load_bert(str(encoder.path), dtype="float32", device="cpu")
    rows = {"int8": list(vectors(encoder, sample, options)), "float32": list(vectors(reference, sample, options))}
    stacked = {kind: {name: np.stack([row.vectors[name] for row in found]) if found else np.zeros((0, 1), np.float32)
                      for name in options.poolings} for kind, found in rows.items()}
    return quality_receipt(stacked["int8"], stacked["float32"])


def embedding_columns(rows: list[Embedding], options: CorpusOptions, ranges: dict[str, Any] | None, width: int) -> dict[str, Any]:
    """The rows as a batch dict of numpy arrays: id, index, tokens, truncated, text, and one stored
    ``[N, D]`` array per pooling (quantized to ``options.precision``)."""
    import numpy as np

    columns: dict[str, Any] = {
        "id": np.array([row.id for row in rows], dtype=object), "index": np.array([row.index for row in rows], dtype=np.int64),
        "tokens": np.array([row.tokens for row in rows], dtype=np.int32), "truncated": np.array([row.truncated for row in rows], dtype=bool),
        "text": np.array([row.text for row in rows], dtype=object),
    }
    dimensions = options.truncate_dim or width
    for name in options.poolings:
        stacked = np.stack([row.vectors[name] for row in rows]) if rows else np.zeros((0, dimensions), np.float32)
        columns[name] = quantize(stacked, options.precision, ranges.get(name) if ranges else None)
    return columns




class Embedder:
    """Vectors for batches of texts: ``{"id": [...], "text": [...]}`` in, the same dict out with
    ``index``, ``tokens``, ``truncated`` and one ``[N, D]`` array per pooling added (in ``precision``).

    ``id`` is optional (row numbers then); ``index`` is kept when given (the row's position in
    the whole input). Rows that ``on_overflow="skip"`` drops are missing from the result.
    ``pooling="auto"`` and ``prompt`` read the model folder's sentence-transformers files, as
    ``vizcli embed`` does; ``normalize=None`` then follows the model's Normalize module.
    """

    def __init__(
        self,
        model: str | None = None,
        pooling: str | tuple[str, ...] = "mean",
        dtype: str = "float32",
        precision: str = "float32",
        prefix: str = "",
        prompt: str | None = None,
        normalize: bool | None = None,
        ranges: dict[str, Any] | None = None,
        truncate_dim: int | None = None,
        batch_size: int = BATCH_SIZE,
        batch_tokens: int | None = BATCH_TOKENS,
        max_length: int | None = None,
        on_overflow: str = "warn",
        device: str = "auto",
        threads: int | None = None,
    ) -> None:
        import numpy as np

        from vizcli.common.runtime import resolve_device
        from vizcli.embed.loading import load_bert

        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        text = ",".join(pooling) if isinstance(pooling, tuple) else pooling
        if text == "auto" or prompt is not None:
            from vizcli.embed.loading import locate_model
            from vizcli.embed.model_settings import resolve

            text, normalize, prefix = resolve(text, normalize, prompt, prefix, locate_model(model)[0])
        precision = check_precision(precision)
        self.encoder = load_bert(model, dtype=dtype, device=str(resolve_device(device)))
        width = truncate_dim or self.encoder.hidden_size
        if precision in NEEDS_RANGES and ranges is None:
            from vizcli.common.errors import BadInput

            raise BadInput("int8/uint8 need ranges: {pooling: [[min...], [max...]]} (vizcli embed saves them to *.ranges.json)",
                           parameter="ranges")
        self.options = CorpusOptions(
            poolings=parse_poolings(text), normalize=bool(normalize), prefix=prefix, precision=precision,
            ranges={name: np.asarray(value, dtype=np.float32).reshape(2, width) for name, value in ranges.items()} if ranges else None,
            truncate_dim=truncate_dim, batch_size=batch_size, batch_tokens=batch_tokens, max_length=max_length,
            on_overflow=on_overflow,
        )

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        texts = [str(text) for text in batch["text"]]
        ids = batch.get("id")
        indices = batch.get("index")
        items = [
            InputText(int(indices[row]) if indices is not None else row, text,
                      f"row {int(indices[row]) + 1 if indices is not None else row + 1}"
                      + (f" (id {ids[row]})" if ids is not None and str(ids[row]) != str(indices[row] if indices is not None else row) else ""),
                      str(ids[row]) if ids is not None else "")
            for row, text in enumerate(texts)
        ]
        rows = list(vectors(self.encoder, items, self.options))
        return embedding_columns(rows, self.options, self.options.ranges, self.encoder.hidden_size)
