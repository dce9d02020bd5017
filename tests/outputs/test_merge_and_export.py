"""vizcli merge and export: any form of an output, its kind read from the output."""

import numpy as np
import pytest

from tests.checks import one_error_line


def test_shards_and_parquet_of_one_kind_merge_and_repeats_are_refused(invoke, made, tmp_path):
    merged = tmp_path / "all.parquet"
    result = invoke("merge", made["roi-shards"], "-o", merged)
    assert result.exit_code == 0, result.stderr
    assert "merged 1 output of roi: wrote 3 rows" in result.stderr and result.stdout == ""
    again = invoke("merge", made["roi-shards"], merged, "-o", tmp_path / "twice.parquet")
    assert "appears in more than one input" in one_error_line(again)
    assert not (tmp_path / "twice.parquet").exists()


def test_single_image_files_gather_into_one_dataset(invoke, made, tmp_path):
    merged = tmp_path / "gathered.parquet"
    assert invoke("merge", made["one.npz"], "-o", merged).exit_code == 0
    info = invoke("info", merged, "--format", "json")
    assert '"rows": 2' in info.stdout and '"kind": "roi"' in info.stdout


def test_outputs_of_different_kinds_do_not_merge(invoke, made, tmp_path):
    message = one_error_line(invoke("merge", made["roi.parquet"], made["embed.parquet"], "-o", tmp_path / "x.parquet"))
    assert "different kinds (embed, roi)" in message


def test_merge_needs_a_table_destination(invoke, made, tmp_path):
    assert "-o out.parquet" in one_error_line(invoke("merge", made["roi.parquet"], "-o", tmp_path / "x.json"))


@pytest.mark.parametrize("name", ["roi.parquet", "roi-shards", "one.npz", "one.safetensors", "one.pt"])
def test_roi_outputs_export_as_the_bottom_up_attention_tsv(invoke, made, tmp_path, name):
    target = tmp_path / "feats.tsv"
    result = invoke("export", made[name], "--layout", "butd-tsv", "--feature", "align", "-o", target)
    assert result.exit_code == 0, result.stderr
    lines = target.read_text().splitlines()
    assert lines and all(len(line.split("\t")) == 8 for line in lines)


@pytest.mark.parametrize(("layout", "check"), [
    ("jsonl", lambda path: len(path.read_text().splitlines()) == 5),
    ("tsv", lambda path: len(path.read_text().splitlines()[0].split("\t")) == 385),
    ("npy", lambda path: np.load(path).shape == (5, 384)),
])
def test_embed_outputs_export_as_jsonl_tsv_and_npy(invoke, made, tmp_path, layout, check):
    target = tmp_path / f"vectors.{layout}"
    result = invoke("export", made["embed.parquet"], "--layout", layout, "--feature", "mean", "-o", target)
    assert result.exit_code == 0, result.stderr
    assert check(target)


def test_export_refuses_an_unknown_layout_and_its_own_input(invoke, made):
    assert "embed outputs export as jsonl, npy, tsv" in one_error_line(
        invoke("export", made["embed.parquet"], "--layout", "butd-tsv", "-o", "x.tsv"))
    message = one_error_line(invoke("export", made["roi.parquet"], "--feature", "align", "-o", made["roi.parquet"]))
    assert "input" in message


def test_an_output_holding_a_null_vector_is_refused_in_one_line(invoke, made, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(made["embed.parquet"])
    values = table.column("mean").to_pylist()
    values[2] = None
    damaged = table.set_column(table.schema.get_field_index("mean"), "mean", pa.array(values, type=table.schema.field("mean").type))
    path = tmp_path / "null.parquet"
    pq.write_table(damaged.replace_schema_metadata(table.schema.metadata), path)
    message = one_error_line(invoke("export", path, "--layout", "npy", "--feature", "mean", "-o", tmp_path / "v.npy"))
    assert "row '2' holds no mean (null)" in message and message.startswith(f"Error: {path}:")
    assert not (tmp_path / "v.npy").exists()


def test_the_positional_output_is_named_as_itself_never_as_dash_o(invoke, tmp_path):
    for verb in (("verify",), ("info",), ("export", "-o", tmp_path / "x.tsv")):
        message = one_error_line(invoke(verb[0], tmp_path / "none.parquet", *verb[1:]))
        assert message.startswith(f"Error: {tmp_path / 'none.parquet'}: no such output") and " -o " not in message


@pytest.mark.parametrize(("args", "fragment"), [
    (["verify", "x.parquet", "--images-root", "d"], "--images-root: is now --root FOLDER"),
    (["export", "x.parquet", "--op", "box-head", "-o", "y.tsv"], "--op: is now --feature box-head"),
])
def test_old_spellings_of_the_output_verbs_name_the_new_ones(invoke, args, fragment):
    assert fragment in one_error_line(invoke(*args))


def test_a_dataset_made_from_a_list_of_image_paths_exports_as_npz_files(invoke, made, tmp_path):
    listed = tmp_path / "images.txt"
    listed.write_text("".join(f"{made['images'] / name}\n" for name in ("0.png", "1.png")))
    out = tmp_path / "listed.parquet"
    assert invoke("roi", listed, "--boxes", "5,5,60,50", "-o", out, "-q").exit_code == 0
    result = invoke("export", out, "--layout", "butd-npz", "--feature", "align", "-o", tmp_path / "npz")
    assert result.exit_code == 0, result.stderr
    assert sorted(path.name for path in (tmp_path / "npz").iterdir()) == ["0.npz", "1.npz"]


def test_a_merge_of_parts_from_two_input_files_still_verifies(invoke, tmp_path):
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("id,text\nx0,a cat sits on the mat\nx3,the sun is warm\n")
    second.write_text("id,text\nx1,rain falls in spain\nx2,birds sing\n")
    for part in (first, second):
        made = invoke("embed", "--file", part, "--column", "text", "--id-column", "id", "-o", part.with_suffix(".parquet"), "-q")
        assert made.exit_code == 0, made.stderr
    merged = tmp_path / "all.parquet"
    assert invoke("merge", tmp_path / "a.parquet", tmp_path / "b.parquet", "-o", merged).exit_code == 0
    info = invoke("info", merged)
    assert str(first) in info.stdout and str(second) in info.stdout
    result = invoke("verify", merged)
    assert result.exit_code == 0 and "recomputed 4 rows" in result.stdout, (result.stdout, result.stderr)
