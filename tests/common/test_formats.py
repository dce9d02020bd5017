"""vizcli.common.formats: every writer round-trips its rows and arrays; a full disk is a run failure."""

import csv
import io
import json
import os

import numpy as np
import pytest

from vizcli.common.errors import RunFailure
from vizcli.common.formats import write_arrays, write_records

ROWS = [{"index": 0, "text": "a, \"b\"", "value": 0.1 + 0.2, "vector": [1.5, -2.25]}, {"index": 1, "text": "c", "value": 1e-9, "vector": [3.0, 4.0]}]


def test_jsonl_and_json_round_trip():
    stream = io.StringIO()
    assert write_records(ROWS, "jsonl", stream) == 2
    assert [json.loads(line) for line in stream.getvalue().splitlines()] == ROWS
    stream = io.StringIO()
    write_records(ROWS, "json", stream, document={"schema": 1})
    assert json.loads(stream.getvalue()) == {"schema": 1, "rows": ROWS}


@pytest.mark.parametrize("fmt, delimiter", [("csv", ","), ("tsv", "\t")])
def test_csv_spreads_vectors_and_floats_round_trip(fmt, delimiter):
    stream = io.StringIO()
    write_records(ROWS, fmt, stream)
    rows = list(csv.DictReader(io.StringIO(stream.getvalue()), delimiter=delimiter))
    assert list(rows[0]) == ["index", "text", "value", "vector_0", "vector_1"]
    assert float(rows[0]["value"]) == 0.1 + 0.2
    assert rows[0]["text"] == 'a, "b"'


def test_array_formats_round_trip_with_metadata(tmp_path):
    import torch
    from safetensors import safe_open

    array = np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2)
    meta = {"op": "align", "boxes": [[1.0, 2.0, 3.0, 4.0]]}
    write_arrays({"features": array}, meta, "npy", str(tmp_path / "a.npy"))
    assert np.array_equal(np.load(tmp_path / "a.npy"), array)
    assert json.loads((tmp_path / "a.npy.json").read_text()) == meta
    write_arrays({"features": array}, meta, "npz", str(tmp_path / "a.npz"))
    with np.load(tmp_path / "a.npz") as data:
        assert np.array_equal(data["features"], array)
        assert json.loads(str(data["metadata"])) == meta
    write_arrays({"features": array}, meta, "safetensors", str(tmp_path / "a.safetensors"))
    with safe_open(str(tmp_path / "a.safetensors"), "np") as handle:
        assert np.array_equal(handle.get_tensor("features"), array)
        assert handle.metadata()["op"] == "align"
        assert json.loads(handle.metadata()["boxes"]) == meta["boxes"]
    write_arrays({"features": array}, meta, "pt", str(tmp_path / "a.pt"))
    saved = torch.load(tmp_path / "a.pt", weights_only=True)
    assert torch.equal(saved["tensors"]["features"], torch.from_numpy(array))
    assert saved["metadata"] == meta


def test_dev_full_is_a_run_failure():
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    with pytest.raises(RunFailure, match="/dev/full"):
        write_arrays({"a": np.zeros(100000)}, {}, "npz", "/dev/full")
