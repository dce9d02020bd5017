import numpy as np
import pytest

from tests.search.conftest import clustered, reference_top_k
from vizcli.common.errors import BadInput
from vizcli.search.quantized import QuantizedVectors, binary_words


def _quantized(vectors, quantization, threads=2):
    units = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.array([f"r{row}" for row in range(len(vectors))], dtype=object)
    return QuantizedVectors(units.astype(np.float32), ids, None, quantization, threads)


def test_binary_candidates_are_the_rows_of_least_hamming_distance_by_a_slow_loop():
    vectors = np.random.default_rng(0).standard_normal((30, 100)).astype(np.float32)
    words = binary_words(vectors)
    assert words.shape == (2, 30)  # 100 bits: two 64-bit words per row
    quantized = _quantized(vectors, "binary")
    for query in range(3):
        distance = [sum((vectors[query, d] > 0) != (vectors[row, d] > 0) for d in range(100)) for row in range(30)]
        expected = sorted(range(30), key=lambda row: (distance[row], row))[:7]  # at the cut, the lowest rows
        assert sorted(quantized._nearest_codes(words[:, query], 7).tolist()) == sorted(expected)


@pytest.mark.parametrize("quantization", ["binary", "int8"])
def test_rescoring_every_row_is_exact_search(quantization):
    stored = clustered(200, seed=7)
    queries = clustered(5, seed=8)
    found = _quantized(stored, quantization).search(queries, k=10, rescore=20)  # 200 candidates: all rows
    for hits, expected in zip(found, reference_top_k(queries, stored, 10)):
        assert [hit.row for hit in hits] == [row for _, row in expected]
        np.testing.assert_allclose([hit.score for hit in hits], [score for score, _ in expected], atol=1e-5)


@pytest.mark.parametrize("quantization,least", [("binary", 0.9), ("int8", 0.99)])
def test_few_candidates_keep_most_true_neighbours(quantization, least):
    stored = clustered(3000, dimensions=64, clusters=30, seed=9)
    queries = clustered(40, dimensions=64, clusters=30, seed=9)[:40] + 0.05
    found = _quantized(stored, quantization, threads=2).search(queries, k=10, rescore=10)
    truth = reference_top_k(queries, stored, 10)
    recall = np.mean([len({hit.row for hit in hits} & {row for _, row in expected}) / 10 for hits, expected in zip(found, truth)])
    assert recall >= least
    for hits in found:  # rescored: the scores are the float32 cosines, best first
        assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)


def test_the_candidates_are_the_same_with_one_thread_or_several():
    stored = clustered(70000, dimensions=32, seed=10)  # more than one scan tile
    queries = clustered(3, dimensions=32, seed=11)
    one = _quantized(stored, "binary", threads=1).search(queries, k=5)
    two = _quantized(stored, "binary", threads=2).search(queries, k=5)
    assert [[hit.row for hit in hits] for hits in one] == [[hit.row for hit in hits] for hits in two]


def test_bad_quantization_and_rescore_are_refused():
    with pytest.raises(BadInput, match="binary, int8"):
        _quantized(clustered(5), "int4")
    with pytest.raises(BadInput, match="rescore=0"):
        _quantized(clustered(5), "binary").search(clustered(1), 3, rescore=0)
