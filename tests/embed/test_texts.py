"""vizcli.embed.texts: every text and id is checked where it is read, from every source."""

import io
import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.checks import PROPERTY, either_value_or_bad_input, one_error_line
from tests.conftest import ROOT
from vizcli.common.errors import BadInput
from vizcli.embed.texts import read_texts


def test_a_lone_surrogate_in_an_argument_is_refused_or_replaced():
    with pytest.raises(BadInput, match="argument 2: holds a lone surrogate"):
        list(read_texts(["fine", "caf\udce9"]))
    replaced = [item.text for item in read_texts(["caf\udce9"], encoding_errors="replace")]
    assert replaced == ["caf\ufffd"]


def test_a_lone_surrogate_escape_in_jsonl_text_or_id_is_refused(tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"t": "a", "i": "x"}\n{"t": "b", "i": "\\udc00"}\n')
    with pytest.raises(BadInput, match="line 2: holds a lone surrogate"):
        list(read_texts([], file=str(corpus), field="t", id_column="i"))
    corpus.write_text('{"t": "caf\\ud800"}\n')
    with pytest.raises(BadInput, match="lone surrogate"):
        list(read_texts([], file=str(corpus), field="t"))


def test_parquet_cells_obey_max_line_bytes_like_lines_do(tmp_path):
    corpus = tmp_path / "c.parquet"
    pq.write_table(pa.table({"text": ["short", "é" * 60, "ok"]}), corpus)
    with pytest.raises(BadInput, match=r"row 2: column 'text' holds 120 bytes, more than max_line_bytes=100"):
        list(read_texts([], file=str(corpus), column="text", max_line_bytes=100))
    assert len(list(read_texts([], file=str(corpus), column="text", max_line_bytes=120))) == 3


def test_a_csv_quote_never_closed_is_an_error_not_one_long_text(tmp_path):
    corpus = tmp_path / "c.csv"
    corpus.write_text('id,text\n1,"a cat\n2,a dog\n')
    with pytest.raises(BadInput, match="unexpected end of data"):
        list(read_texts([], file=str(corpus), column="text"))


def test_quotes_inside_a_csv_field_are_still_text(tmp_path):
    corpus = tmp_path / "c.csv"
    corpus.write_text('text\nsay "hi"\n"a, b"\n')
    assert [item.text for item in read_texts([], file=str(corpus), column="text")] == ['say "hi"', "a, b"]


def test_a_folder_glob_that_reaches_outside_is_refused(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(BadInput) as refused:
        list(read_texts([], file=str(tmp_path), glob="/abs/*.txt"))
    assert refused.value.parameter == "glob"


def test_stdin_keeps_line_indices():
    items = list(read_texts([], stdin=io.BytesIO(b"a\n\nb\n"), skip_empty=True))
    assert [(item.index, item.text) for item in items] == [(0, "a"), (2, "b")]
    assert json.dumps([item.key for item in items]) == '["0", "2"]'


@PROPERTY
@given(st.binary(max_size=300), st.sampled_from([("t.jsonl", "text", None), ("t.csv", None, "text"), ("t.tsv", None, "text"), ("t.txt", None, None)]))
def test_text_files_read_or_are_bad_input(tmp_path_factory, data, spec):
    name, field, column = spec
    path = tmp_path_factory.mktemp("texts") / name
    path.write_bytes(data)
    either_value_or_bad_input(lambda: list(read_texts([], str(path), field, column)))


def test_a_line_without_newline_is_refused_at_the_limit(invoke, tmp_path):
    endless = tmp_path / "endless.txt"
    endless.write_bytes(b"a" * 5000)
    message = one_error_line(invoke("embed", "--file", endless, "--max-line-bytes", "1000"))
    assert "line 1: longer than 1,000 bytes" in message and "--max-line-bytes" in message
    csv_file = tmp_path / "t.csv"
    csv_file.write_text("text\n" + "b" * 5000 + "\n")
    assert "line 2" in one_error_line(invoke("embed", "--file", csv_file, "--column", "text", "--max-line-bytes", "1000"))


@pytest.mark.process
def test_dev_zero_stops_at_the_line_limit_with_little_memory():
    result = subprocess.run([sys.executable, "-m", "vizcli", "embed", "--file", "/dev/zero", "--quiet"],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 2 and "longer than 1,048,576 bytes" in result.stderr, result.stderr


def test_jsonl_with_a_huge_integer_names_the_line(invoke, tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"text": "ok"}\n{"text": "x", "n": ' + "7" * 5000 + "}\n")
    assert "line 2: a number of 5000 characters" in one_error_line(invoke("embed", "--file", path, "--field", "text"))
