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

from vizcli.embed.encode import BATCH_SIZE, BATCH_TOKENS, Embedding, Encoder, check_options
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


class Vectors:
    """The embeddings of ``items``, computed as they are iterated (once): the prefix added before
    tokenization, then truncated to ``truncate_dim`` and normalised (Matryoshka order); the texts
    come back without the prefix. ``overflow`` counts the truncated and skipped texts seen so far."""

    def __init__(self, encoder: Encoder, items: Iterable[InputText], options: CorpusOptions,
                 progress: Callable[[int], None] | None = None) -> None:
        prefixed = (replace(item, text=options.prefix + item.text) for item in items) if options.prefix else items
        self.options = options
        self._stream = encoder.stream(prefixed, options.poolings, batch_size=options.batch_size,
                                      batch_tokens=options.batch_tokens, max_length=options.max_length,
                                      on_overflow=options.on_overflow, normalize=options.normalize and options.truncate_dim is None,
                                      progress=progress)
        self.overflow = self._stream.overflow

    def __iter__(self) -> Iterator[Embedding]:
        import numpy as np

        prefix, cut, normalize = self.options.prefix, self.options.truncate_dim, self.options.normalize
        for row in self._stream:
            if prefix:
                row.text = row.text[len(prefix):]
            if cut is not None:
                for name, vector in row.vectors.items():
                    vector = vector[:cut]
                    if normalize:
                        vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
                    row.vectors[name] = vector
            yield row


def vectors(encoder: Encoder, items: Iterable[InputText], options: CorpusOptions,
            progress: Callable[[int], None] | None = None) -> Vectors:
    """``Vectors(encoder, items, options, progress)``: the embeddings of ``items``, lazily."""
    return Vectors(encoder, items, options, progress)


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
    ``embed(items)`` streams ``Embedding`` rows for ``InputText`` items instead (the few-texts outputs).

    ``pooling=None`` (or ``"auto"``) is the model's own, and ``normalize=None`` follows it
    (``vizcli.embed.model_settings.model_pooling``): for the bundled all-MiniLM-L6-v2, mean pooling
    and unit length. ``prompt`` names one of the model's prompts, used as ``prefix``.
    ``encoder``: a model already loaded (``load_bert`` / ``load_numpy_bert``), instead of loading
    ``model`` with ``dtype`` on ``device``. With int8/uint8 ``precision``, ``ranges`` come from an
    earlier run, else from the first ``calibration`` of ``calibration_texts``.
    """

    def __init__(
        self,
        model: str | None = None,
        pooling: str | tuple[str, ...] | list[str] | None = None,
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
        keep_text: bool = False,
        *,
        encoder: Encoder | None = None,
        calibration: int = 1000,
        calibration_texts: Iterable[InputText] | None = None,
    ) -> None:
        import numpy as np

        from vizcli.common.errors import BadInput
        from vizcli.embed.model_settings import model_pooling

        precision = check_precision(precision)
        check_options(batch_size, dtype, on_overflow, max_length, batch_tokens)
        if encoder is None:
            from vizcli.common.runtime import resolve_device
            from vizcli.embed.loading import load_bert

            if threads is not None:
                import torch

                torch.set_num_threads(threads)
            encoder = load_bert(model, dtype=dtype, device=str(resolve_device(device)))
        self.encoder, self.model = encoder, model
        poolings, normalize, prefix = model_pooling(pooling, normalize, prompt, prefix, encoder.path, encoder.has_pooler)
        width = encoder.hidden_size
        if truncate_dim is not None and not 1 <= truncate_dim <= width:
            raise BadInput(f"use 1..{width} (the model's width)", parameter="truncate_dim", value=truncate_dim)
        self.options = CorpusOptions(
            poolings=poolings, normalize=normalize, prefix=prefix, precision=precision, calibration=calibration,
            ranges={name: np.asarray(value, dtype=np.float32).reshape(2, truncate_dim or width) for name, value in ranges.items()}
            if ranges else None,
            truncate_dim=truncate_dim, keep_text=keep_text, batch_size=batch_size, batch_tokens=batch_tokens,
            max_length=max_length, on_overflow=on_overflow,
        )
        if precision in NEEDS_RANGES and ranges is None:
            if calibration_texts is None:
                raise BadInput("int8/uint8 need ranges: {pooling: [[min...], [max...]]} (vizcli embed saves them to *.ranges.json) "
                               "or calibration_texts", parameter="ranges")
            self.options = replace(self.options, ranges=calibrate(encoder, calibration_texts, self.options))

    @property
    def dimensions(self) -> int:
        """The width of each stored vector before bit packing: ``truncate_dim``, else the model's."""
        return self.options.truncate_dim or self.encoder.hidden_size

    def worker_settings(self) -> dict[str, Any]:
        """The keyword arguments that build this embedder again elsewhere (a Ray actor), every choice
        resolved here (the model's pooling, ``dtype="auto"``, calibrated ranges), as JSON reads them back."""
        options = self.options
        return {"model": self.model, "pooling": list(options.poolings),
                "dtype": self.encoder.dtype, "precision": options.precision, "prefix": options.prefix,
                "normalize": options.normalize, "truncate_dim": options.truncate_dim, "batch_size": options.batch_size,
                "batch_tokens": options.batch_tokens, "max_length": options.max_length, "on_overflow": options.on_overflow,
                "ranges": {name: value.tolist() for name, value in options.ranges.items()}
                if options.ranges is not None and options.precision in NEEDS_RANGES else None}

    def embed(self, items: Iterable[InputText], progress: Callable[[int], None] | None = None) -> Vectors:
        """One ``Embedding`` per kept item, in input order, computed as it is iterated (``Vectors``)."""
        return vectors(self.encoder, items, self.options, progress)

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
        rows = list(self.embed(items))
        return embedding_columns(rows, self.options, self.options.ranges, self.encoder.hidden_size)
