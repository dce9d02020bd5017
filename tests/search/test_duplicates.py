import numpy as np
import pytest

from tests.search.conftest import clustered
from vizcli.common.errors import BadInput
from vizcli.search.duplicates import near_duplicates
from vizcli.search.exact import LoadedVectors


def _reference_pairs(vectors, threshold):
    units = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return {(a, b) for a in range(len(units)) for b in range(a + 1, len(units)) if float(units[a] @ units[b]) >= threshold}


@pytest.mark.parametrize("block_rows,tile", [(1000, 4096), (17, 5), (40, 40)])
def test_every_pair_above_the_threshold_once_whatever_the_blocks(block_rows, tile):
    vectors = clustered(150, dimensions=16, clusters=40, spread=0.2, seed=12)
    vectors[100] = vectors[3] * 2  # an exact duplicate (cosine 1) across blocks
    ids = np.array([f"r{row}" for row in range(150)], dtype=object)
    loaded = LoadedVectors(vectors, ids, ids, block_rows)
    pairs = list(near_duplicates(loaded.blocks, 0.95, tile=tile))
    expected = _reference_pairs(vectors.astype(np.float64), 0.95)
    assert len(expected) > 20
    assert len(pairs) == len(expected)
    assert {(pair.row_a, pair.row_b) for pair in pairs} == expected
    assert all(pair.id_a == f"r{pair.row_a}" and pair.text_b == f"r{pair.row_b}" for pair in pairs)
    assert any((pair.row_a, pair.row_b) == (3, 100) and pair.score == pytest.approx(1.0, abs=1e-6) for pair in pairs)


def test_a_threshold_outside_minus_one_to_one_is_refused():
    loaded = LoadedVectors(clustered(4), np.array(list("abcd"), dtype=object), None, 10)
    with pytest.raises(BadInput, match="threshold=1.5"):
        list(near_duplicates(loaded.blocks, 1.5))
