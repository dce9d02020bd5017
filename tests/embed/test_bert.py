"""embed core: exact agreement with transformers and sentence-transformers; invariances."""

import numpy as np
import pytest
import torch

from vizcli.common.errors import BadInput
from vizcli.embed.encode import embed_texts
from vizcli.embed.loading import load_bert
from vizcli.embed.texts import InputText

SENTENCES = [
    "a cat sits on the mat",
    "",
    "The quick brown fox jumps over the lazy dog, again and again, until the sun goes down.",
    "BERT's pooler_output captures the whole sentence.",
    "x",
    "Ünïcödé and emoji 🐈 work too",
    "short",
    "a somewhat longer sentence that needs a few more word pieces to encode",
]


def _items(texts):
    return [InputText(i, text, f"line {i + 1}") for i, text in enumerate(texts)]


@pytest.fixture(scope="module")
def encoder():
    return load_bert()


def test_bundled_model_is_the_trained_minilm(encoder):
    assert encoder.native and encoder.has_pooler
    assert encoder.config["num_hidden_layers"] == 6 and encoder.hidden_size == 384
    assert encoder.max_length == 512


def test_pooler_equals_transformers_bert_model(encoder):
    from transformers import AutoTokenizer, BertModel

    reference = BertModel.from_pretrained(str(encoder.path), local_files_only=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(encoder.path), local_files_only=True)
    rows = list(embed_texts(encoder, _items(SENTENCES), ("pooler", "cls"), batch_size=3))
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = reference(**batch)
    for position, row in enumerate(rows):
        assert row.tokens == int(batch["attention_mask"][position].sum())
        assert np.abs(row.vectors["pooler"] - expected.pooler_output[position].numpy()).max() <= 1e-5
        assert np.abs(row.vectors["cls"] - expected.last_hidden_state[position, 0].numpy()).max() <= 1e-5


def test_mean_normalized_equals_sentence_transformers(encoder):
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(encoder.path), device="cpu")
    expected = reference.encode(SENTENCES, batch_size=4, normalize_embeddings=True, convert_to_numpy=True)
    rows = list(embed_texts(encoder, _items(SENTENCES), ("mean",), batch_size=5, normalize=True))
    ours = np.stack([row.vectors["mean"] for row in rows])
    assert np.abs(ours - expected).max() <= 1e-5
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-6)


def test_max_pooling_ignores_padding(encoder):
    alone = list(embed_texts(encoder, _items(["short"]), ("max",)))[0].vectors["max"]
    padded = list(embed_texts(encoder, _items(["short", SENTENCES[2]]), ("max",)))[0].vectors["max"]
    assert np.abs(alone - padded).max() <= 1e-5


def test_batch_size_and_window_do_not_change_results(encoder):
    texts = SENTENCES * 9
    one = list(embed_texts(encoder, _items(texts), ("pooler", "mean"), batch_size=1))
    many = list(embed_texts(encoder, _items(texts), ("pooler", "mean"), batch_size=64))
    small_window = list(embed_texts(encoder, _items(texts), ("pooler", "mean"), batch_size=4, window=5))
    few_tokens = list(embed_texts(encoder, _items(texts), ("pooler", "mean"), batch_size=64, batch_tokens=40))
    for a, b, c, d in zip(one, many, small_window, few_tokens):
        assert a.index == b.index == c.index == d.index
        for name in ("pooler", "mean"):
            assert np.abs(a.vectors[name] - b.vectors[name]).max() <= 1e-5
            assert np.abs(a.vectors[name] - c.vectors[name]).max() <= 1e-5
            assert np.abs(a.vectors[name] - d.vectors[name]).max() <= 1e-5
    assert [row.text for row in small_window] == texts  # input order kept across length-sorted windows


def test_batches_keep_to_the_text_and_token_budgets():
    from vizcli.embed.encode import token_batches

    lengths = [3, 3, 4, 5, 9, 9, 20, 30]  # sorted, as the window sorts them
    order = list(range(len(lengths)))
    groups = list(token_batches(order, lengths, batch_size=3, batch_tokens=18))
    assert [index for group in groups for index in group] == order  # every text once, in order
    for group in groups:
        assert len(group) <= 3
        assert len(group) == 1 or len(group) * max(lengths[i] for i in group) <= 18
    assert groups[-1] == [7]  # a text longer than the budget still gets a batch of its own
    assert [len(group) for group in token_batches(order, lengths, batch_size=3, batch_tokens=None)] == [3, 3, 2]


def test_short_attention_path_equals_sdpa():
    from vizcli.embed.bert import SHORT_ATTENTION, attend

    generator = torch.Generator().manual_seed(0)
    for length in (1, 7, SHORT_ATTENTION):
        query, key, value = (torch.randn(3, 4, length, 8, generator=generator) for _ in range(3))
        mask = torch.ones(3, 1, 1, length, dtype=torch.bool)
        mask[1, ..., length // 2 + 1:] = False  # a padded row
        expected = torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=mask)
        assert (attend(query, key, value, mask) - expected).abs().max() <= 2e-6


def test_long_text_equals_transformers_bert_model(encoder):
    """Texts over SHORT_ATTENTION tokens take the SDPA path; both paths must equal BertModel."""
    from transformers import AutoTokenizer, BertModel

    reference = BertModel.from_pretrained(str(encoder.path), local_files_only=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(encoder.path), local_files_only=True)
    texts = [" ".join(SENTENCES) * 2, SENTENCES[0]]
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    assert batch["input_ids"].shape[1] > 64
    with torch.no_grad():
        expected = reference(**batch).pooler_output.numpy()
    rows = list(embed_texts(encoder, _items(texts), ("pooler",)))
    for row, vector in zip(rows, expected):
        assert np.abs(row.vectors["pooler"] - vector).max() <= 1e-5


def test_truncation_is_flagged_not_silent(encoder):
    rows = list(embed_texts(encoder, _items(["one two three four five six seven", "one"]), ("mean",), max_length=5))
    assert rows[0].truncated and rows[0].tokens == 9 and not rows[1].truncated
    with pytest.raises(BadInput, match="line 1: 9 tokens, more than max_length=5"):
        list(embed_texts(encoder, _items(["one two three four five six seven"]), ("mean",), max_length=5, on_overflow="error"))
    kept = list(embed_texts(encoder, _items(["one two three four five six seven", "one"]), ("mean",), max_length=5, on_overflow="skip"))
    assert [row.index for row in kept] == [1]


def test_truncated_equals_transformers_truncation(encoder):
    from transformers import AutoTokenizer, BertModel

    reference = BertModel.from_pretrained(str(encoder.path), local_files_only=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(encoder.path), local_files_only=True)
    text = SENTENCES[2]
    batch = tokenizer([text], truncation=True, max_length=8, return_tensors="pt")
    with torch.no_grad():
        expected = reference(**batch).pooler_output[0].numpy()
    row = list(embed_texts(encoder, _items([text]), ("pooler",), max_length=8))[0]
    assert np.abs(row.vectors["pooler"] - expected).max() <= 1e-5


def test_bfloat16_is_close_to_float32(encoder):
    fast = load_bert(dtype="bfloat16")
    texts = SENTENCES[:4] + SENTENCES[5:]
    full = list(embed_texts(encoder, _items(texts), ("mean",)))
    half = list(embed_texts(fast, _items(texts), ("mean",)))
    for a, b in zip(full, half):
        cosine = float(np.dot(a.vectors["mean"], b.vectors["mean"]) / np.linalg.norm(a.vectors["mean"]) / np.linalg.norm(b.vectors["mean"]))
        assert cosine >= 0.999


@pytest.mark.parametrize(
    "kwargs, fragment",
    [({"batch_size": 0}, "batch_size=0"), ({"batch_tokens": 8}, "batch_tokens=8: use 16"), ({"max_length": 513}, "max_length=513: use 2..512"), ({"on_overflow": "drop"}, "on_overflow='drop'")],
)
def test_bad_options(encoder, kwargs, fragment):
    with pytest.raises(BadInput, match=fragment):
        list(embed_texts(encoder, _items(["a"]), ("mean",), **kwargs))
