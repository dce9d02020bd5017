import numpy as np
import pytest

from tests.search.conftest import clustered, reference_top_k
from vizcli.search.exact import LoadedVectors, exact_search
from vizcli.search.hits import TopK


def _loaded(vectors, block_rows):
    ids = np.array([f"r{row}" for row in range(len(vectors))], dtype=object)
    return LoadedVectors(vectors, ids, None, block_rows)


@pytest.mark.parametrize("block_rows", [1, 7, 64, 1000])
def test_exact_search_equals_brute_force_for_any_block_size(block_rows):
    stored = clustered(300, seed=3)
    queries = clustered(6, seed=4)
    found = exact_search(queries, _loaded(stored, block_rows).blocks(), k=7)
    for hits, expected in zip(found, reference_top_k(queries, stored, 7)):
        assert [hit.row for hit in hits] == [row for _, row in expected]
        np.testing.assert_allclose([hit.score for hit in hits], [score for score, _ in expected], atol=1e-5)
        assert [hit.id for hit in hits] == [f"r{row}" for _, row in expected]


def test_excluded_rows_never_match_and_k_beyond_the_rows_gives_every_row():
    stored = clustered(10, seed=5)
    exclude = np.array([3, -1])
    found = exact_search(stored[[3, 4]], _loaded(stored, 4).blocks(), k=50, exclude=exclude)
    assert len(found[0]) == 9 and 3 not in [hit.row for hit in found[0]]
    assert len(found[1]) == 10 and found[1][0].row == 4
    for hits, expected in zip(found, reference_top_k(stored[[3, 4]], stored, 50, exclude=[3, -1])):
        assert [hit.row for hit in hits] == [row for _, row in expected]


def test_equal_scores_are_ordered_by_row_whatever_the_blocks():
    stored = np.tile(np.eye(4, dtype=np.float32), (5, 1))  # every vector five times
    for block_rows in (1, 3, 20):
        hits = exact_search(np.eye(4, dtype=np.float32)[:1], _loaded(stored, block_rows).blocks(), k=5)[0]
        assert [hit.row for hit in hits] == [0, 4, 8, 12, 16]


def test_top_k_keeps_texts_with_their_rows():
    best = TopK(1, 2)
    best.add(np.array([[0.1, 0.9, 0.5]]), 10, ["a", "b", "c"], ["ta", "tb", "tc"])
    best.add(np.array([[0.7]]), 13, ["d"], ["td"])
    assert [(hit.row, hit.id, hit.text) for hit in best.hits()[0]] == [(11, "b", "tb"), (13, "d", "td")]
