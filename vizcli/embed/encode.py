"""Sentence vectors from a loaded encoder, streamed in bounded memory.

``Encoder.stream`` (and ``embed_texts``) tokenizes a window of texts, sorts it by length into
batches, runs them under ``torch.inference_mode`` and yields one ``Embedding`` per input, in
input order; ``Encoder.encode`` does the same for a list and returns stacked vectors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vizcli.common.choices import EmbedDtype, OnOverflow, values
from vizcli.common.errors import BadInput
from vizcli.embed.texts import InputText

POOLING_NAMES = ("pooler", "cls", "mean", "max")
DTYPES = values(EmbedDtype)
OVERFLOW_POLICIES = values(OnOverflow)
BATCH_SIZE = 256  # most texts a forward pass
BATCH_TOKENS = 4096  # most padded tokens (texts × the longest) a forward pass: short texts batch wide, long ones narrow
MAX_BATCH_TOKENS = 1 << 20
MAX_BATCH_SIZE = 4096  # beyond this a batch only costs memory (padding grows with the longest text)
WINDOW_BATCHES = 16  # texts are length-sorted within a window of this many batches
MIN_WINDOW = 256


# ---------------------------------------------------------------- poolings (a registry)


def _pool_pooler(hidden, pooled, mask):
    return pooled


def _pool_cls(hidden, pooled, mask):
    return hidden[:, 0]


def _pool_mean(hidden, pooled, mask):
    weights = mask[..., None].to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)


def _pool_max(hidden, pooled, mask):
    return hidden.masked_fill(~mask[..., None].bool(), -1e9).max(dim=1).values


POOLINGS: dict[str, Callable] = {"pooler": _pool_pooler, "cls": _pool_cls, "mean": _pool_mean, "max": _pool_max}


def parse_poolings(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not names:
        raise BadInput(f"name at least one of {', '.join(POOLING_NAMES)}", parameter="pooling", value=text)
    unknown = [name for name in names if name not in POOLINGS]
    if unknown:
        raise BadInput(f"unknown pooling {unknown[0]!r}; use {', '.join(POOLING_NAMES)} (comma-separated)", parameter="pooling", value=text)
    return names


def check_options(batch_size: int = BATCH_SIZE, dtype: str = "float32", on_overflow: str = "warn", max_length: int | None = None,
                  batch_tokens: int | None = BATCH_TOKENS) -> None:
    """The checks that need no model, so the CLI can run them before loading one."""
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise BadInput(f"use 1..{MAX_BATCH_SIZE} texts a batch", parameter="batch_size", value=batch_size)
    if batch_tokens is not None and not 16 <= batch_tokens <= MAX_BATCH_TOKENS:
        raise BadInput(f"use 16..{MAX_BATCH_TOKENS} padded tokens a batch", parameter="batch_tokens", value=batch_tokens)
    if dtype not in DTYPES:
        raise BadInput(f"use one of {', '.join(DTYPES)}", parameter="dtype", value=dtype)
    if on_overflow not in OVERFLOW_POLICIES:
        raise BadInput("use warn, error or skip", parameter="on_overflow", value=on_overflow)
    if max_length is not None and max_length < 2:
        raise BadInput("at least 2 (the [CLS] and [SEP] tokens)", parameter="max_length", value=max_length)


def window_size(batch_size: int) -> int:
    """Texts tokenized and length-sorted together: 16 batches, at least 256."""
    return max(batch_size * WINDOW_BATCHES, MIN_WINDOW)


@dataclass
class Embedding:
    index: int
    text: str
    tokens: int  # the text's token count, special tokens included, before truncation
    truncated: bool
    vectors: dict[str, Any] = field(default_factory=dict)  # pooling → numpy float32 [H]
    id: str = ""  # the input's id (its index when it has none)


@dataclass
class OverflowCount:
    truncated: int = 0
    skipped: int = 0
    first: str | None = None


@dataclass
class Encoded:
    """What ``Encoder.encode`` returns for N texts: stacked vectors and what happened to long texts."""

    vectors: dict[str, Any]  # pooling → numpy float32 [N, H], rows in input order
    tokens: list[int]  # each text's token count, special tokens included, before truncation
    truncated: list[bool]
    overflow: OverflowCount


class EmbeddingStream:
    """The embeddings of a stream of texts, computed as it is iterated (once).

    Texts are tokenized a window at a time (default 16 batches), sorted by length within the
    window so each batch pads little, cut into batches of at most ``batch_size`` texts and
    ``batch_tokens`` padded tokens (so the matmuls see a few thousand rows whatever the texts'
    length), and yielded in input order. Memory depends on the window,
    never on the input's length; results do not depend on ``batch_size``. ``overflow`` counts
    the truncated and skipped texts seen so far. The options are checked on construction.
    """

    def __init__(
        self,
        encoder: Encoder,
        items: Iterable[InputText],
        poolings: tuple[str, ...] = ("pooler",),
        batch_size: int = BATCH_SIZE,
        max_length: int | None = None,
        on_overflow: str = "warn",
        normalize: bool = False,
        window: int | None = None,
        progress: Callable[[int], None] | None = None,
        batch_tokens: int | None = BATCH_TOKENS,
    ):
        check_options(batch_size=batch_size, on_overflow=on_overflow, batch_tokens=batch_tokens)
        limit = encoder.max_length if max_length is None else max_length
        if limit < 2 or limit > encoder.max_length:
            raise BadInput(f"use 2..{encoder.max_length} (this model's limit)", parameter="max_length", value=limit)
        if "pooler" in poolings and not encoder.has_pooler:
            raise BadInput(
                f"{encoder.name} has no pooler weights, so pooler_output would be random; "
                "use pooling='mean' or pooling='cls'",
                parameter="pooling",
                value="pooler",
            )
        self.encoder, self.items, self.poolings = encoder, items, poolings
        self.batch_size, self.limit, self.on_overflow, self.normalize = batch_size, limit, on_overflow, normalize
        self.batch_tokens = batch_tokens
        self.window = window or window_size(batch_size)
        self.progress = progress
        self.overflow = OverflowCount()

    def __iter__(self) -> Iterator[Embedding]:
        buffer: list[InputText] = []
        for item in self.items:
            buffer.append(item)
            if len(buffer) >= self.window:
                yield from self._window(buffer)
                buffer = []
        if buffer:
            yield from self._window(buffer)

    def _window(self, items: list[InputText]) -> Iterator[Embedding]:
        return _embed_window(self.encoder, items, self.poolings, self.batch_size, self.limit, self.on_overflow,
                             self.normalize, self.overflow, self.progress, self.batch_tokens)


def embed_texts(encoder: Encoder, items: Iterable[InputText], poolings: tuple[str, ...] = ("pooler",),
                **options: Any) -> EmbeddingStream:
    """Embed ``items`` lazily: one ``Embedding`` per kept input, in input order (see ``EmbeddingStream``)."""
    return EmbeddingStream(encoder, items, poolings, **options)


def token_batches(order: list[int], lengths: list[int], batch_size: int, batch_tokens: int | None) -> Iterator[list[int]]:
    """Consecutive groups of ``order`` (sorted by length, ascending): at most ``batch_size`` texts, and
    with ``batch_tokens`` at most that many padded tokens (rows × the longest), one text at least."""
    group: list[int] = []
    for index, length in zip(order, lengths):
        if group and (len(group) >= batch_size or (batch_tokens is not None and (len(group) + 1) * length > batch_tokens)):
            yield group
            group = []
        group.append(index)
    if group:
        yield group


def _torch_vectors(encoder, padded, mask, poolings, normalize) -> dict[str, Any]:
    """One batch through a torch encoder: pooling → ``float32 [B, H]`` numpy."""
    import torch
    import torch.nn.functional as F

    with torch.inference_mode():
        input_ids = torch.from_numpy(padded).to(encoder.device)
        attention = torch.from_numpy(mask).long().to(encoder.device)
        hidden, pooled = encoder.forward(input_ids, attention)
        hidden = hidden.float()
        pooled = pooled.float() if pooled is not None else None
        vectors = {}
        for name in poolings:
            vector = POOLINGS[name](hidden, pooled, attention)
            if normalize:
                vector = F.normalize(vector, p=2, dim=-1)
            vectors[name] = vector.cpu().numpy()
    return vectors


def _numpy_vectors(encoder, padded, mask, poolings, normalize) -> dict[str, Any]:
    """One batch through ``vizcli.embed.numpy_bert`` (no torch)."""
    from vizcli.embed.numpy_bert import normalized, pool

    hidden, pooled = encoder.forward(padded, mask)
    vectors = {}
    for name in poolings:
        vector = pool(name, hidden, pooled, mask)
        vectors[name] = normalized(vector) if normalize else vector
    return vectors


def _embed_window(encoder, items, poolings, batch_size, limit, on_overflow, normalize, overflow, progress, batch_tokens=None):
    import numpy as np

    encodings = encoder.tokenizer.encode_batch([item.text for item in items])
    prepared = []  # (position in window, ids, token count, truncated)
    for position, (item, encoding) in enumerate(zip(items, encodings)):
        ids = encoding.ids
        count = len(ids)
        truncated = count > limit
        if truncated:
            if on_overflow == "error":
                raise BadInput(f"{item.source}: {count} tokens, more than max_length={limit}; shorten it or use on_overflow='warn' or on_overflow='skip'")
            overflow.first = overflow.first or item.source
            if on_overflow == "skip":
                overflow.skipped += 1
                continue
            overflow.truncated += 1
            ids = ids[: limit - 1] + ids[-1:]  # keep [SEP] at the end, as transformers truncates
        prepared.append((position, ids, count, truncated))
    order = sorted(range(len(prepared)), key=lambda k: len(prepared[k][1]))
    results: dict[int, Embedding] = {}
    compute = _numpy_vectors if encoder.backend == "numpy" else _torch_vectors
    for group in token_batches(order, [len(prepared[k][1]) for k in order], batch_size, batch_tokens):
        batch = [prepared[k] for k in group]
        sizes = np.array([len(ids) for _, ids, _, _ in batch])
        padded = np.full((len(batch), int(sizes.max())), encoder.pad_id, dtype=np.int64)
        for row, (_, ids, _, _) in enumerate(batch):
            padded[row, : len(ids)] = ids
        mask = np.arange(padded.shape[1])[None, :] < sizes[:, None]
        vectors = compute(encoder, padded, mask, poolings, normalize)
        for row, (position, _, count, truncated) in enumerate(batch):
            item = items[position]
            results[position] = Embedding(
                index=item.index, text=item.text, tokens=count, truncated=truncated,
                vectors={name: vectors[name][row] for name in poolings}, id=item.key,
            )
        if progress is not None:
            progress(len(batch))
    for position in sorted(results):
        yield results[position]



@dataclass
class Encoder:
    """A loaded model and tokenizer, ready to embed."""

    name: str  # what the user asked for, or the bundled package's name
    path: Path
    model: Any
    tokenizer: Any
    config: dict
    max_length: int  # the model's limit (position embeddings / tokenizer limit)
    has_pooler: bool
    native: bool  # computed by vizcli.embed.bert (True) or transformers.AutoModel (False)
    dtype: str = "float32"
    device: str = "cpu"
    pad_id: int = 0
    backend: str = "torch"  # or "numpy" (vizcli.embed.numpy_bert: no torch import, for a few texts)
    asked_dtype: str = ""  # what was asked for ("auto" resolves to ``dtype``)
    probe: dict | None = None  # vizcli.embed.dtype_probe's figures, when auto or bfloat16 was asked for

    @property
    def hidden_size(self) -> int:
        return int(self.config.get("hidden_size") or self.config.get("dim") or 0)

    def stream(self, items: Iterable[InputText], poolings: tuple[str, ...] = ("pooler",), **options: Any) -> EmbeddingStream:
        """Embed a stream of texts lazily (see ``EmbeddingStream`` for the options)."""
        return EmbeddingStream(self, items, poolings, **options)

    def encode(self, texts: list[str], poolings: tuple[str, ...] = ("pooler",), **options: Any) -> Encoded:
        """Embed a list of texts: ``Encoded.vectors[pooling]`` is ``float32 [N, H]`` in input order.

        Under ``on_overflow='skip'`` skipped texts have no row; ``Encoded.tokens`` says which kept.
        """
        import numpy as np

        stream = self.stream((InputText(index, text, f"text {index + 1}") for index, text in enumerate(texts)),
                             poolings, **options)
        rows = list(stream)
        width = self.hidden_size
        vectors = {name: np.stack([row.vectors[name] for row in rows]) if rows else np.zeros((0, width), "float32")
                   for name in poolings}
        return Encoded(vectors=vectors, tokens=[row.tokens for row in rows], truncated=[row.truncated for row in rows],
                       overflow=stream.overflow)

    def forward(self, input_ids, attention_mask):
        """``(Tensor[B, L], Tensor[B, L])`` → (last hidden ``Tensor[B, L, H]``, pooler ``Tensor[B, H]`` or None)
        (numpy arrays in and out with ``backend="numpy"``)."""
        if self.backend == "numpy":
            return self.model.forward(input_ids, attention_mask)
        if self.native:
            return self.model(input_ids, attention_mask)
        outputs = self.model(input_ids=input_ids, attention_mask=attention_mask)
        return outputs.last_hidden_state, getattr(outputs, "pooler_output", None)


def cosine_matrix(vectors):
    """``[N, H]`` → ``[N, N]`` cosine similarities (numpy, float64)."""
    import numpy as np

    matrix = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    unit = matrix / np.clip(norms, 1e-12, None)
    return unit @ unit.T


