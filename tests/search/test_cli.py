import json

import pytest

from tests.search.conftest import SENTENCES


def _error_line(result):
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def test_a_text_query_prints_a_table_of_ids_scores_and_texts(invoke, parquet_output):
    result = invoke("search", parquet_output, "a kitten on a carpet", "-k", "2")
    assert result.exit_code == 0, result.stderr
    assert "query: a kitten on a carpet" in result.stdout
    assert "a kitten sleeps on the rug" in result.stdout and "a cat sits on the mat" in result.stdout
    assert result.stderr == ""


def test_jsonl_has_an_object_per_query_and_tsv_a_row_per_hit(invoke, parquet_output):
    result = invoke("search", parquet_output, "the stock market fell", "a flight was late", "-k", "3", "-f", "jsonl")
    documents = [json.loads(line) for line in result.stdout.splitlines()]
    assert [document["query"] for document in documents] == ["the stock market fell", "a flight was late"]
    assert [len(document["hits"]) for document in documents] == [3, 3]
    assert documents[1]["hits"][0]["text"] == "our flight was delayed" and documents[1]["hits"][0]["rank"] == 1
    scores = [hit["score"] for hit in documents[0]["hits"]]
    assert scores == sorted(scores, reverse=True)
    tsv = invoke("search", parquet_output, "the stock market fell", "-k", "2", "-f", "tsv").stdout.splitlines()
    assert tsv[0] == "query\trank\tid\tscore\ttext" and len(tsv) == 3
    query, rank, key, score, text = tsv[1].split("\t")
    assert (query, rank, text) == ("the stock market fell", "1", SENTENCES[int(key)]) and float(score) == documents[0]["hits"][0]["score"]


def test_queries_from_stdin_run_in_batches_with_the_same_answers(invoke, parquet_output):
    texts = ["a kitten on a carpet", "the stock market fell", "a flight was late"]
    one_by_one = [invoke("search", parquet_output, text, "-f", "jsonl", "-k", "3").stdout for text in texts]
    result = invoke("search", parquet_output, "-f", "jsonl", "-k", "3", "--batch-size", "2", input="\n".join(texts) + "\n")
    assert result.exit_code == 0, result.stderr
    batched = [json.loads(line) for line in result.stdout.splitlines()]
    alone = [json.loads(text) for text in one_by_one]
    assert [document["query"] for document in batched] == texts
    for mine, theirs in zip(batched, alone):  # a batch pads texts together: the same vectors up to float noise
        assert [hit["id"] for hit in mine["hits"]] == [hit["id"] for hit in theirs["hits"]]
        assert [hit["score"] for hit in mine["hits"]] == pytest.approx([hit["score"] for hit in theirs["hits"]], abs=1e-5)


def test_ids_and_near_duplicates(invoke, parquet_output):
    result = invoke("search", parquet_output, "--id", "0", "-k", "1", "-f", "jsonl")
    assert json.loads(result.stdout) == {"id": "0", "hits": [{"rank": 1, "id": "1", "score": pytest.approx(
        json.loads(result.stdout)["hits"][0]["score"]), "text": "a kitten sleeps on the rug"}]}
    pairs = invoke("search", parquet_output, "--duplicates", "0.5", "-f", "tsv")
    assert pairs.exit_code == 0 and pairs.stdout.splitlines()[0] == "id_a\tid_b\tscore\ttext_a\ttext_b"
    assert all(float(line.split("\t")[2]) >= 0.5 for line in pairs.stdout.splitlines()[1:])
    assert "pairs with cosine ≥ 0.5" in pairs.stderr


def test_bad_inputs_are_one_error_line(invoke, parquet_output, tmp_path):
    missing = invoke("search", tmp_path / "nope.parquet", "a cat")
    assert missing.exit_code == 2 and _error_line(missing).endswith("nope.parquet: no such output")
    plain = tmp_path / "notes.txt"
    plain.write_text("hello\n")
    wrong = invoke("search", plain, "a cat")
    assert wrong.exit_code == 2 and "notes.txt" in _error_line(wrong)
    assert "--top-k 0" in _error_line(invoke("search", parquet_output, "a cat", "-k", "0"))
    assert "--pooling cls" in _error_line(invoke("search", parquet_output, "a cat", "-p", "cls"))
    assert "id 'zz'" in _error_line(invoke("search", parquet_output, "--id", "zz"))
    assert "--duplicates 2" in _error_line(invoke("search", parquet_output, "--duplicates", "2"))
    assert "no queries" in _error_line(invoke("search", parquet_output, input=""))


def test_the_index_is_built_used_and_refused_once_stale(invoke, tmp_path, parquet_output):
    pytest.importorskip("usearch")
    import shutil

    copy = tmp_path / "copy.parquet"
    shutil.copy(parquet_output, copy)
    absent = invoke("search", copy, "a cat", "--mode", "index")
    assert absent.exit_code == 2 and "--build-index" in _error_line(absent)
    built = invoke("search", copy, "--build-index")
    assert built.exit_code == 0 and built.stdout == "" and "indexed 24 vectors (mean)" in built.stderr
    exact = invoke("search", copy, "the stock market fell", "-k", "3", "-f", "tsv").stdout
    indexed = invoke("search", copy, "the stock market fell", "-k", "3", "-f", "tsv", "--mode", "index").stdout
    assert [line.split("\t")[2] for line in indexed.splitlines()] == [line.split("\t")[2] for line in exact.splitlines()]
    copy.write_bytes(copy.read_bytes().replace(b"a cat sits on the mat", b"a cat sits on the hat"))
    stale = invoke("search", copy, "a cat", "--mode", "index")
    assert stale.exit_code == 2 and "built for another version of copy.parquet" in _error_line(stale)


def test_without_the_extra_one_error_line_says_how_to_install(invoke, parquet_output, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "usearch", None)
    monkeypatch.setitem(sys.modules, "usearch.index", None)
    result = invoke("search", parquet_output, "--build-index")
    assert result.exit_code == 1
    assert "pip install 'vizcli[index]'" in _error_line(result)


@pytest.mark.process
def test_help_imports_nothing_heavy_and_shows_examples():
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = ("import sys\nfrom vizcli.cli import app\ntry:\n    app(['search', '--help'], prog_name='vizcli')\nexcept SystemExit:\n"
            "    pass\nprint(sorted(m for m in ('torch', 'numpy', 'pyarrow', 'usearch', 'transformers') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout + result.stderr
    assert "vizcli search vectors.parquet" in result.stdout and "--build-index" in result.stdout


def test_an_output_that_keeps_no_text_shows_the_texts_of_its_recorded_input(invoke, folder_output):
    result = invoke("search", f"{folder_output}/", "a flight was late", "-k", "2", "-f", "jsonl", "--pooling", "mean")
    assert result.exit_code == 0, result.stderr
    hits = json.loads(result.stdout)["hits"]
    assert [hit["text"] for hit in hits] == [SENTENCES[int(hit["id"])] for hit in hits]
    assert result.stderr == ""


def test_texts_that_cannot_be_read_again_are_left_out_with_one_warning(invoke, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    assert invoke("embed", "--file", corpus, "-p", "mean", "--quiet", "-o", tmp_path / "v.parquet").exit_code == 0
    corpus.unlink()  # the input moved away after the run
    result = invoke("search", tmp_path / "v.parquet", "a flight was late", "-k", "2", "-f", "jsonl")
    assert result.exit_code == 0, result.stderr
    assert all("text" not in hit for hit in json.loads(result.stdout)["hits"])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Warning: texts are not shown: ") and "corpus.txt" in lines[0], result.stderr
    piped = invoke("embed", "-p", "mean", "--quiet", "-o", tmp_path / "piped.parquet", input="\n".join(SENTENCES) + "\n")
    assert piped.exit_code == 0, piped.stderr
    result = invoke("search", tmp_path / "piped.parquet", "a flight was late", "-k", "1")
    assert result.exit_code == 0 and "records no input file" in result.stderr and "--keep-text" in result.stderr
    moved = tmp_path / "moved"
    moved.mkdir()
    (moved / "corpus.txt").write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    found = invoke("search", tmp_path / "v.parquet", "a flight was late", "-k", "2", "-f", "jsonl", "--root", moved)
    assert found.exit_code == 0 and found.stderr == "", found.stderr
    assert [hit["text"] for hit in json.loads(found.stdout)["hits"]] == [SENTENCES[int(hit["id"])] for hit in json.loads(found.stdout)["hits"]]


def test_duplicates_of_an_output_that_keeps_no_text_show_its_recorded_texts(invoke, folder_output):
    result = invoke("search", f"{folder_output}/", "--duplicates", "0.5", "-f", "jsonl", "--pooling", "mean")
    assert result.exit_code == 0, result.stderr
    pairs = [json.loads(line) for line in result.stdout.splitlines()]
    assert pairs and all((pair["text_a"], pair["text_b"]) == (SENTENCES[int(pair["id_a"])], SENTENCES[int(pair["id_b"])]) for pair in pairs)
