"""What the embedding peer scripts share: their texts argument, and the in-process timing (best of 2 after a warm-up)."""

import time


def read_texts(corpus: str) -> list[str]:
    """``text:TEXT`` is one text; anything else is a file of texts, one a line."""
    if corpus.startswith("text:"):
        return [corpus[5:]]
    with open(corpus, encoding="utf-8") as handle:
        return [line.rstrip("\n") for line in handle]


def best_of_two(encode, texts: list[str]):
    """``(seconds, vectors)``: the faster of two ``encode(texts)`` calls, after a warm-up on the first 64 texts."""
    encode(texts[:64])
    best, vectors = float("inf"), None
    for _ in range(2):
        start = time.perf_counter()
        vectors = encode(texts)
        best = min(best, time.perf_counter() - start)
    return best, vectors
