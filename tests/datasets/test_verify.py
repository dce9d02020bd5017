"""vizcli.datasets.verify: sampling stored items and comparing recomputed rows."""

import pyarrow as pa
import pytest

from vizcli.common.errors import BadInput
from vizcli.datasets.verify import Verification, compare_rows, sample_keys


def test_the_sample_is_seeded_distinct_and_in_stored_order():
    keys = [f"k{i}" for i in range(20) for _ in range(3)]  # three rows a key
    chosen = sample_keys(keys, 5, seed=0)
    assert chosen == sample_keys(keys, 5, seed=0) != sample_keys(keys, 5, seed=1)
    assert len(set(chosen)) == 5 and chosen == sorted(chosen, key=lambda key: int(key[1:]))
    assert sample_keys(keys, 100, seed=0) == [f"k{i}" for i in range(20)]
    with pytest.raises(BadInput):
        sample_keys(keys, 0, seed=0)


def test_rows_are_matched_by_key_and_the_largest_difference_is_reported():
    stored = pa.table({"id": ["a", "b", "c"], "v": [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], "s": [0.5, None, 0.25]})
    again = pa.table({"id": ["c", "a", "d"], "v": [[5.0, 6.5], [1.0, 2.0], [0.0, 0.0]], "s": [0.25, 0.5, 1.0]})
    differences, mismatches = compare_rows(stored, again, ("id",), ["v", "s"])
    assert differences == {"v": 0.5, "s": 0.0}
    assert mismatches == ["row b is stored but was not recomputed", "row d was recomputed but is not stored"]


def test_a_verification_passes_only_within_the_tolerance_and_without_mismatches():
    assert Verification("o", 2, 4, {"v": 1e-6}, 1e-4).ok
    assert not Verification("o", 2, 4, {"v": 1e-3}, 1e-4).ok
    assert not Verification("o", 2, 4, {"v": 0.0}, 1e-4, ["the weights are not the recorded ones"]).ok
    assert Verification("o", 2, 4, {"v": 1e-3}, 1e-4).lines()[-1].startswith("NOT reproduced: largest difference 0.001")
