"""Query vectors: texts embedded the way the output was (its recorded model, pooling, prefix,
normalization, truncation and compute dtype), or the stored vectors of ids already in it.

Texts go through ``vizcli.embed``'s own path (``load_bert`` / ``load_numpy_bert`` and
``embedder.vectors``), so a query and a stored row of the same text get the same vector; they are
kept in float32 whatever precision the output stores (rescoring wants them exact).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from vizcli.common.errors import BadInput

SMALL_QUERY_BATCH = 8  # up to this many texts in all: numpy's encoder (no torch import) when it computes the same


class QueryEncoder:
    """The model an output records, loaded once: ``encoder(texts)`` is ``float32 [Q, D]``.

    ``query_prefix`` replaces the recorded prefix (models trained with "query: " / "passage: ");
    ``few``: only a handful of texts will come, so the numpy encoder is used where it computes the same.
    """

    def __init__(self, output: Any, device: str = "auto", query_prefix: str | None = None, few: bool = False) -> None:
        from vizcli.embed.embedder import CorpusOptions
        from vizcli.embed.loading import load_bert, load_numpy_bert, numpy_path_fits, weights_sha256

        settings = output.metadata.get("settings")
        if not isinstance(settings, dict):
            raise BadInput("records no embedding settings (written before vizcli recorded them); search it by --id, "
                           "or embed it again to search by text", parameter="dataset", value=output.path)
        model, dtype = settings.get("model"), str(settings.get("dtype") or "float32")
        if few and numpy_path_fits(model, dtype, device):
            self.encoder = load_numpy_bert(model)
        else:
            from vizcli.common.runtime import resolve_device

            self.encoder = load_bert(model, dtype=dtype, device=str(resolve_device(device)))
        recorded = output.metadata.get("weights_sha256")
        if recorded and weights_sha256(self.encoder) != recorded:
            raise BadInput(f"was embedded with other weights than {self.encoder.path} has now (weights_sha256 differs); "
                           "query texts would land in another space: search by --id, or embed it again",
                           parameter="dataset", value=output.path)
        self.options = CorpusOptions(
            poolings=(output.pooling,), normalize=bool(settings.get("normalize")),
            prefix=str(settings.get("prefix") or "") if query_prefix is None else query_prefix,
            truncate_dim=settings.get("truncate_dim"), batch_size=int(settings.get("batch_size") or 256),
            batch_tokens=settings.get("batch_tokens"), max_length=settings.get("max_length"), on_overflow="warn")
        self.pooling = output.pooling

    def __call__(self, texts: list[str]) -> Any:
        import numpy as np

        from vizcli.embed.embedder import vectors
        from vizcli.embed.texts import InputText

        items = [InputText(number, text, f"query {number + 1}") for number, text in enumerate(texts)]
        rows = sorted(vectors(self.encoder, items, self.options), key=lambda row: row.index)
        if not rows:
            return np.zeros((0, self.encoder.hidden_size), dtype=np.float32)
        return np.stack([np.asarray(row.vectors[self.pooling], dtype=np.float32) for row in rows])


def vectors_of_ids(blocks: Iterable[Any], ids: list[str], dataset: str) -> tuple[Any, Any]:
    """``(float32 [Q, D], int [Q])``: the stored vectors and row numbers of ``ids``, found in one pass over ``blocks``."""
    import numpy as np

    wanted = {str(key): None for key in ids}
    found: dict[str, tuple[Any, int]] = {}
    for block in blocks:
        for offset, key in enumerate(block.ids):
            if key in wanted and key not in found:
                found[key] = (np.array(block.vectors[offset], dtype=np.float32), block.start + offset)
        if len(found) == len(wanted):
            break
    missing = [key for key in wanted if key not in found]
    if missing:
        raise BadInput(f"holds no row with id {missing[0]!r}" + (f" (nor {len(missing) - 1} more of the ids asked for)"
                       if len(missing) > 1 else "") + "; ids are the output's id column", parameter="dataset", value=dataset)
    return np.stack([found[str(key)][0] for key in ids]), np.array([found[str(key)][1] for key in ids], dtype=np.int64)


def batches(texts: Iterable[str], size: int) -> Iterator[list[str]]:
    """``texts`` in lists of at most ``size`` (read lazily, so stdin queries run as they arrive)."""
    if size < 1:
        raise BadInput("use at least 1", parameter="batch_size", value=size)
    batch: list[str] = []
    for text in texts:
        batch.append(text)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
