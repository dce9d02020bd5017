"""vizcli roi verify: recompute sampled images of an output, for given boxes and for detections."""

import pytest

from tests.checks import one_error_line, random_image, tampered_copy


@pytest.fixture
def folder(tmp_path):
    for number, size in enumerate([(120, 90), (90, 120), (100, 100)]):
        random_image(tmp_path / "images" / f"{number}.png", size, number)
    return tmp_path / "images"


def test_an_output_of_given_boxes_verifies_and_a_changed_value_does_not(invoke, folder, tmp_path):
    out = tmp_path / "feats.parquet"
    assert invoke("roi", folder, "--boxes", "5,5,60,50", "--boxes", "10,20,80,90", "-o", out, "--op", "both").exit_code == 0
    result = invoke("roi", "verify", out, "--sample", "2")
    assert result.exit_code == 0, result.stderr
    assert "recomputed 4 rows of 2 sampled items" in result.stdout and "features_pool: largest difference 0" in result.stdout
    assert result.stdout.strip().endswith("(tolerance 0.0001)") and "reproduced" in result.stdout
    tampered_copy(out, tmp_path / "bad.parquet", "features_align", row=0, delta=0.5)
    bad = invoke("roi", "verify", tmp_path / "bad.parquet", "--sample", "3")
    assert "not reproduced: largest difference 0.5" in one_error_line(bad, code=1)
    assert "NOT reproduced" in bad.stdout


def test_a_detection_output_verifies_boxes_scores_and_box_head_vectors(invoke, folder, tmp_path):
    out = tmp_path / "shards"
    made = invoke("roi", folder, "--detect", "--detector", "fasterrcnn_mobilenet_v3_large_320_fpn", "--op", "box-head",
                  "--max-detections", "3", "-o", f"{out}/")
    assert made.exit_code == 0, made.stderr
    result = invoke("roi", "verify", out)
    assert result.exit_code == 0, result.stderr
    for column in ("box", "score", "features_box_head"):
        assert f"{column}: largest difference 0" in result.stdout


def test_verify_says_where_the_images_went(invoke, folder, tmp_path):
    out = tmp_path / "feats.parquet"
    assert invoke("roi", folder, "--boxes", "5,5,60,50", "-o", out).exit_code == 0
    moved = tmp_path / "moved"
    folder.rename(moved)
    message = one_error_line(invoke("roi", "verify", out))
    assert "is not there" in message and "--images-root" in message
    assert invoke("roi", "verify", out, "--images-root", moved).exit_code == 0


@pytest.mark.parametrize(("args", "fragment"), [
    (["verify"], "verify takes one output"),
    (["verify", "nothing.parquet"], "no such output"),
    (["verify", "x.parquet", "--sample", "0"], "--sample 0"),
])
def test_bad_verify_calls_are_one_error_line(invoke, tmp_path, args, fragment, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if "x.parquet" in args:
        random_image(tmp_path / "i" / "a.png", (64, 64), 1)
        assert invoke("roi", tmp_path / "i", "--boxes", "1,1,30,30", "-o", "x.parquet").exit_code == 0
    assert fragment in one_error_line(invoke("roi", *args))
