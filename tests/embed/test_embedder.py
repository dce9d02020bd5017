"""``vizcli embed`` over corpora: ids, Parquet in and out, precision, prefix, resume, shards, merge."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import ROOT
from tests.datasets.events import count, wait_for

TEXTS = [f"sentence {i}: the cat sat on mat number {i}" if i % 2 else f"line {i} about rain in the valley" for i in range(30)]


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.parquet"
    pq.write_table(pa.table({"id": [f"doc-{i:03d}" for i in range(len(TEXTS))], "text": TEXTS}), path, row_group_size=8)
    return path


def _vectors(path, column="mean"):
    table = pq.read_table(path)
    return table.column("id").to_pylist(), np.array(table.column(column).to_pylist())


def test_parquet_in_and_out_with_ids_equals_the_plain_path(invoke, corpus, tmp_path):
    out = tmp_path / "v.parquet"
    result = invoke("embed", "--file", corpus, "--column", "text", "--id-column", "id", "-p", "mean", "-o", out, "--keep-text")
    assert result.exit_code == 0, result.stderr
    table = pq.read_table(out)
    assert table.column_names == ["id", "index", "tokens", "truncated", "text", "mean"]
    assert table.column("id").to_pylist()[:2] == ["doc-000", "doc-001"] and table.column("text").to_pylist() == TEXTS
    meta = json.loads(table.schema.metadata[b"vizcli"])
    assert meta["schema"] == "vizcli.embed/2" and meta["precision"] == "float32" and len(meta["weights_sha256"]) == 64
    plain = invoke("embed", *TEXTS[:5], "-p", "mean", "--format", "jsonl")
    expected = np.array([json.loads(line)["mean"] for line in plain.stdout.splitlines()])
    np.testing.assert_allclose(np.array(table.column("mean").to_pylist()[:5]), expected, rtol=1e-6, atol=1e-6)


def test_a_folder_of_text_files_is_one_document_each_with_its_path_as_id(invoke, tmp_path):
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("first document\nwith two lines")
    (folder / "sub" / "b.txt").write_text("second document")
    (folder / "skip.md").write_text("not chosen")
    out = tmp_path / "v.parquet"
    assert invoke("embed", "--file", folder, "-p", "mean", "-o", out).exit_code == 0
    assert pq.read_table(out).column("id").to_pylist() == ["a.txt", "sub/b.txt"]


@pytest.mark.parametrize("precision", ["int8", "uint8", "binary", "ubinary"])
def test_precision_matches_sentence_transformers_quantize_embeddings(invoke, corpus, tmp_path, precision):
    from sentence_transformers.util.quantization import quantize_embeddings

    common = ["embed", "--file", corpus, "--column", "text", "--id-column", "id", "-p", "mean", "--normalize"]
    assert invoke(*common, "-o", tmp_path / "f32.parquet").exit_code == 0
    result = invoke(*common, "-o", tmp_path / "q.parquet", "--precision", precision, "--calibration", "10")
    assert result.exit_code == 0, result.stderr
    _, floats = _vectors(tmp_path / "f32.parquet")
    _, stored = _vectors(tmp_path / "q.parquet")
    recorded = json.loads(pq.read_schema(tmp_path / "q.parquet").metadata[b"vizcli"])["ranges"]
    # the ranges are the first 10 texts' min and max (computed in their own batch: equal to 1e-6, not bit for bit) …
    calibration = np.array(recorded["mean"], dtype=np.float32) if recorded else floats[:10].astype(np.float32)
    if recorded:
        np.testing.assert_allclose(calibration, np.stack([floats[:10].min(0), floats[:10].max(0)]), atol=1e-6)
    # … and every stored value is what sentence-transformers makes of the floats with those ranges
    expected = quantize_embeddings(floats.astype(np.float32), precision, calibration_embeddings=calibration)
    np.testing.assert_array_equal(stored, expected)
    if precision.endswith("int8"):
        assert (np.abs(stored.astype(int) - (128 if precision == "uint8" else 0)).sum(axis=1) > 0).all()  # none collapsed
        ranges = json.loads((tmp_path / "q.ranges.json").read_text())["ranges"]["mean"]
        again = invoke(*common, "-o", tmp_path / "again.parquet", "--precision", precision, "--ranges", tmp_path / "q.ranges.json")
        assert again.exit_code == 0, again.stderr
        np.testing.assert_array_equal(_vectors(tmp_path / "again.parquet")[1], stored)
        assert np.array(ranges).shape == (2, 384)


def test_half_precisions_round_the_float32_vectors(invoke, corpus, tmp_path):
    import torch

    common = ["embed", "--file", corpus, "--column", "text", "-p", "mean"]
    assert invoke(*common, "-o", tmp_path / "f32.parquet").exit_code == 0
    _, floats = _vectors(tmp_path / "f32.parquet")
    assert invoke(*common, "-o", tmp_path / "f16.parquet", "--precision", "float16").exit_code == 0
    np.testing.assert_array_equal(_vectors(tmp_path / "f16.parquet")[1], floats.astype(np.float16))
    assert invoke(*common, "-o", tmp_path / "bf16.parquet", "--precision", "bfloat16").exit_code == 0
    bits = _vectors(tmp_path / "bf16.parquet")[1].astype(np.uint16)
    back = torch.from_numpy(bits.view(np.int16)).view(torch.bfloat16).float().numpy()
    np.testing.assert_array_equal(back, torch.from_numpy(floats.astype(np.float32)).bfloat16().float().numpy())


def test_prefix_and_truncate_dim(invoke, corpus, tmp_path):
    result = invoke("embed", "--file", corpus, "--column", "text", "-p", "mean", "--prefix", "query: ", "--truncate-dim", "64",
                    "--normalize", "--keep-text", "-o", tmp_path / "v.parquet")
    assert result.exit_code == 0, result.stderr
    table = pq.read_table(tmp_path / "v.parquet")
    meta = json.loads(table.schema.metadata[b"vizcli"])
    assert meta["prefix"] == "query: " and meta["truncate_dim"] == 64 and table.column("text").to_pylist()[0] == TEXTS[0]
    vectors = np.array(table.column("mean").to_pylist())
    full = invoke("embed", "query: " + TEXTS[0], "-p", "mean", "--format", "jsonl")
    first = np.array(json.loads(full.stdout)["mean"])[:64]
    np.testing.assert_allclose(vectors[0], first / np.linalg.norm(first), rtol=1e-5, atol=1e-6)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)


def test_corpus_flags_need_a_corpus_output(invoke):
    result = invoke("embed", "a cat", "--precision", "int8")
    assert result.exit_code == 2 and "--precision int8: applies to dataset outputs only" in result.stderr


def test_shards_split_by_id_and_merge_joins_them(invoke, corpus, tmp_path):
    common = ["embed", "--file", corpus, "--column", "text", "--id-column", "id", "-p", "mean"]
    parts = []
    for index in range(2):
        out = tmp_path / f"part{index}.parquet"
        assert invoke(*common, "--shard", f"{index}/2", "-o", out).exit_code == 0
        parts.append(out)
    ids = [set(_vectors(part)[0]) for part in parts]
    assert not ids[0] & ids[1] and len(ids[0] | ids[1]) == len(TEXTS)
    folder = tmp_path / "merged"
    result = invoke("merge", *parts, "-o", f"{folder}/")
    assert result.exit_code == 0, result.stderr
    assert json.loads((folder / "manifest.json").read_text())["rows"] == len(TEXTS)
    assert invoke(*common, "-o", tmp_path / "whole.parquet").exit_code == 0
    merged = tmp_path / "merged.parquet"
    assert invoke("merge", folder, "-o", merged).exit_code == 0
    got_ids, got = _vectors(merged)
    want_ids, want = _vectors(tmp_path / "whole.parquet")
    order = np.argsort(got_ids)
    assert sorted(got_ids) == sorted(want_ids)
    # a shard's texts meet other texts in their batches than in the whole run: equal to float32 rounding, not bit for bit
    np.testing.assert_allclose(got[order], want[np.argsort(want_ids)], atol=1e-6)


@pytest.mark.slow
def test_a_killed_corpus_run_resumes_to_every_id_exactly_once(tmp_path):
    lines = [f"line {i}: " + " ".join(["word"] * (i % 40 + 3)) for i in range(1500)]
    source = tmp_path / "corpus.jsonl"
    source.write_text("".join(json.dumps({"key": f"k{i}", "body": text}) + "\n" for i, text in enumerate(lines)))
    common = ["-m", "vizcli", "embed", "--file", str(source), "--field", "body", "--id-column", "key", "-p", "mean",
              "--shard-size", "0.05", "--threads", "1", "--quiet", "--batch-size", "16"]  # windows of 256 texts: units land as it goes
    reference = tmp_path / "reference.parquet"
    subprocess.run([sys.executable, *common, "-o", str(reference)], cwd=ROOT, check=True, capture_output=True, timeout=600)
    out = tmp_path / "out.parquet"
    parts = tmp_path / "out.parquet.parts"
    process = subprocess.Popen([sys.executable, *common, "-o", str(out)], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    # the event: three units renamed into place (inotify wakes the wait; no sleep decides when to kill)
    wait_for(lambda: count(parts, "part-*") >= 3, [tmp_path, parts], timeout=300, process=process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    finished = len(list(parts.glob("part-*")))
    assert finished >= 3 and not out.exists()
    result = subprocess.run([sys.executable, *common, "-o", str(out), "--resume"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    got_ids, got = _vectors(out)
    want_ids, want = _vectors(reference)
    assert len(got_ids) == len(set(got_ids)) == len(lines)
    # equal up to float32 batching noise: after a resume the texts fall into other length-sorted batches,
    # and the encoder is batch-invariant within 1e-5 (a test of its own)
    np.testing.assert_allclose(got[np.argsort(got_ids)], want[np.argsort(want_ids)], rtol=0, atol=1e-5)


def test_pooling_auto_and_prompts_follow_the_models_sentence_transformers_files(invoke, tmp_path):
    import shutil

    from vizcli.embed.loading import bundled_model_path

    auto = invoke("embed", "a cat", "a dog", "-p", "auto", "--format", "json")
    explicit = invoke("embed", "a cat", "a dog", "-p", "mean", "--normalize", "--format", "json")
    assert auto.exit_code == 0, auto.stderr
    assert json.loads(auto.stdout)["rows"] == json.loads(explicit.stdout)["rows"]  # mean + Normalize, from modules.json
    unnormalised = json.loads(invoke("embed", "a cat", "-p", "auto", "--no-normalize", "--format", "json").stdout)["rows"][0]["mean"]
    assert abs(np.linalg.norm(unnormalised) - 1) > 1e-3
    folder = tmp_path / "model"
    shutil.copytree(bundled_model_path(), folder)
    (folder / "config_sentence_transformers.json").write_text(json.dumps({"prompts": {"query": "query: ", "passage": "passage: "}}))
    prompted = invoke("embed", "a cat", "--model", folder, "-p", "mean", "--prompt", "query", "--format", "json")
    prefixed = invoke("embed", "a cat", "--model", folder, "-p", "mean", "--prefix", "query: ", "--format", "json")
    assert prompted.exit_code == 0, prompted.stderr
    assert json.loads(prompted.stdout)["rows"] == json.loads(prefixed.stdout)["rows"]
    assert json.loads(prompted.stdout)["rows"][0]["text"] == "a cat"
    assert json.loads(prompted.stdout)["metadata"]["prefix"] == "query: "
    unknown = invoke("embed", "a cat", "--model", folder, "--prompt", "nope")
    assert unknown.exit_code == 2 and "its prompts: passage, query" in unknown.stderr


def test_a_repeated_id_far_apart_is_exit_2_and_leaves_no_output(invoke, tmp_path):
    source = tmp_path / "ids.jsonl"
    ids = [f"doc-{i}" for i in range(1500)] + ["doc-3"]  # the repeat arrives after the first unit is on disk
    source.write_text("".join(json.dumps({"id": key, "text": f"text {i}"}) + "\n" for i, key in enumerate(ids)))
    out = tmp_path / "v.parquet"
    result = invoke("embed", "--file", source, "--field", "text", "--id-column", "id", "-p", "mean", "--max-length", "16",
                    "--shard-size", "0.5", "-o", out)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: id 'doc-3' appears twice") and result.stderr.count("\n") == 1
    assert not out.exists()


@pytest.mark.slow  # reads oneDNN's own verbose log; tests/common/test_runtime.py checks vizcli's side in the fast tiers
@pytest.mark.process
def test_corpus_runs_turn_off_onednns_kernel_cache(tmp_path):
    """Every batch shape would otherwise keep a compiled GELU kernel (see keep_heap_flat): with the
    cache off, oneDNN reports no cache hits even when shapes repeat."""
    source = tmp_path / "same.txt"
    source.write_text("".join(f"word{i % 10} is here\n" for i in range(64)))
    result = subprocess.run([sys.executable, "-m", "vizcli", "embed", "--file", str(source), "-p", "mean", "--batch-size", "8",
                             "--threads", "1", "-o", str(tmp_path / "v.parquet")],
                            cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "ONEDNN_VERBOSE": "2"})
    assert result.returncode == 0, result.stderr
    created = [line for line in result.stdout.splitlines() if ",create:" in line]
    assert created and not [line for line in created if "cache_hit" in line]
    plain = subprocess.run([sys.executable, "-m", "vizcli", "embed", "--file", str(source), "-p", "mean", "--batch-size", "8",
                            "--threads", "1", "-o", str(tmp_path / "v.npy")],
                           cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "ONEDNN_VERBOSE": "2"})
    assert any("cache_hit" in line for line in plain.stdout.splitlines())  # outside corpus runs the cache stays on


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_an_empty_id_is_refused_not_turned_into_a_row_number(invoke, tmp_path, kind):
    if kind == "parquet":
        corpus = tmp_path / "c.parquet"
        pq.write_table(pa.table({"id": ["1", None, "3"], "text": ["a cat", "a dog", "a cow"]}), corpus)
    else:
        corpus = tmp_path / "c.csv"
        corpus.write_text("id,text\n1,a cat\n,a dog\n3,a cow\n")
    out = tmp_path / "v.parquet"
    result = invoke("embed", "--file", corpus, "--column", "text", "--id-column", "id", "-p", "mean", "-o", out)
    assert result.exit_code == 2
    assert result.stderr.count("Error:") == 1 and "'id' is empty" in result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == [corpus.name]  # nothing left behind
