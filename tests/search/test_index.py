import json
import sys

import numpy as np
import pytest

from tests.search.conftest import clustered, reference_top_k, write_synthetic
from vizcli.common.errors import BadInput, RunFailure
from vizcli.search.index import IndexSettings, build_index, index_path, verify_index
from vizcli.search.searcher import Searcher
from vizcli.search.source import EmbedOutput

pytest.importorskip("usearch")


@pytest.fixture
def synthetic(tmp_path, parquet_output):
    vectors = clustered(2000, dimensions=32, clusters=25, seed=20)
    return write_synthetic(tmp_path / "synthetic.parquet", vectors, parquet_output), vectors


def test_the_index_finds_the_brute_force_neighbours(synthetic):
    path, vectors = synthetic
    built = build_index(EmbedOutput(str(path), block_rows=300), IndexSettings(expansion_search=128))
    assert built == index_path(str(path), "mean") and built.name == "synthetic.parquet.mean.usearch"
    record = json.loads(built.with_name(built.name + ".json").read_text())
    assert record["rows"] == 2000 and record["connectivity"] == 16 and len(record["output_sha256"]) == 64
    queries = clustered(30, dimensions=32, clusters=25, seed=21)
    found = Searcher(str(path), mode="index").search_vectors(queries, k=10)
    truth = reference_top_k(queries, vectors, 10)
    recall = np.mean([len({hit.row for hit in hits} & {row for _, row in expected}) / 10 for hits, expected in zip(found, truth)])
    assert recall >= 0.95
    units = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    for query, hits in zip(queries / np.linalg.norm(queries, axis=1, keepdims=True), found):  # each row carries its true cosine
        np.testing.assert_allclose([hit.score for hit in hits], [float(units[hit.row] @ query) for hit in hits], atol=1e-4)
        assert all(hit.id == f"v{hit.row}" for hit in hits)
    assert verify_index(str(path)) == []


def test_an_index_whose_output_changed_is_refused_and_reported(synthetic, parquet_output):
    path, vectors = synthetic
    build_index(EmbedOutput(str(path)))
    write_synthetic(path, vectors[::-1].copy(), parquet_output)  # same size and settings, other rows
    problems = verify_index(str(path))
    assert len(problems) == 1 and "built for another version of synthetic.parquet" in problems[0]
    assert "--build-index" in problems[0]
    with pytest.raises(BadInput, match="another version"):
        Searcher(str(path), mode="index")


def test_a_changed_index_file_or_a_lost_record_is_reported(synthetic):
    path, _ = synthetic
    built = build_index(EmbedOutput(str(path)))
    with built.open("r+b") as handle:
        handle.seek(-1, 2)
        last = handle.read(1)
        handle.seek(-1, 2)
        handle.write(bytes([last[0] ^ 1]))
    assert any("changed since it was built" in problem for problem in verify_index(str(path)))
    built.with_name(built.name + ".json").unlink()
    assert "missing or unreadable" in verify_index(str(path))[0]


def test_no_index_is_nothing_to_verify_but_searching_it_says_how_to_build(synthetic):
    path, _ = synthetic
    assert verify_index(str(path)) == []
    with pytest.raises(BadInput, match="--build-index"):
        Searcher(str(path), mode="index")


def test_without_usearch_one_error_says_how_to_install(synthetic, monkeypatch):
    path, _ = synthetic
    monkeypatch.setitem(sys.modules, "usearch", None)  # as if it were not installed
    monkeypatch.setitem(sys.modules, "usearch.index", None)
    with pytest.raises(RunFailure, match=r"pip install 'vizcli\[index\]'"):
        build_index(EmbedOutput(str(path)))


def test_bad_index_settings_are_refused():
    with pytest.raises(BadInput, match="connectivity=1"):
        IndexSettings(connectivity=1).check()
    with pytest.raises(BadInput, match="index_dtype='f64'"):
        IndexSettings(dtype="f64").check()


def test_id_queries_through_the_index_leave_their_own_row_out(synthetic):
    path, vectors = synthetic
    build_index(EmbedOutput(str(path)), IndexSettings(expansion_search=256))
    found = Searcher(str(path), mode="index").search(ids=["v5", "v700"], k=5)
    truth = reference_top_k(vectors[[5, 700]], vectors, 5, exclude=[5, 700])
    for matches, expected in zip(found, truth):
        assert matches.by_id and len(matches.hits) == 5
        assert len({hit.row for hit in matches.hits} & {row for _, row in expected}) >= 4
    assert found[0].query == "v5" and 5 not in [hit.row for hit in found[0].hits]
    assert found[1].query == "v700" and 700 not in [hit.row for hit in found[1].hits]
