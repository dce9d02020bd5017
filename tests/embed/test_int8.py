"""--dtype int8: Int8Linear against a slow integer loop, the whole model against float32, the receipt."""

import json
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from vizcli.embed.int8 import Int8Linear, quality_receipt, quantize_linears
from vizcli.embed.loading import bundled_model_path, load_bert

SENTENCES = [
    "A cat sits on the mat.", "The dog chased the ball across the park.", "Stock markets fell sharply on Monday.",
    "She plays the violin in an orchestra.", "Heavy rain is expected this weekend.", "The recipe needs two eggs and flour.",
    "Quantum computers use qubits instead of bits.", "He repaired the bicycle's flat tyre.",
]


def _slow_int8_linear(x, weight, bias):
    """The documented arithmetic in plain numpy loops: per-channel weight steps, per-row activation steps."""
    x, weight, bias = (np.asarray(t, dtype=np.float64) for t in (x, weight, bias))
    out = np.zeros((x.shape[0], weight.shape[0]))
    for channel in range(weight.shape[0]):
        w_step = max(np.abs(weight[channel]).max(), 1e-12) / 127
        w_q = np.clip(np.round(weight[channel] / w_step), -127, 127)
        for row in range(x.shape[0]):
            x_step = max(np.abs(x[row]).max(), 1e-12) / 127
            x_q = np.round(x[row] / x_step)
            out[row, channel] = int(np.dot(x_q.astype(np.int64), w_q.astype(np.int64))) * x_step * w_step + bias[channel]
    return out


def test_int8_linear_equals_the_slow_integer_loop():
    generator = torch.Generator().manual_seed(0)
    weight, bias = torch.randn(12, 40, generator=generator), torch.randn(12, generator=generator)
    x = torch.randn(7, 40, generator=generator)
    x[3] *= 50  # one outlier row: per-row steps keep it from coarsening the others
    got = Int8Linear(weight, bias)(x).numpy()
    np.testing.assert_allclose(got, _slow_int8_linear(x, weight, bias), rtol=1e-5, atol=1e-4)


def test_int8_linear_is_close_to_float_and_keeps_the_batch_shape():
    generator = torch.Generator().manual_seed(1)
    linear = nn.Linear(64, 48)
    x = torch.randn(2, 5, 64, generator=generator)
    got = Int8Linear(linear.weight, linear.bias)(x)
    assert got.shape == (2, 5, 48)
    expected = linear(x).detach()
    assert float((got - expected).abs().max()) < 0.02 * float(expected.abs().max())


def test_quantize_linears_swaps_every_encoder_linear_and_keeps_the_pooler_float():
    encoder = load_bert(dtype="int8")
    layers = encoder.config["num_hidden_layers"]
    swapped = [name for name, module in encoder.model.named_modules() if isinstance(module, Int8Linear)]
    assert len(swapped) == 4 * layers  # fused Q/K/V, attention output, intermediate, output
    assert isinstance(encoder.model.pooler.dense, nn.Linear)
    assert not any(isinstance(module, nn.Linear) for name, module in encoder.model.named_modules() if not name.startswith("pooler"))
    assert quantize_linears(nn.Sequential()) == 0


@pytest.fixture(scope="module")
def float_and_int8():
    return load_bert(dtype="float32"), load_bert(dtype="int8")


@pytest.mark.parametrize("pooling", ["mean", "cls", "pooler", "max"])
def test_int8_vectors_stay_close_to_float32(float_and_int8, pooling):
    reference, quantized = float_and_int8
    a = reference.encode(SENTENCES, (pooling,)).vectors[pooling]
    b = quantized.encode(SENTENCES, (pooling,)).vectors[pooling]
    receipt = quality_receipt({pooling: b}, {pooling: a})[pooling]
    assert receipt["texts"] == len(SENTENCES)
    assert receipt["min_cosine"] > 0.98, receipt
    assert 0.98 < receipt["mean_cosine"] < 1.0  # close, and really quantized


def test_quality_receipt_is_the_cosine_per_text():
    a = np.array([[1.0, 0.0], [1.0, 1.0]], np.float32)
    b = np.array([[2.0, 0.0], [1.0, 0.0]], np.float32)
    assert quality_receipt({"mean": a}, {"mean": b}) == {"mean": {"texts": 2, "min_cosine": round(2 ** -0.5, 6),
                                                                  "mean_cosine": round((1 + 2 ** -0.5) / 2, 6)}}


def test_a_transformers_model_is_quantized_too(tmp_path):
    from transformers import RobertaConfig, RobertaModel

    torch.manual_seed(0)
    config = RobertaConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                           max_position_embeddings=70)
    folder = tmp_path / "roberta"
    RobertaModel(config).save_pretrained(str(folder))
    for file in ("tokenizer.json", "vocab.txt", "tokenizer_config.json"):
        shutil.copy(bundled_model_path() / file, folder / file)
    reference, quantized = load_bert(str(folder)), load_bert(str(folder), dtype="int8")
    assert not quantized.native and quantized.dtype == "int8"
    assert sum(isinstance(module, Int8Linear) for module in quantized.model.modules()) == 2 * 6  # q, k, v, out, in, out per layer
    a = reference.encode(SENTENCES, ("mean",)).vectors["mean"]
    b = quantized.encode(SENTENCES, ("mean",)).vectors["mean"]
    assert quality_receipt({"mean": b}, {"mean": a})["mean"]["min_cosine"] > 0.98


def test_embedder_takes_int8_from_python():
    from vizcli.embed.embedder import Embedder

    embedder = Embedder(pooling="mean", dtype="int8", device="cpu")
    assert embedder.encoder.dtype == "int8"
    batch = embedder({"id": ["a", "b"], "text": ["a cat", "a dog"]})
    assert batch["mean"].shape == (2, 384) and batch["mean"].dtype == np.float32


def test_the_cli_records_a_receipt_in_every_output_with_metadata(invoke, tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    npz = tmp_path / "v.npz"
    result = invoke("embed", "--file", texts, "-p", "mean", "--dtype", "int8", "--calibration", 5, "-o", npz, "--threads", 2)
    assert result.exit_code == 0, result.stderr
    meta = json.loads(str(np.load(npz)["metadata"]))
    assert meta["dtype"] == "int8" and meta["int8_receipt"]["mean"]["texts"] == 5
    assert meta["int8_receipt"]["mean"]["min_cosine"] > 0.98
    import pyarrow.parquet as pq

    parquet = tmp_path / "v.parquet"
    result = invoke("embed", "--file", texts, "-p", "mean,cls", "--dtype", "int8", "--calibration", 6, "-o", parquet, "--quiet")
    assert result.exit_code == 0, result.stderr
    meta = json.loads(pq.read_schema(parquet).metadata[b"vizcli"])
    assert set(meta["int8_receipt"]) == {"mean", "cls"} and meta["int8_receipt"]["cls"]["texts"] == 6
    table = pq.read_table(parquet)
    assert table.num_rows == len(SENTENCES)
