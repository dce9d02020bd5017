"""vizcli.roi.detectors: the weights digest and --op parsing."""

from vizcli.common.models import load_model
from vizcli.roi.detectors import parse_ops, state_sha256

FAST = "fasterrcnn_mobilenet_v3_large_320_fpn"


def test_the_weights_digest_names_the_weights():
    first, again = load_model(FAST, seed=0).model, load_model(FAST, seed=0).model
    other = load_model(FAST, seed=1).model
    assert state_sha256(first) == state_sha256(again) != state_sha256(other)


def test_ops_parse_as_lists():
    assert parse_ops("align,box-head", True, FAST) == ("align", "box-head")
    assert parse_ops("both", False, "resnet18") == ("align", "pool")
    assert parse_ops("none", True, FAST) == ()


def test_detection_settings_are_checked_whether_or_not_the_run_detects():
    import pytest

    from vizcli.common.errors import BadInput
    from vizcli.roi.detectors import check_detection_settings

    for detect in (True, False):  # a wrong value is refused the same way with detect or without
        with pytest.raises(BadInput, match="0..1"):
            check_detection_settings(detect, FAST, min_score=5)
        with pytest.raises(BadInput, match="did you mean person"):
            check_detection_settings(detect, FAST, classes="persn")
    with pytest.raises(BadInput, match=r"min_score=0\.5, classes='dog' choose among a detector's detections.*give no boxes"):
        check_detection_settings(False, FAST, min_score=0.5, classes="dog")  # right values, but a run of given boxes ignores them
    assert check_detection_settings(False, FAST, min_score=0.2, max_detections=36).min_detections == 10  # the defaults: nothing given
    assert check_detection_settings(True, FAST, max_detections=4).min_detections == 4


def test_category_names_are_unique_so_a_name_maps_back_to_its_index():
    import torchvision

    from vizcli.roi.detectors import detector_categories

    theirs = torchvision.models.get_model_weights(FAST).DEFAULT.meta["categories"]
    ours = detector_categories(FAST)
    assert len(set(ours)) == len(ours) == len(theirs) == 91
    assert ours[12] == "N/A (12)" and ours[83] == "N/A (83)" and ours[1] == theirs[1] == "person"
    assert [name for name, their in zip(ours, theirs) if name != their] == [f"N/A ({i})" for i, n in enumerate(theirs) if n == "N/A"]


def test_class_names_come_from_a_file_with_or_without_the_background(tmp_path):
    import pytest

    from vizcli.common.errors import BadInput
    from vizcli.roi.detectors import detector_categories

    four, five = tmp_path / "four.txt", tmp_path / "five.txt"
    four.write_text("cat\ndog\nbird\nfish\n\n")
    five.write_text("bg\ncat\ndog\nbird\nfish\n")
    assert detector_categories(FAST, 5, str(four)) == ["__background__", "cat", "dog", "bird", "fish"]
    assert detector_categories(FAST, 5, str(five)) == ["bg", "cat", "dog", "bird", "fish"]
    assert detector_categories(FAST, 3) == ["__background__", "1", "2"]  # no names: the indices
    with pytest.raises(BadInput, match="4 names for a detector with 7 classes"):
        detector_categories(FAST, 7, str(four))
    (tmp_path / "gap.txt").write_text("cat\n\ndog\n")
    with pytest.raises(BadInput, match="line 2 is empty"):
        detector_categories(FAST, 3, str(tmp_path / "gap.txt"))
