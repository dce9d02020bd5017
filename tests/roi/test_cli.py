"""vizcli.roi.cli, dataset runs: options mean what they mean for single images, or are refused."""

import json

import pyarrow.parquet as pq
import pytest
from PIL import Image

from vizcli.datasets.run import SKIPPED_ROWS_EXIT


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        Image.new("RGB", (64, 48), (90, 120, 200)).save(folder / name)
    return folder


def test_boxes_on_a_folder_go_on_every_image(invoke, images, tmp_path):
    out = tmp_path / "o.parquet"
    result = invoke("roi", images, "--boxes", "1,1,30,30", "--boxes", "10,5,60,40", "-o", out, "--quiet")
    assert result.exit_code == 0, result.stderr
    table = pq.read_table(out, columns=["image", "annotation_id", "box"])
    assert table["image"].to_pylist() == ["a.png", "a.png", "b.png", "b.png"]
    assert table["box"].to_pylist()[1] == [10.0, 5.0, 60.0, 40.0]


def test_strict_turns_a_clipped_box_into_a_problem(invoke, images, tmp_path):
    boxes = tmp_path / "b.csv"
    boxes.write_text("image,x1,y1,x2,y2\na.png,1,1,100,100\na.png,1,1,20,20\n")
    out = tmp_path / "o.parquet"
    strict = invoke("roi", images, "--annotations", boxes, "--strict", "-o", out, "--quiet")
    assert strict.exit_code == SKIPPED_ROWS_EXIT, strict.stderr
    assert pq.read_table(out)["annotation_id"].to_pylist() == ["2"]
    (problem,) = [json.loads(line) for line in (tmp_path / "o.problems.jsonl").read_text().splitlines()]
    assert problem["annotation_id"] == "1" and "--strict" in problem["problem"]
    clipped = invoke("roi", images, "--annotations", boxes, "-o", tmp_path / "c.parquet", "--quiet")
    assert clipped.exit_code == 0 and pq.read_table(tmp_path / "c.parquet")["box"].to_pylist()[0] == [1.0, 1.0, 64.0, 48.0]


@pytest.mark.parametrize("flag", [["--save-format", "npz"], ["--format", "json"]])
def test_a_single_image_format_with_a_dataset_output_is_refused(invoke, images, tmp_path, flag):
    result = invoke("roi", images, "--boxes", "1,1,30,30", *flag, "-o", tmp_path / "r.parquet")
    assert result.exit_code == 2 and result.stderr.startswith(f"Error: {flag[0]} {flag[1]} is for single images")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imgs"]


def test_annotation_errors_name_annotations_not_boxes_file(invoke, images, tmp_path):
    bad = tmp_path / "b.json"
    bad.write_text("{oops")
    result = invoke("roi", images, "--annotations", bad, "-o", tmp_path / "o.parquet")
    assert result.exit_code == 2 and result.stderr.startswith(f"Error: --annotations {bad}") and "--boxes-file" not in result.stderr


def test_errors_about_the_images_argument_name_no_flag_that_does_not_exist(invoke, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_bytes(b"\xff.png\n")
    result = invoke("roi", listing, "--boxes", "1,1,5,5", "-o", tmp_path / "o.parquet")
    assert result.exit_code == 2 and result.stderr.startswith(f"Error: {listing}: line 1 is not UTF-8")
    assert "--dataset" not in result.stderr
