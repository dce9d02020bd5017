"""vizcli.embed.writers: every format holds the rows written to it (read back with its own library), in the
schema the module documents; no model is loaded."""

import csv
import json

import numpy as np
import pytest

from vizcli.common.formats import EMBED_SCHEMA, EMBED_SIMILARITY_SCHEMA
from vizcli.embed.encode import Embedding
from vizcli.embed.writers import write_embeddings, write_similarity

WIDTH = 5
POOLINGS = ("cls", "mean")


def _rows():
    generator = np.random.default_rng(7)
    texts = ["a cat", "ein Hund, bitte", "tab\tand \"quote\"", "é ☃"]
    return [
        Embedding(index, text, tokens=3 + index, truncated=index == 2,
                  vectors={name: generator.standard_normal(WIDTH).astype(np.float32) for name in POOLINGS})
        for index, text in enumerate(texts)
    ]


META = {"schema": EMBED_SCHEMA, "model": "fake", "pooling": list(POOLINGS), "hidden_size": WIDTH}


def test_jsonl_and_json_read_back_to_the_same_float32_values(tmp_path):
    rows = _rows()
    path = tmp_path / "out.jsonl"
    assert write_embeddings(iter(rows), POOLINGS, "jsonl", str(path), META) == 4
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [(r["index"], r["text"], r["tokens"], r["truncated"]) for r in records] == \
        [(row.index, row.text, row.tokens, row.truncated) for row in rows]
    for record, row in zip(records, rows):
        for name in POOLINGS:  # repr of a float32 reads back to the same float32
            np.testing.assert_array_equal(np.array(record[name], dtype=np.float32), row.vectors[name])
    document = tmp_path / "out.json"
    write_embeddings(iter(rows), POOLINGS, "json", str(document), META)
    whole = json.loads(document.read_text(encoding="utf-8"))
    assert whole["schema"] == EMBED_SCHEMA and whole["metadata"] == META and whole["rows"] == records


@pytest.mark.parametrize(("fmt", "delimiter"), [("csv", ","), ("tsv", "\t")])
def test_csv_and_tsv_have_one_column_per_vector_value(tmp_path, fmt, delimiter):
    rows = _rows()
    path = tmp_path / f"out.{fmt}"
    write_embeddings(iter(rows), POOLINGS, fmt, str(path), META)
    with path.open(encoding="utf-8", newline="") as handle:
        table = list(csv.reader(handle, delimiter=delimiter))
    header, body = table[0], table[1:]
    assert header == ["index", "text", "tokens", "truncated", *(f"{name}_{i}" for name in POOLINGS for i in range(WIDTH))]
    assert [line[1] for line in body] == [row.text for row in rows]  # quoting keeps tabs and quotes inside the text
    for line, row in zip(body, rows):
        values = np.array(line[4:], dtype=np.float32)
        np.testing.assert_array_equal(values, np.concatenate([row.vectors[name] for name in POOLINGS]))


def test_npy_streams_one_pooling_and_puts_indexes_in_its_sidecar(tmp_path):
    rows = _rows()
    path = tmp_path / "out.npy"
    assert write_embeddings(iter(rows), ("mean",), "npy", str(path), META) == 4
    array = np.load(path, allow_pickle=False)
    assert array.dtype == np.float32 and array.shape == (4, WIDTH)
    np.testing.assert_array_equal(array, np.stack([row.vectors["mean"] for row in rows]))
    sidecar = json.loads((tmp_path / "out.npy.json").read_text())
    assert sidecar["rows"] == 4 and sidecar["index"] == [0, 1, 2, 3] and sidecar["truncated_rows"] == [2]
    assert sidecar["schema"] == EMBED_SCHEMA


def test_npz_and_safetensors_hold_every_pooling_and_the_row_columns(tmp_path):
    from safetensors import safe_open
    from safetensors.numpy import load_file

    rows = _rows()
    write_embeddings(iter(rows), POOLINGS, "npz", str(tmp_path / "out.npz"), META)
    with np.load(tmp_path / "out.npz", allow_pickle=False) as archive:
        for name in POOLINGS:
            np.testing.assert_array_equal(archive[name], np.stack([row.vectors[name] for row in rows]))
        assert archive["texts"].tolist() == [row.text for row in rows]
        assert archive["truncated"].tolist() == [False, False, True, False]
        assert json.loads(str(archive["metadata"])) == META
    write_embeddings(iter(rows), POOLINGS, "safetensors", str(tmp_path / "out.safetensors"), META)
    tensors = load_file(tmp_path / "out.safetensors")
    assert sorted(tensors) == ["cls", "index", "mean", "tokens", "truncated"]  # no texts: safetensors holds numbers
    assert tensors["tokens"].tolist() == [3, 4, 5, 6]
    with safe_open(tmp_path / "out.safetensors", "np") as handle:
        header = handle.metadata()
    assert header["schema"] == EMBED_SCHEMA and json.loads(header["pooling"]) == list(POOLINGS)


def test_no_rows_still_give_a_well_formed_archive(tmp_path):
    write_embeddings(iter([]), POOLINGS, "npz", str(tmp_path / "empty.npz"), META)
    with np.load(tmp_path / "empty.npz", allow_pickle=False) as archive:
        assert archive["mean"].shape == (0, WIDTH)


def test_similarity_json_is_the_cosine_of_every_pair(tmp_path):
    rows = _rows()
    path = tmp_path / "sim.json"
    write_similarity(rows, ("mean",), "json", str(path))
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["schema"] == EMBED_SIMILARITY_SCHEMA and [t["text"] for t in document["texts"]] == [r.text for r in rows]
    vectors = np.stack([row.vectors["mean"] for row in rows]).astype(np.float64)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    np.testing.assert_allclose(np.array(document["similarity"]["mean"]), unit @ unit.T, rtol=1e-5, atol=1e-6)


def test_similarity_table_names_each_pooling(tmp_path):
    path = tmp_path / "sim.txt"
    write_similarity(_rows(), POOLINGS, "table", str(path))
    text = path.read_text(encoding="utf-8")
    assert "cosine similarity, cls pooling" in text and "cosine similarity, mean pooling" in text
    assert "1.000" in text
