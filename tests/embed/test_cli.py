"""vizcli.embed.cli, corpus runs: every text is accounted for, formats are not contradicted, the environment is left alone."""

import csv
import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from tests.checks import one_error_line
from tests.conftest import ROOT
from vizcli.datasets.run import SKIPPED_ROWS_EXIT
from vizcli.embed.loading import bundled_model_path

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
    assert result.exit_code == 2 and result.stderr.startswith("Error: --format csv: sets what stdout shows")
    assert "--output-format" in result.stderr
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


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """A tiny random BertModel with and without pooler weights, with the bundled tokenizer."""
    from transformers import BertConfig, BertModel

    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64)
    folders = {}
    for name, pooling in (("tiny", True), ("nopooler", False)):
        folder = root / name
        BertModel(config, add_pooling_layer=pooling).save_pretrained(str(folder))
        for file in ("tokenizer.json", "vocab.txt", "tokenizer_config.json"):
            shutil.copy(bundled_model_path() / file, folder / file)
        folders[name] = folder
    notok = root / "notokenizer"
    shutil.copytree(folders["tiny"], notok)
    for file in ("tokenizer.json", "vocab.txt"):
        (notok / file).unlink()
    folders["notokenizer"] = notok
    return folders


def _rows(text):
    return [json.loads(line) for line in text.splitlines()]


@pytest.mark.parametrize("source", ["arguments", "stdin", "txt", "jsonl", "csv", "tsv"])
def test_input_sources_keep_line_order(invoke, tiny_models, tmp_path, source):
    texts = ["first line", "", "third, with a comma", "fourth"]
    args = ["embed", "--model", tiny_models["tiny"], "--pooling", "mean"]
    stdin = None
    if source == "arguments":
        args += texts
    elif source == "stdin":
        stdin = "\n".join(texts) + "\n"
    elif source == "txt":
        (tmp_path / "t.txt").write_text("\n".join(texts) + "\n")
        args += ["--file", tmp_path / "t.txt"]
    elif source == "jsonl":
        (tmp_path / "t.jsonl").write_text("\n".join(json.dumps({"body": t}) for t in texts) + "\n")
        args += ["--file", tmp_path / "t.jsonl", "--field", "body"]
    else:
        delimiter = "," if source == "csv" else "\t"
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=delimiter)
        writer.writerow(["id", "sentence"])
        writer.writerows([[i, t] for i, t in enumerate(texts)])
        (tmp_path / f"t.{source}").write_text(buffer.getvalue())
        args += ["--file", tmp_path / f"t.{source}", "--column", "sentence"]
    result = invoke(*args, input=stdin)
    assert result.exit_code == 0, result.stderr
    rows = _rows(result.stdout)
    assert [row["text"] for row in rows] == texts
    assert [row["index"] for row in rows] == [0, 1, 2, 3]
    assert len(rows[0]["mean"]) == 32


def test_skip_empty_keeps_line_numbers(invoke, tiny_models):
    result = invoke("embed", "--model", tiny_models["tiny"], "--skip-empty", input="a\n\nb\n")
    assert [row["index"] for row in _rows(result.stdout)] == [0, 2]


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv", "tsv", "npy", "npz", "safetensors"])
def test_every_format_round_trips(invoke, tiny_models, tmp_path, fmt):
    from safetensors.numpy import load_file

    reference = _rows(invoke("embed", "--model", tiny_models["tiny"], "-p", "mean", "a cat", "a dog").stdout)
    vectors = np.array([row["mean"] for row in reference], dtype=np.float32)
    target = tmp_path / f"out.{fmt}"
    result = invoke("embed", "--model", tiny_models["tiny"], "-p", "mean", "a cat", "a dog", "-o", target)
    assert result.exit_code == 0, result.stderr
    if fmt == "jsonl":
        loaded = np.array([row["mean"] for row in _rows(target.read_text())], dtype=np.float32)
    elif fmt == "json":
        document = json.loads(target.read_text())
        assert document["metadata"]["pooling"] == ["mean"]
        loaded = np.array([row["mean"] for row in document["rows"]], dtype=np.float32)
    elif fmt in ("csv", "tsv"):
        rows = list(csv.DictReader(io.StringIO(target.read_text()), delimiter="," if fmt == "csv" else "\t"))
        assert rows[1]["text"] == "a dog" and rows[1]["truncated"] == "false"
        loaded = np.array([[float(row[f"mean_{i}"]) for i in range(32)] for row in rows], dtype=np.float32)
    elif fmt == "npy":
        loaded = np.load(target)
        assert json.loads((tmp_path / "out.npy.json").read_text())["index"] == [0, 1]
    elif fmt == "npz":
        with np.load(target) as data:
            loaded = data["mean"]
            assert list(data["texts"]) == ["a cat", "a dog"]
            assert json.loads(str(data["metadata"]))["model"] == str(tiny_models["tiny"])
    else:
        tensors = load_file(str(target))
        loaded = tensors["mean"]
        assert list(tensors["index"]) == [0, 1]
    assert np.array_equal(loaded, vectors)  # bit-exact: floats round-trip


def test_similarity_table_and_json(invoke):
    text = "a cat sits on the mat\na dog lies on the rug\n"
    result = invoke("embed", "--pooling", "pooler,mean", "--similarity", input=text)
    assert result.exit_code == 0, result.stderr
    assert "cosine similarity, pooler pooling" in result.stdout and "cosine similarity, mean pooling" in result.stdout
    document = json.loads(invoke("embed", "--pooling", "mean", "--similarity", "--format", "json", input=text).stdout)
    matrix = np.array(document["similarity"]["mean"])
    assert matrix.shape == (2, 2) and np.allclose(np.diag(matrix), 1.0) and 0.2 < matrix[0, 1] < 0.9


def test_truncation_warning_counts(invoke, tiny_models):
    result = invoke("embed", "--model", tiny_models["tiny"], "--max-length", "4", "one two three four", "one")
    rows = _rows(result.stdout)
    assert [row["truncated"] for row in rows] == [True, False]
    assert result.stderr.startswith("Warning: 1 text longer than 4 tokens was truncated and flagged (first: argument 1)")


def test_model_without_pooler_refuses_pooler_and_defaults_to_mean(invoke, tiny_models):
    result = invoke("embed", "--model", tiny_models["nopooler"], "-p", "pooler", "a")
    assert result.exit_code == 2 and "no pooler weights" in result.stderr and "mean" in result.stderr
    default, mean = (invoke("embed", "--model", tiny_models["nopooler"], *pooling, "a") for pooling in ([], ["-p", "mean"]))
    assert default.exit_code == 0 and default.stdout == mean.stdout


def test_a_plain_bert_folder_defaults_to_its_pooler(invoke, tiny_models):
    default, pooler = (invoke("embed", "--model", tiny_models["tiny"], *pooling, "a") for pooling in ([], ["-p", "pooler"]))
    assert "pooler" in _rows(default.stdout)[0] and default.stdout == pooler.stdout


def test_hub_name_offline_is_exit_1(invoke, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    result = invoke("embed", "--model", "no-such-org/no-such-bert-model", "a")
    assert result.exit_code == 1
    assert "not in the Hugging Face cache" in result.stderr and "--model PATH" in result.stderr


@pytest.mark.parametrize(
    "args, stdin, fragment",
    [
        ([], b"ok\n\xff\xfe bad\n", "stdin line 2: invalid UTF-8 at byte 1"),
        ([], b"ok\nnul\x00byte\n", "stdin line 2: contains a NUL byte"),
        ([], b"", "no input text"),
        (["--file", "missing.txt"], None, "--file missing.txt: no such file"),
        (["--file", "{jsonl}"], None, "needs --field"),
        (["--file", "{jsonl}", "--field", "nope"], None, "line 1: no field 'nope'"),
        (["--file", "{csv}", "--column", "nope"], None, "no column 'nope'"),
        (["--batch-size", "0", "a"], None, "--batch-size 0"),
        (["--max-length", "100000", "a"], None, "--max-length 100000"),
        (["--pooling", "median", "a"], None, "unknown pooling 'median'"),
        (["--format", "xml", "a"], None, "--format xml"),
        (["--model", "{folder}", "a"], None, "not a model folder"),
        (["--model", "{notokenizer}", "a"], None, "no tokenizer"),
        (["-o", "out.npy", "-p", "mean,cls", "a"], None, "npy holds one array"),
        (["--on-overflow", "drop", "a"], None, "--on-overflow drop"),
    ],
)
def test_bad_input_is_exit_2_one_line_nothing_written(invoke, tiny_models, tmp_path, monkeypatch, args, stdin, fragment):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "t.jsonl").write_text('{"text": "a"}\n')
    (tmp_path / "in" / "t.csv").write_text("text\na\n")
    names = {"{jsonl}": "in/t.jsonl", "{csv}": "in/t.csv", "{folder}": str(tmp_path / "in"), "{notokenizer}": str(tiny_models["notokenizer"])}
    args = [names.get(a, a) for a in args]
    from typer.testing import CliRunner

    from vizcli.cli import app

    result = CliRunner().invoke(app, ["embed", *args, "-o", "result.jsonl"] if "-o" not in args else ["embed", *args], input=stdin)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert fragment in result.stderr
    assert sorted(os.listdir(tmp_path)) == ["in"]


def test_encoding_errors_replace(invoke, tiny_models):
    result = invoke("embed", "--model", tiny_models["tiny"], "--encoding-errors", "replace", input=b"ok\n\xff bad\n")
    assert result.exit_code == 0
    assert _rows(result.stdout)[1]["text"] == "\ufffd bad"


def test_other_bert_family_models_run_through_transformers(invoke, tmp_path):
    """A RoBERTa folder is not computed natively: vizcli hands it to transformers.AutoModel."""
    from transformers import RobertaConfig, RobertaModel

    torch.manual_seed(0)
    config = RobertaConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=64, max_position_embeddings=66, pad_token_id=1)
    reference = RobertaModel(config).eval()
    folder = tmp_path / "roberta"
    reference.save_pretrained(str(folder))
    for file in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(bundled_model_path() / file, folder / file)
    result = invoke("embed", "--model", folder, "-p", "mean,pooler", "a cat sits")
    assert result.exit_code == 0, result.stderr
    row = _rows(result.stdout)[0]
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_padding()
    ids = torch.tensor([tokenizer.encode("a cat sits").ids])
    with torch.no_grad():
        expected = reference(input_ids=ids, attention_mask=torch.ones_like(ids))
    assert np.abs(np.array(row["mean"]) - expected.last_hidden_state[0].mean(0).numpy()).max() <= 1e-5
    assert np.abs(np.array(row["pooler"]) - expected.pooler_output[0].numpy()).max() <= 1e-5


@pytest.mark.slow
def test_ten_megabyte_line_is_truncated_flagged_and_bounded(tmp_path):
    line = ("word " * 2_000_000).encode()  # 10 MB, one line
    process = subprocess.Popen([sys.executable, "-m", "vizcli", "embed", "-p", "mean", "--quiet", "--max-line-bytes", "20000000"],
                               cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout, stderr = process.communicate(line + b"\n", timeout=300)
    assert process.returncode == 0, stderr.decode()[-500:]
    row = json.loads(stdout)
    assert row["truncated"] is True and row["tokens"] > 1_000_000
    assert stderr.decode().startswith("Warning: 1 text longer than 512 tokens was truncated")


@pytest.mark.parametrize("value", ["0", "100000"])
def test_batch_size_has_bounds(invoke, value):
    assert f"--batch-size {value}" in one_error_line(invoke("embed", "--batch-size", value, "a"))


@pytest.mark.parametrize("words", [["verify"], ["merge", "a", "b"], ["verify", "x.parquet"]])
def test_no_positional_argument_is_a_command_name(invoke, words):
    result = invoke("embed", *words)
    assert result.exit_code == 0, result.stderr
    assert [row["text"] for row in _rows(result.stdout)] == words


@pytest.mark.parametrize("args, names", [
    (["-f", "npy", "-o", "{d}/x.npy", "a"], ("--output-format npy", "-o FILE.npy")),
    (["-f", "npz", "a"], ("--output-format npz",)),
    (["-f", "csv", "-o", "{d}/x.csv", "a"], ("suffix", "--output-format csv")),
    (["--sample", "3", "a"], ("vizcli verify OUTPUT --sample N",)),
    (["--tolerance", "0.1", "a"], ("vizcli verify OUTPUT --tolerance T",)),
])
def test_old_spellings_give_one_error_line_naming_the_new(invoke, tmp_path, args, names):
    message = one_error_line(invoke("embed", *[arg.replace("{d}", str(tmp_path)) for arg in args]))
    assert all(name in message for name in names), message
    assert os.listdir(tmp_path) == []


def test_similarity_follows_the_models_own_pooling_by_default(invoke):
    """The bundled MiniLM was trained for mean pooling: an unrelated sentence scores low against two cat sentences."""
    text = "a cat sits on the mat\na cat lies on a mat\nthe stock market fell sharply today\n"
    document = json.loads(invoke("embed", "--similarity", "-f", "json", input=text).stdout)
    assert list(document["similarity"]) == ["mean"]
    matrix = np.array(document["similarity"]["mean"])
    assert matrix[0, 1] > 0.6 and matrix[0, 2] < 0.2 and matrix[1, 2] < 0.2
    pooled = np.array(json.loads(invoke("embed", "--similarity", "-f", "json", "-p", "pooler", input=text).stdout)["similarity"]["pooler"])
    assert pooled[0, 2] > matrix[0, 2]  # BERT's pooler, trained for next-sentence prediction, tells them apart less well


def test_plain_vectors_default_to_the_models_pooling_and_normalization(invoke):
    default = _rows(invoke("embed", "a cat").stdout)[0]
    explicit = _rows(invoke("embed", "a cat", "-p", "mean", "--normalize").stdout)[0]
    assert default == explicit and abs(np.linalg.norm(default["mean"]) - 1) < 1e-5


def test_a_written_file_is_confirmed_on_stderr_and_stdout_stays_empty(invoke, tmp_path):
    result = invoke("embed", "a cat", "a dog", "-o", tmp_path / "v.npy")
    assert result.exit_code == 0 and result.stdout == ""
    assert result.stderr == f"wrote 2 texts' vectors (mean pooling) as npy to {tmp_path}/v.npy (and its metadata to {tmp_path}/v.npy.json)\n"
    assert invoke("embed", "a cat", "-o", tmp_path / "q.csv", "--quiet").stderr == ""


@pytest.mark.process
def test_stdout_carries_only_the_result_through_head():
    """Notes (what --dtype auto picked) go to stderr; the first line on stdout is the CSV header."""
    done = subprocess.run(f"{sys.executable} -m vizcli embed 'a cat' 'a dog' --dtype auto -f csv | head -1", shell=True,
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("index,text,tokens,truncated,mean_0,") and done.stdout.count("\n") == 1
    assert "--dtype auto: float32 in numpy" in done.stderr and "Traceback" not in done.stderr
