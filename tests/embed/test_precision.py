"""vizcli.embed.precision: quantisation as sentence-transformers does it; ranges files are checked."""

import json

import numpy as np
import pytest

from vizcli.common.errors import BadInput
from vizcli.embed.precision import load_ranges, quantize, ranges_of


def _ranges_file(tmp_path, low, high):
    path = tmp_path / "r.ranges.json"
    path.write_text(json.dumps({"ranges": {"mean": [low, high]}}))
    return str(path)


@pytest.mark.parametrize("low, high, fragment", [
    ([float("nan"), 0.0, 0.0], [1.0, 1.0, 1.0], "NaN or infinite"),
    ([0.0, 0.0, 0.0], [1.0, float("inf"), 1.0], "NaN or infinite"),
    ([0.0, 2.0, 0.0], [1.0, 1.0, 1.0], "dimension 1 has min > max"),
    ([0.0, 0.0], [1.0, 1.0], "shape [2, 2], expected [2, 3]"),
])
def test_ranges_that_would_collapse_vectors_are_refused(tmp_path, low, high, fragment):
    with pytest.raises(BadInput) as refused:
        load_ranges(_ranges_file(tmp_path, low, high), ("mean",), 3)
    assert fragment in str(refused.value) and refused.value.parameter == "ranges"


def test_a_deeply_nested_ranges_file_is_refused_not_a_recursion_error(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(BadInput, match="ranges"):
        load_ranges(str(path), ("mean",), 3)


def test_good_ranges_load_and_quantize_like_sentence_transformers(tmp_path):
    vectors = np.array([[0.0, -1.0, 5.0], [1.0, 1.0, 5.0], [0.5, 0.0, 5.0]], dtype=np.float32)
    found = ranges_of(vectors)
    loaded = load_ranges(_ranges_file(tmp_path, found[0].tolist(), found[1].tolist()), ("mean",), 3)["mean"]
    expected = np.clip(np.floor((vectors - found[0]) / np.where(found[1] > found[0], (found[1] - found[0]) / 255, 1)), 0, 255)
    np.testing.assert_array_equal(quantize(vectors, "uint8", loaded), expected.astype(np.uint8))
    np.testing.assert_array_equal(quantize(vectors, "int8", loaded), (expected - 128).astype(np.int8))
    assert quantize(vectors, "int8", loaded)[0].tolist() == [-128, -128, -128]  # each dimension's min is bucket 0
