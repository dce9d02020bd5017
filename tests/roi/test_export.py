"""vizcli roi export: the bottom-up-attention TSV and npz layouts, read back the way their readers read them."""

import base64
import csv
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.checks import one_error_line, random_image

# hengyuan-hu/bottom-up-attention-vqa's detection_features_converter.py names these six fields
FIELDNAMES = ["image_id", "image_w", "image_h", "num_boxes", "boxes", "features"]


@pytest.fixture(scope="module")
def detected(tmp_path_factory):
    from typer.testing import CliRunner

    from vizcli.cli import app

    folder = tmp_path_factory.mktemp("export")
    for number, size in enumerate([(120, 90), (90, 120), (100, 100)]):
        random_image(folder / "images" / ("sub" if number == 2 else "") / f"{number}.png", size, number)
    out = folder / "det.parquet"
    result = CliRunner().invoke(app, ["roi", str(folder / "images"), "--detect", "--detector", "fasterrcnn_mobilenet_v3_large_320_fpn",
                                      "--op", "align,box-head", "--max-detections", "3", "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_the_tsv_reads_back_as_bottom_up_attention_readers_read_it(invoke, detected, tmp_path):
    from vizcli.roi.detectors import detector_categories

    tsv = tmp_path / "feats.tsv"
    result = invoke("roi", "export", detected, "-o", tsv)
    assert result.exit_code == 0 and "wrote 3 images in the butd-tsv layout" in result.stderr, result.stderr
    table = pq.read_table(detected)
    csv.field_size_limit(sys.maxsize)
    with open(tsv, newline="") as handle:
        items = list(csv.DictReader(handle, delimiter="\t", fieldnames=FIELDNAMES))
    assert [item["image_id"] for item in items] == ["0.png", "1.png", "sub/2.png"]
    categories = detector_categories("fasterrcnn_mobilenet_v3_large_320_fpn")
    for number, item in enumerate(items):
        rows = table.slice(3 * number, 3)
        count = int(item["num_boxes"])
        boxes = np.frombuffer(base64.b64decode(item["boxes"]), dtype=np.float32).reshape(count, 4)
        features = np.frombuffer(base64.b64decode(item["features"]), dtype=np.float32).reshape(count, -1)
        assert count == 3 and features.shape == (3, 1024)
        assert (int(item["image_w"]), int(item["image_h"])) == (rows.column("width")[0].as_py(), rows.column("height")[0].as_py())
        np.testing.assert_array_equal(boxes, np.array(rows.column("box").to_pylist(), dtype=np.float32))
        np.testing.assert_array_equal(features, np.array(rows.column("features_box_head").to_pylist(), dtype=np.float32))
        extra = item[None]  # objects_id, objects_conf, after the six named fields (as in LXMERT's obj36 files)
        ids = np.frombuffer(base64.b64decode(extra[0]), dtype=np.int64)
        assert [categories[i] for i in ids] == rows.column("label").to_pylist()
        np.testing.assert_array_equal(np.frombuffer(base64.b64decode(extra[1]), dtype=np.float32),
                                      np.array(rows.column("score").to_pylist(), dtype=np.float32))


def test_the_npz_folder_holds_one_file_an_image_with_the_pytorch_ports_arrays(invoke, detected, tmp_path):
    folder = tmp_path / "npz"
    result = invoke("roi", "export", detected, "--layout", "butd-npz", "--op", "align", "-o", folder)
    assert result.exit_code == 0, result.stderr
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.npz")) == ["0.npz", "1.npz", "sub/2.npz"]
    table = pq.read_table(detected)
    data = np.load(folder / "sub" / "2.npz", allow_pickle=False)  # MCAN-VQA reads data["x"], data["bbox"]
    assert int(data["num_bbox"]) == 3 and data["x"].shape == (3, 256) and data["bbox"].shape == (3, 4)
    maps = np.array(table.slice(6, 3).column("features_align").to_pylist(), dtype=np.float32).reshape(3, 256, 49)
    np.testing.assert_allclose(data["x"], maps.mean(axis=2), rtol=1e-6, atol=1e-7)
    assert (int(data["image_w"]), int(data["image_h"])) == (100, 100)
    assert not list(tmp_path.glob(".npz.*"))  # the temporary folder is gone


@pytest.mark.parametrize(("args", "fragment"), [
    (["--layout", "coco"], "--layout coco"),
    (["--layout", "butd-npz", "-o", "/proc/x/"], "-o /proc/x/"),
    (["--op", "pool"], "--op pool: is not stored"),
    ([], "give where to write"),
])
def test_bad_exports_are_one_error_line(invoke, detected, args, fragment, tmp_path):
    target = [] if not args or "-o" in args else ["-o", tmp_path / "x.tsv"]
    assert fragment in one_error_line(invoke("roi", "export", detected, *args, *target))


def test_an_npz_export_refuses_a_folder_with_files_and_leaves_nothing(invoke, detected, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    assert "not an empty folder" in one_error_line(invoke("roi", "export", detected, "--layout", "butd-npz", "-o", tmp_path / "full"))
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]
