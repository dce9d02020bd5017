"""vizcli.embed.cli, corpus runs: every text is accounted for, formats are not contradicted, the environment is left alone."""

import json
import os

import pyarrow.parquet as pq
import pytest

from vizcli.datasets.run import SKIPPED_ROWS_EXIT

LONG = "word " * 60


def test_texts_skipped_as_too_long_are_problems_and_exit_3(invoke, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text(f"a cat\n{LONG}\na dog\n")
    out = tmp_path / "o.parquet"
    result = invoke("embed", "--file", corpus, "-p", "mean", "--max-length", "16", "--on-overflow", "skip", "-o", out)
    assert result.exit_code == SKIPPED_ROWS_EXIT, result.stderr
    assert pq.read_table(out)["id"].to_pylist() == ["0", "2"]
    (problem,) = [json.loads(line) for line in (tmp_path / "o.problems.jsonl").read_text().splitlines()]
    assert problem["id"] == "1" and problem["index"] == 1 and "longer than 16 tokens" in problem["problem"]
    assert "1 problem was recorded" in result.stderr


def test_truncated_texts_are_counted_in_the_summary(invoke, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text(f"a cat\n{LONG}\n{LONG}x\n")
    out = tmp_path / "o.parquet"
    result = invoke("embed", "--file", corpus, "-p", "mean", "--max-length", "16", "-o", out)
    assert result.exit_code == 0, result.stderr
    assert "Warning: 2 texts longer than 16 tokens were truncated and flagged" in result.stderr
    assert pq.read_table(out)["truncated"].to_pylist() == [False, True, True]


@pytest.mark.parametrize("output", ["v.parquet", "shards/"])
def test_a_format_that_contradicts_a_corpus_output_is_refused(invoke, tmp_path, output):
    corpus = tmp_path / "c.txt"
    corpus.write_text("a\n")
    result = invoke("embed", "--file", corpus, "-p", "mean", "--format", "csv", "-o", f"{tmp_path}/{output}")
    assert result.exit_code == 2 and result.stderr.startswith("Error: --format csv contradicts -o")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.txt"]


def test_a_corpus_run_leaves_the_environment_as_it_found_it(invoke, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("a\nb\n")
    before = dict(os.environ)
    assert invoke("embed", "--file", corpus, "-p", "mean", "-o", tmp_path / "o.parquet", "--quiet").exit_code == 0
    assert dict(os.environ) == before


def test_warnings_name_flags_as_errors_do(invoke):
    result = invoke("embed", "a cat", "-p", "mean", "--threads", "10000", "--format", "csv")
    assert result.exit_code == 0 and "Warning: --threads 10000 is more than" in result.stderr
