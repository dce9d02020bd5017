import numpy as np
import pytest

from tests.search.conftest import SENTENCES, reference_top_k, stored_vectors
from vizcli.common.errors import BadInput
from vizcli.search.searcher import Searcher, search

QUERIES = ["a kitten on a carpet", "the stock market fell", "a flight was late"]


def _query_vectors(texts, pooling="mean", normalize=True):
    """The queries embedded independently of vizcli.search: the Embedder API with the settings the output was written with."""
    from vizcli.embed import Embedder

    return Embedder(pooling=pooling, normalize=normalize)({"text": texts})[pooling]


@pytest.mark.parametrize("mode,options", [("exact", {}), ("exact", {"in_memory": True, "block_rows": 5}),
                                          ("binary", {"rescore": 3}), ("int8", {"rescore": 3})])
def test_text_queries_find_the_brute_force_neighbours(parquet_output, mode, options):
    stored, ids = stored_vectors(parquet_output, "mean")
    found = Searcher(str(parquet_output), mode=mode, **options).search(QUERIES, k=4)
    for matches, query, expected in zip(found, QUERIES, reference_top_k(_query_vectors(QUERIES), stored, 4)):
        assert matches.query == query and not matches.by_id
        assert [hit.id for hit in matches.hits] == [ids[row] for _, row in expected]
        np.testing.assert_allclose([hit.score for hit in matches.hits], [score for score, _ in expected], atol=1e-4)
        assert [hit.text for hit in matches.hits] == [SENTENCES[row] for _, row in expected]
    assert found[0].hits[0].text == "a kitten sleeps on the rug"


def test_id_queries_use_the_stored_vector_and_leave_their_own_row_out(parquet_output):
    stored, ids = stored_vectors(parquet_output, "mean")
    found = search(str(parquet_output), ids=["4", "20"], k=3)
    for matches, row, expected in zip(found, [4, 20], reference_top_k(stored[[4, 20]], stored, 3, exclude=[4, 20])):
        assert matches.by_id and matches.query == ids[row]
        assert [hit.row for hit in matches.hits] == [r for _, r in expected]
    assert found[0].hits[0].text == "the market crashed after the report"


def test_a_shard_folder_is_searched_by_the_chosen_pooling(folder_output):
    import json

    from vizcli.datasets.units import read_unit

    manifest = json.loads((folder_output / "manifest.json").read_text())
    tables = [read_unit(folder_output / shard["file"]) for shard in manifest["shards"]]
    stored = np.concatenate([np.array(table.column("cls").to_pylist(), dtype=np.float64) for table in tables])
    found = Searcher(str(folder_output), pooling="cls", block_rows=3).search(QUERIES[:2], k=5)
    for matches, expected in zip(found, reference_top_k(_query_vectors(QUERIES[:2], "cls", normalize=False), stored, 5)):
        assert [hit.row for hit in matches.hits] == [row for _, row in expected]
        assert [hit.text for hit in matches.hits] == [SENTENCES[int(hit.id)] for hit in matches.hits]  # read again from the recorded input


def test_near_duplicates_of_the_real_output(parquet_output):
    stored, _ = stored_vectors(parquet_output, "mean")
    pairs = list(Searcher(str(parquet_output)).near_duplicates(0.5))
    units = stored / np.linalg.norm(stored, axis=1, keepdims=True)
    expected = {(a, b) for a in range(len(units)) for b in range(a + 1, len(units)) if units[a] @ units[b] >= 0.5}
    assert {(pair.row_a, pair.row_b) for pair in pairs} == expected and expected


def test_bad_arguments_name_the_parameter(parquet_output):
    with pytest.raises(BadInput, match="mode='fast'"):
        Searcher(str(parquet_output), mode="fast")
    with pytest.raises(BadInput, match="k=0"):
        Searcher(str(parquet_output)).search(QUERIES, k=0)
    with pytest.raises(BadInput, match="no row with id 'nope'"):
        search(str(parquet_output), ids=["nope"])
    with pytest.raises(BadInput, match="texts"):
        search(str(parquet_output))
    with pytest.raises(BadInput, match=r"shape \[2, 5\]"):
        Searcher(str(parquet_output)).search_vectors(np.zeros((2, 5)))


def test_a_plain_string_is_one_query_not_one_per_character(parquet_output):
    searcher = Searcher(str(parquet_output))
    one = searcher.search("a kitten on a carpet", k=2)
    assert [matches.query for matches in one] == ["a kitten on a carpet"]
    assert [hit.row for hit in one[0].hits] == [hit.row for hit in searcher.search(["a kitten on a carpet"], k=2)[0].hits]
    assert [matches.query for matches in search(str(parquet_output), ids="3", k=1)] == ["3"]
