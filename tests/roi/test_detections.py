"""vizcli detect IMAGE (and --op box-head on given boxes): the table, JSON, saved arrays, the picture, bad flags."""

import json

import numpy as np
import pytest

from tests.checks import one_error_line, random_image

FAST = ["--detector", "fasterrcnn_mobilenet_v3_large_320_fpn"]


@pytest.fixture
def picture(tmp_path):
    random_image(tmp_path / "p.png", (160, 120), 4)
    return tmp_path / "p.png"


def test_detect_prints_a_table_saves_arrays_and_draws_the_detections(invoke, picture, tmp_path):
    from PIL import Image

    from vizcli.roi.detect import Detector

    out, plot = tmp_path / "det.npz", tmp_path / "det.png"
    result = invoke("detect", picture, *FAST, "--op", "align,box-head", "--max-detections", "5", "-o", out,
                    "--plot", plot)
    assert result.exit_code == 0, result.stderr
    assert "detections" in result.stdout and "box-head" in result.stdout and result.stdout.count("1024 ‖·‖") == 5
    assert "meaningless" in result.stderr and "saved picture" in result.stderr
    saved = np.load(out, allow_pickle=False)
    expected = Detector("fasterrcnn_mobilenet_v3_large_320_fpn", op="align,box-head", max_detections=5)({"image": [str(picture)]})
    np.testing.assert_array_equal(saved["features_box_head"], expected["features_box_head"][0])
    np.testing.assert_array_equal(saved["boxes"], expected["box"][0].astype(np.float32))
    metadata = json.loads(str(saved["metadata"]))
    assert [metadata["categories"][i] for i in saved["labels"]] == list(expected["class_name"][0])
    assert metadata["weights_sha256"] and metadata["thresholds"]["max_detections"] == 5
    with Image.open(plot) as drawn:
        assert drawn.format == "PNG" and drawn.size[0] > 500


def test_detect_json_rows_carry_class_score_box_and_level(invoke, picture):
    result = invoke("detect", picture, *FAST, "--max-detections", "3", "--format", "json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["schema"] == "vizcli.roi.detections/1" and len(document["rows"]) == 3
    row = document["rows"][0]
    assert set(row) >= {"class", "score", "box", "level", "align"} and row["align"]["shape"] == [256, 7, 7]
    scores = [r["score"] for r in document["rows"]]
    assert scores == sorted(scores, reverse=True)


def test_given_boxes_through_the_box_head(invoke, picture):
    result = invoke("detect", picture, "--boxes", "10,10,80,90", "--boxes", "0,0,160,120", "--op", "box-head", *FAST,
                    "--format", "json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    assert [r["box"] for r in rows] == [[10, 10, 80, 90], [0, 0, 160, 120]] and rows[0]["score"] is None
    assert rows[0]["box-head"]["shape"] == [1024]


@pytest.mark.parametrize(("args", "fragment"), [
    (["--layer", "layer2"], "No such option: --layer"),
    (["--boxes", "1,1,5,5", "--min-score", "0.5"], "chooses among a detector's detections"),
    (["--op", "pool"], "not RoIPool"),
    (["--detector", "retinanet_resnet50_fpn", "--op", "box-head"], "boxes only"),
    (["--classes", "kitten"], "--classes kitten"),
    (["--min-score", "2"], "--min-score 2"),
    (["--detector", "yolo"], "--detector yolo"),
    (["-o", "x.npy"], "several arrays"),
    (["missing.png"], "missing.png: no such file"),
])
def test_bad_detect_flags_are_one_error_line(invoke, picture, tmp_path, args, fragment):
    first = [] if args[0].endswith(".png") else [picture]  # a missing image is found before the detector loads
    message = one_error_line(invoke("detect", *first, *args))
    assert fragment in message, message
