"""vizcli.roi.dataset: which images a dataset run covers; bad lists and patterns are refused up front."""


import pytest

from tests.checks import random_image
from vizcli.common.errors import BadInput
from vizcli.roi.dataset import list_images, load_dataset


def test_an_image_list_that_is_not_utf8_is_refused_naming_the_line(tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_bytes(b"a.png\n\xff\xfe.png\n")
    with pytest.raises(BadInput, match="line 2 is not UTF-8") as refused:
        list_images(str(listing))
    assert refused.value.parameter == "dataset"


def test_a_nul_byte_in_an_image_list_is_refused(tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_bytes(b"a.png\nb\x00.png\n")
    with pytest.raises(BadInput, match="line 2 holds a NUL byte"):
        list_images(str(listing))


@pytest.mark.parametrize("pattern", ["/abs/*.png", "../*.png", "a/../../*.png"])
def test_a_glob_that_reaches_outside_the_folder_is_refused(tmp_path, pattern):
    (tmp_path / "a.png").write_bytes(b"x")
    with pytest.raises(BadInput) as refused:
        list_images(str(tmp_path), glob=pattern)
    assert refused.value.parameter == "glob"


def test_a_relative_glob_picks_files_sorted(tmp_path):
    for name in ("b.jpg", "a.jpg", "sub/c.jpg", "d.txt"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert [image.image_id for image in list_images(str(tmp_path), glob="**/*.jpg")] == ["a.jpg", "b.jpg", "sub/c.jpg"]


def test_yolo_boxes_are_converted_with_each_images_real_size(tmp_path):
    random_image(tmp_path / "images" / "x.png", (200, 100), 4)
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "x.txt").write_text("1 0.5 0.5 0.2 0.4\nbad line\n")
    (labels / "classes.txt").write_text("person\ncar\n")
    images, problems = load_dataset(str(tmp_path / "images"), str(labels))
    (image,) = images
    (annotation,) = image.annotations
    assert annotation.label == "car" and annotation.annotation_id == "x#1"
    assert annotation.in_pixels(200, 100) == pytest.approx((80.0, 30.0, 120.0, 70.0))
    assert [p["line"] for p in problems] == [2]
