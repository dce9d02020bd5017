"""--dtype auto: the probe measures, caches per CPU and versions, and picks bfloat16 only when it wins."""

import json

import pytest

from vizcli.common import cache
from vizcli.embed import dtype_probe

TINY = {"vocab_size": 1200, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
        "max_position_embeddings": 128, "hidden_act": "gelu", "layer_norm_eps": 1e-12, "type_vocab_size": 2}


@pytest.fixture
def own_cache(monkeypatch, tmp_path):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))
    return tmp_path


def test_choose_needs_a_real_margin():
    assert dtype_probe.choose({"float32": 1.0, "bfloat16": 0.5}) == "bfloat16"
    assert dtype_probe.choose({"float32": 1.0, "bfloat16": 0.97}) == "float32"  # inside the noise: float32
    assert dtype_probe.choose({"float32": 1.0, "bfloat16": 1.6}) == "float32"


def test_the_probe_measures_once_then_reads_the_cache(own_cache):
    from vizcli.embed.bert import build_encoder

    model = build_encoder(TINY).eval()
    first = dtype_probe.probe(model, TINY)
    assert not first["cached"] and set(first["seconds"]) == {"float32", "bfloat16"}
    assert all(value > 0 for value in first["seconds"].values())
    assert next(model.parameters()).dtype.is_floating_point and str(next(model.parameters()).dtype) == "torch.float32"
    second = dtype_probe.probe(model, TINY)
    if first["noisy"]:  # this busy machine's pairs disagreed twice: float32, and nothing was cached
        assert first["fastest"] == "float32" and not second["cached"]
        return
    assert second["cached"] and second["seconds"] == first["seconds"] and second["fastest"] == first["fastest"]
    stored = json.loads((own_cache / dtype_probe.PROBE_CACHE).read_text())
    (key,) = stored
    assert dtype_probe.cpu_model() in key and "torch " in key and "bert 2x32x64" in key


def _seed_probe(config, seconds):
    """Figures in the real cache, as an earlier probe on this machine would have left them."""
    cache.write_entry(dtype_probe.PROBE_CACHE, dtype_probe.probe_key(config, "cpu"), seconds)


@pytest.mark.parametrize(("seconds", "picked"), [({"float32": 1.0, "bfloat16": 1.6}, "float32"),
                                                 ({"float32": 1.0, "bfloat16": 0.5}, "bfloat16")])
def test_auto_follows_the_measured_figures(own_cache, seconds, picked):
    from vizcli.embed.loading import load_bert

    bundled = load_bert()
    _seed_probe(bundled.config, seconds)
    encoder = load_bert(dtype="auto")
    assert encoder.dtype == picked and encoder.asked_dtype == "auto" and encoder.probe["cached"]
    assert str(next(encoder.model.parameters()).dtype) == f"torch.{picked}"


def test_the_cli_says_what_auto_picked_and_warns_when_bfloat16_is_slower(invoke, own_cache, tmp_path):
    from vizcli.embed.loading import load_bert

    _seed_probe(load_bert().config, {"float32": 1.0, "bfloat16": 1.6})
    texts = tmp_path / "t.txt"
    texts.write_text("a cat\na dog\n" * 1500, encoding="utf-8")  # over the numpy path's size: torch and the probe
    result = invoke("embed", "--file", texts, "--dtype", "auto", "-p", "mean", "-o", tmp_path / "a.npy", "--batch-size", 512)
    assert result.exit_code == 0, result.stderr
    assert "--dtype auto: float32 (bfloat16 took 1.60× float32's time on this CPU, cached probe" in result.stderr
    result = invoke("embed", "a cat", "--dtype", "bfloat16", "-p", "mean")
    assert result.exit_code == 0
    assert "Warning: --dtype bfloat16 is not faster here: bfloat16 took 1.60×" in result.stderr
    result = invoke("embed", "a cat", "--dtype", "auto", "-p", "mean")  # a few texts: numpy, no probe
    assert result.exit_code == 0 and "--dtype auto: float32 in numpy" in result.stderr


@pytest.mark.parametrize("stored", [{"float32": 0, "bfloat16": 0.5}, {"float32": -1.0, "bfloat16": 0.5},
                                    {"float32": float("nan"), "bfloat16": 1.0}, {"float32": 1e9, "bfloat16": 1.0},
                                    {"float32": True, "bfloat16": 1.0}, {"float32": 1.0}, "fast", [1, 2]])
def test_an_implausible_cached_figure_is_measured_again_never_an_error(own_cache, stored):
    from vizcli.embed.bert import build_encoder

    model = build_encoder(TINY).eval()
    _seed_probe(TINY, stored)
    measured = {"float32": [1.0, 1.0, 1.0], "bfloat16": [1.6, 1.5, 1.7]}
    result = dtype_probe.probe(model, TINY, timer=lambda *args: measured)
    assert not result["cached"] and result["seconds"] == {"float32": 1.0, "bfloat16": 1.6} and result["fastest"] == "float32"
    assert "1.60×" in dtype_probe.describe(result)  # the message's ratio divides by float32's time
    assert dtype_probe.probe(model, TINY)["cached"]  # the new figures replaced the bad ones


def test_the_decision_needs_every_interleaved_pair_to_agree():
    decided = dtype_probe.verdict({"float32": [1.0, 2.0, 1.1], "bfloat16": [0.5, 1.2, 0.6]})  # load doubled one pair: both
    assert decided["fastest"] == "bfloat16" and decided["seconds"] == {"float32": 1.1, "bfloat16": 0.6}
    assert dtype_probe.verdict({"float32": [1.0, 1.0, 1.0], "bfloat16": [1.6, 1.5, 0.99]})["fastest"] == "float32"
    # a busy machine's one-shot figures (0.19× to 1.70×): noise, no decision
    assert dtype_probe.verdict({"float32": [1.0, 1.0, 1.0], "bfloat16": [0.19, 1.70, 0.9]})["fastest"] is None


def test_a_probe_that_measured_noise_is_repeated_then_ignored(own_cache):
    from vizcli.embed.bert import build_encoder

    model = build_encoder(TINY).eval()
    noisy = {"float32": [1.0, 1.0, 1.0], "bfloat16": [0.19, 1.70, 0.9]}
    clear = {"float32": [1.0, 1.1, 1.0], "bfloat16": [0.5, 0.52, 0.49]}
    calls = []

    def timings(*figures):
        def timer(*args):
            calls.append(args)
            return figures[len(calls) - 1]
        return timer

    result = dtype_probe.probe(model, TINY, timer=timings(noisy, clear))  # noise, then a clear answer: used, cached
    assert len(calls) == 2 and result["fastest"] == "bfloat16" and not result["noisy"]
    assert dtype_probe.probe(model, TINY, timer=timings())["cached"]
    (own_cache / dtype_probe.PROBE_CACHE).unlink()
    calls.clear()
    result = dtype_probe.probe(model, TINY, timer=timings(noisy, noisy, clear))  # noise twice: float32, not cached
    assert len(calls) == 2 and result["fastest"] == "float32" and result["noisy"] and "disagreed" in dtype_probe.describe(result)
    assert not (own_cache / dtype_probe.PROBE_CACHE).exists()
