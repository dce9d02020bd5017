"""vizcli.shapes.sweep: MACs against the sequence length, fitted; the fit equals BERT's analytic count."""

import json

import pytest

from tests.checks import one_error_line
from vizcli.shapes.sweep import parse_seq_lens, sweep_seq_lens


def test_the_fit_recovers_berts_analytic_parts_exactly():
    sweep = sweep_seq_lens("minilm", [4, 8, 24], device="cpu")
    hidden, inner, layers = 384, 1536, 6  # all-MiniLM-L6-v2's config
    assert sweep.constant == pytest.approx(hidden**2, abs=1e-3)  # the pooler, once per sequence
    assert sweep.linear == pytest.approx(layers * (4 * hidden**2 + 2 * hidden * inner), rel=1e-9)
    assert sweep.quadratic == pytest.approx(2 * layers * hidden, rel=1e-9)
    assert sweep.crossover == pytest.approx(2 * hidden + inner)
    for point in sweep.points:
        expected = point.length * layers * (4 * hidden**2 + 2 * hidden * inner) + 2 * layers * point.length**2 * hidden + hidden**2
        assert point.macs == expected
        assert point.attention_macs == 2 * layers * point.length**2 * hidden
    shares = [point.attention_share for point in sweep.points]
    assert shares == sorted(shares)  # attention's share grows with L


def test_the_cli_prints_the_sweep_as_json_and_a_table(invoke):
    result = invoke("shapes", "--model", "minilm", "--seq-len", "8,4,16", "--format", "json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["schema"] == "vizcli.shapes.sweep/1" and [p["seq_len"] for p in document["points"]] == [4, 8, 16]
    assert all(abs(p["fit_error"]) < 1e-3 for p in document["points"])
    table = invoke("shapes", "--model", "minilm", "--seq-len", "4,8,16")
    assert table.exit_code == 0, table.stderr
    assert "attention share" in table.stdout and "L = 2,304" in table.stdout


def test_parsing_lengths():
    assert parse_seq_lens(None) is None and parse_seq_lens("16") == [16] and parse_seq_lens("64, 16,256,16") == [16, 64, 256]


@pytest.mark.parametrize("args, fragment", [
    (["--model", "minilm", "--seq-len", "8,16"], "at least 3 lengths"),
    (["--model", "minilm", "--seq-len", "8,x"], "lengths like 16,64,256"),
    (["--model", "resnet18", "--seq-len", "4,8,16"], "for text models"),
    (["--model", "minilm", "--seq-len", "4,8,100000"], "the model's position limit"),
    (["--model", "minilm", "--seq-len", "4,8,16", "--text", "a cat"], "drop images"),
    (["--model", "minilm", "--seq-len", "4,8,16", "--format", "mermaid"], "table, json or csv"),
])
def test_bad_sweeps_are_one_line(invoke, args, fragment):
    assert fragment in one_error_line(invoke("shapes", *args), 2)
