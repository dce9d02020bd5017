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

from typing import Any

from vizcli.embed.corpus_run import CorpusOptions, embedding_columns, vectors
from vizcli.embed.encode import BATCH_SIZE, BATCH_TOKENS, parse_poolings
from vizcli.embed.precision import NEEDS_RANGES, check_precision
from vizcli.embed.texts import InputText


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
            InputText(int(indices[row]) if indices is not None else row, text, f"row {row + 1}",
                      str(ids[row]) if ids is not None else "")
            for row, text in enumerate(texts)
        ]
        rows = list(vectors(self.encoder, items, self.options))
        return embedding_columns(rows, self.options, self.options.ranges, self.encoder.hidden_size)
