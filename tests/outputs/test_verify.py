"""vizcli verify: every stored column checked, rows matched by key, totals cross-checked, settings validated."""

import json
import shutil

import pytest

from tests.checks import one_error_line, tampered_copy
from vizcli.outputs.verify import sample_keys


def test_the_sample_is_seeded_distinct_and_in_stored_order():
    keys = [str(n) for n in range(20)] + ["3", "5"]
    chosen = sample_keys(keys, 5, seed=1)
    assert chosen == sample_keys(keys, 5, seed=1) and len(set(chosen)) == 5
    assert chosen == sorted(chosen, key=int)
    assert sample_keys(["a", "b", "a"], 8, seed=0) == ["a", "b"]


@pytest.mark.parametrize("name", ["roi.parquet", "roi-shards", "embed.parquet", "embed-kept"])
def test_an_untouched_output_is_reproduced(invoke, made, name):
    result = invoke("verify", made[name], "--sample", "2")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert "reproduced: largest difference" in result.stdout and "NOT" not in result.stdout


def _rewrite(source, target, change):
    """``source`` Parquet written to ``target`` with ``change(table) -> table`` applied, its metadata kept."""
    import pyarrow.parquet as pq

    table = pq.read_table(source)
    pq.write_table(change(table).replace_schema_metadata(table.schema.metadata), target)


def _set(table, column, row, value):
    import pyarrow as pa

    values = table.column(column).to_pylist()
    values[row] = value
    return table.set_column(table.schema.get_field_index(column), table.schema.field(column),
                            pa.array(values, type=table.schema.field(column).type))


@pytest.mark.parametrize(("source", "change", "fragment"), [
    ("roi.parquet", lambda t: _set(t, "features_align", 0, [v + 0.5 for v in t.column("features_align")[0].as_py()]),
     "largest difference 0.5"),
    ("roi.parquet", lambda t: _set(t, "width", 0, 999), "column width differs"),
    ("roi.parquet", lambda t: _set(t, "feature_box", 0, [0.0, 0.0, 1.0, 1.0]), "feature_box: largest difference"),
    ("roi.parquet", lambda t: t.slice(1), "rows were added or deleted"),
    ("embed.parquet", lambda t: _set(_set(t, "id", 0, "1"), "id", 1, "0"), "differ"),
    ("embed.parquet", lambda t: _set(t, "tokens", 2, 99), "column tokens differs"),
    ("embed.parquet", lambda t: _set(t, "mean", 1, None), "largest difference inf"),
])
def test_a_tampered_column_or_row_is_not_reproduced(invoke, made, tmp_path, source, change, fragment):
    bad = tmp_path / "bad.parquet"
    _rewrite(made[source], bad, change)
    result = invoke("verify", bad, "--sample", "8")
    message = one_error_line(result, code=1)
    assert "not reproduced" in message and "NOT reproduced" in result.stdout
    assert fragment in result.stdout + message, result.stdout


def test_a_changed_vector_value_is_found_within_the_tolerance(invoke, made, tmp_path):
    tampered_copy(made["embed.parquet"], tmp_path / "bad.parquet", "pooler", row=1, delta=0.01)
    assert "not reproduced" in one_error_line(invoke("verify", tmp_path / "bad.parquet", "--sample", "5"), code=1)
    assert invoke("verify", tmp_path / "bad.parquet", "--sample", "5", "--tolerance", "0.02").exit_code == 0


def _with_settings(source, target, change):
    import pyarrow.parquet as pq

    table = pq.read_table(source)
    metadata = dict(table.schema.metadata)
    recorded = json.loads(metadata[b"vizcli"])
    change(recorded)
    metadata[b"vizcli"] = json.dumps(recorded).encode()
    pq.write_table(table.replace_schema_metadata(metadata), target)


@pytest.mark.parametrize(("change", "fragment"), [
    (lambda r: r["settings"].update(brand_new=1), "settings this vizcli does not know (brand_new)"),
    (lambda r: r.update(settings_version=99), "newer than this vizcli knows"),
    (lambda r: r["settings"].update(batch_size="many"), "batch-size many, which is not a valid setting"),
    (lambda r: r.pop("settings"), "records no worker settings"),
])
def test_recorded_settings_are_validated_before_a_worker_is_built(invoke, made, tmp_path, change, fragment):
    bad = tmp_path / "settings.parquet"
    _with_settings(made["embed.parquet"], bad, change)
    message = one_error_line(invoke("verify", bad), code=2)
    assert fragment in message and "Traceback" not in message


def test_a_bfloat16_output_verifies_within_the_compute_dtypes_tolerance(invoke, made, tmp_path):
    out = tmp_path / "bf16.parquet"
    assert invoke("embed", "--file", made["corpus"], "--dtype", "bfloat16", "-o", out, "-q").exit_code == 0
    result = invoke("verify", out)
    assert result.exit_code == 0 and "(tolerance 0.02)" in result.stdout, result.stdout


def test_moved_inputs_are_found_again_with_root(invoke, made, tmp_path):
    images = tmp_path / "data" / "images"
    shutil.copytree(made["images"], images)
    out = tmp_path / "moved.parquet"
    assert invoke("roi", images, "--boxes", "5,5,60,50", "-o", out, "-q").exit_code == 0
    shutil.move(str(tmp_path / "data"), str(tmp_path / "elsewhere"))
    message = one_error_line(invoke("verify", out))
    assert "is not there" in message and "--root" in message
    assert invoke("verify", out, "--root", tmp_path / "elsewhere").exit_code == 0
    corpus = tmp_path / "corpus.txt"
    shutil.copy(made["corpus"], corpus)
    vectors = tmp_path / "v.parquet"
    assert invoke("embed", "--file", corpus, "-o", vectors, "-q").exit_code == 0
    (tmp_path / "texts").mkdir()
    corpus.rename(tmp_path / "texts" / "corpus.txt")
    assert invoke("verify", vectors, "--root", tmp_path / "texts").exit_code == 0


def test_a_detection_outputs_computed_label_and_score_are_checked(invoke, made, tmp_path):
    out = tmp_path / "detections.parquet"
    made_detections = invoke("detect", made["images"], "--detector", "fasterrcnn_mobilenet_v3_large_320_fpn", "--op", "box-head",
                             "--max-detections", "3", "--min-score", "0", "-o", out, "-q")
    assert made_detections.exit_code == 0, made_detections.stderr
    result = invoke("verify", out)
    assert result.exit_code == 0, result.stdout
    for column in ("box", "score", "features_box_head"):
        assert f"{column}: largest difference 0" in result.stdout
    bad = tmp_path / "label.parquet"
    _rewrite(out, bad, lambda t: _set(t, "label", 0, "tampered"))
    assert "column label differs in 1 row" in invoke("verify", bad).stdout
    single = tmp_path / "one.npz"  # one image's detections in a file: the same check
    assert invoke("detect", made["images"] / "0.png", "--detector", "fasterrcnn_mobilenet_v3_large_320_fpn", "--op", "box-head",
                  "--max-detections", "3", "--min-score", "0", "-o", single, "-q").exit_code == 0
    result = invoke("verify", single)
    assert result.exit_code == 0 and "features_box_head: largest difference 0" in result.stdout, result.stdout


def test_verify_checks_a_search_index_built_beside_the_output(invoke, made, tmp_path):
    pytest.importorskip("usearch")
    out = tmp_path / "indexed.parquet"
    shutil.copy(made["embed.parquet"], out)
    built = invoke("search", out, "--build-index")
    assert built.exit_code == 0, built.stderr
    assert invoke("verify", out).exit_code == 0
    _rewrite(made["embed.parquet"], out, lambda t: t)  # the same rows written again: another file than the index recorded
    result = invoke("verify", out)
    assert result.exit_code == 1 and "index" in result.stdout.lower(), result.stdout


@pytest.mark.parametrize("name", ["one.npz", "one.safetensors", "one.pt", "one.npy"])
def test_a_single_image_file_is_verified_from_its_recorded_settings(invoke, made, name):
    result = invoke("verify", made[name])
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert "recomputed 2 rows of 1 sampled item" in result.stdout and "features_align: largest difference 0" in result.stdout


def test_a_changed_single_image_file_is_not_reproduced(invoke, made, tmp_path):
    import numpy as np

    with np.load(made["one.npz"]) as loaded:
        arrays = {name: loaded[name] for name in loaded.files}
    arrays["roi_align"] = arrays["roi_align"] + 0.25
    np.savez(tmp_path / "changed.npz", **arrays)
    assert "largest difference 0.25" in one_error_line(invoke("verify", tmp_path / "changed.npz"), code=1)


def test_a_small_embed_file_is_verified_from_its_kept_texts(invoke, made, tmp_path):
    result = invoke("verify", made["texts.npz"])
    assert result.exit_code == 0 and "recomputed 5 rows of 5 sampled items" in result.stdout, result.stdout
    vectors = tmp_path / "v.safetensors"  # safetensors keeps no texts: nothing to recompute from, said in one line
    assert invoke("embed", "-o", vectors, "-q", input="a cat\na dog\n").exit_code == 0
    assert "keeps no text and records no input file" in one_error_line(invoke("verify", vectors))
