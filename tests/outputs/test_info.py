"""vizcli info: every form of every kind, described from the output alone."""

import json

import pytest

from tests.checks import one_error_line


@pytest.mark.parametrize(("name", "kind", "rows", "items"), [
    ("roi.parquet", "roi", 6, 3), ("roi-shards", "roi", 3, 3), ("embed.parquet", "embed", 5, 5), ("embed-kept", "embed", 5, 5),
    ("one.npz", "roi", 2, 1), ("one.safetensors", "roi", 2, 1), ("one.pt", "roi", 2, 1), ("one.npy", "roi", 2, 1),
    ("texts.npz", "embed", 5, 5),
])
def test_info_describes_every_output_form(invoke, made, name, kind, rows, items):
    result = invoke("info", made[name], "--format", "json")
    assert result.exit_code == 0, result.stderr
    described = json.loads(result.stdout)
    assert (described["schema"], described["kind"], described["rows"], described["items"]) == ("vizcli.info/1", kind, rows, items)
    assert described["columns"] and described["model"]
    text = invoke("info", made[name])
    assert text.exit_code == 0 and text.stdout.startswith("output:") and "kind:" in text.stdout


def test_info_shows_the_recorded_settings_and_weights(invoke, made):
    described = json.loads(invoke("info", made["roi.parquet"], "--format", "json").stdout)
    assert described["settings"]["op"] == "both" and described["settings_version"] == 2
    assert len(described["weights_sha256"]) == 64 and described["recorded_rows"] == 6
    assert set(described["columns"]) >= {"image", "box", "features_align", "features_pool"}


@pytest.mark.parametrize(("content", "fragment"), [
    (None, "no such output"),
    (b"not parquet", "is not an output vizcli writes"),
    (b"PAR1 damaged", "a damaged Parquet file"),
])
def test_info_refuses_what_is_no_output_in_one_line(invoke, tmp_path, content, fragment):
    path = tmp_path / "x.parquet" if content != b"not parquet" else tmp_path / "x.txt"
    if content is not None:
        path.write_bytes(content)
    message = one_error_line(invoke("info", path))
    assert fragment in message and message.startswith(f"Error: {path}:"), message  # the positional OUTPUT, never "-o"


def test_info_refuses_a_parquet_file_vizcli_did_not_write(invoke, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": ["a"]}), tmp_path / "plain.parquet")
    assert "not one written by vizcli" in one_error_line(invoke("info", tmp_path / "plain.parquet"))


def test_an_npz_of_objects_is_refused_without_unpickling(invoke, tmp_path):
    import numpy as np

    path = tmp_path / "objects.npz"
    np.savez(path, x=np.array([{"a": 1}], dtype=object))
    assert "cannot be read as a vizcli .npz output" in one_error_line(invoke("info", path))
