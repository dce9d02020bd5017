"""vizcli.shapes.compare: torchinfo's and FlopCounterMode's counts beside vizcli's, row by row, and why rows differ."""

import json

import pytest

from vizcli.shapes.compare import compare_counts

pytest.importorskip("torchinfo")


def _compared(model_name, input_size=None, seq_len=None):
    from vizcli.shapes.report import run_any_shapes, run_shapes

    if seq_len is not None:
        report = run_any_shapes(model_name, [], seq_len=seq_len, device="cpu")
    else:
        report = run_shapes([], input_size, False, model_name, None, 0, "cpu", None)
    run = report.runs[0]
    return run.trace.records, compare_counts(report.model, run.example, run.trace)


def _reasons(records, comparison):
    return {records[row.index].name: row.why for row in comparison.rows if row.why}


def test_resnet18_agrees_with_flop_counter_and_differs_from_torchinfo_on_norms_and_the_bias():
    records, comparison = _compared("resnet18")
    assert comparison.totals["flop_counter"] == comparison.totals["vizcli"]  # convolutions and the fc matmul, formula for formula
    assert all(row.flop_counter == record.macs for row, record in zip(comparison.rows, records))
    reasons = _reasons(records, comparison)
    assert all("norm's scale and shift" in why[0] for name, why in reasons.items() if ".bn" in name or name == "bn1")
    assert reasons["fc"] == ["torchinfo counts the bias too: one more MAC per output value"]
    assert not any("conv" in name for name in reasons)  # no bias: torchinfo's convolution formula is vizcli's
    assert {row.torchinfo for row, record in zip(comparison.rows, records) if record.kind == "add"} == {None}


def test_vit_b_16_shows_torchinfo_226_and_the_fused_attention():
    records, comparison = _compared("vit_b_16")
    assert comparison.totals["vizcli"] > 17e9 and comparison.totals["torchinfo"] < 0.2e9  # torchinfo#226: 17.6 G against 0.17 G
    reasons = _reasons(records, comparison)
    mlp = reasons["encoder.layers.encoder_layer_0.mlp.0"]
    assert "not by the 197 positions" in mlp[0] and "TylerYep/torchinfo#226" in mlp[0]
    attention = reasons["encoder.layers.encoder_layer_0.self_attention"]
    assert any("in-projection" in why for why in attention) and any("FlopCounterMode has no formula" in why for why in attention)


def test_swin_t_window_attention_is_a_functional_row_torchinfo_lacks():
    records, comparison = _compared("swin_t")
    # torchvision wraps shifted_window_attention for fx: one function row holding its projections and matmuls
    windows = [(row, record) for row, record in zip(comparison.rows, records) if record.kind == "shifted_window_attention"]
    assert len(windows) == 12 and all(record.macs > 0 for _, record in windows)
    assert all(row.torchinfo is None and row.flop_counter == record.macs for row, record in windows)
    assert all(row.why == ["torchinfo counts modules only: this functional operation has no row there"] for row, _ in windows)


def test_bert_counts_explained():
    length = 16
    records, comparison = _compared("minilm", seq_len=length)
    attention = 6 * 2 * length**2 * 384
    assert comparison.totals["flop_counter"] == comparison.totals["vizcli"] - attention  # no CPU SDPA formula
    reasons = _reasons(records, comparison)
    assert "embedding table" in reasons["embeddings.word_embeddings"][0]
    assert "not by the 16 positions" in reasons["encoder.layer.0.attention.self.query"][0]
    assert any("CPU attention kernel" in why for why in reasons["encoder.layer.0.attention.self.attention"])


def test_the_cli_adds_columns_totals_and_reasons(invoke):
    table = invoke("shapes", "--compare")
    assert table.exit_code == 0, table.stderr
    assert "torchinfo" in table.stdout and "FlopCounter ÷2" in table.stdout
    assert "total MACs: vizcli 1.814 G · torchinfo" in table.stdout
    assert "#68 fc: torchinfo counts the bias too" in table.stdout
    document = json.loads(invoke("shapes", "--compare", "--format", "json").stdout)
    comparison = document["tables"][0]["comparison"]
    assert comparison["totals"]["flop_counter"] == comparison["totals"]["vizcli"]
    assert len(comparison["rows"]) == len(document["tables"][0]["rows"])
