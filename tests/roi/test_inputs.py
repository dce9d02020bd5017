"""vizcli.roi.inputs: which images a run reads and which boxes go with each."""

import pytest

from tests.checks import random_image
from vizcli.common.errors import BadInput
from vizcli.roi.boxes import Box
from vizcli.roi.inputs import ImageInputs


def test_what_makes_a_dataset_run(tmp_path):
    random_image(tmp_path / "a.png", (32, 32), 1)
    assert ImageInputs((str(tmp_path),)).is_dataset(None)  # a folder
    assert ImageInputs(("list.txt",)).is_dataset(None) and ImageInputs(annotations="coco.json").is_dataset(None)
    assert ImageInputs((str(tmp_path / "a.png"),)).is_dataset("rows.parquet") and ImageInputs(("a.png",)).is_dataset("d/")
    assert not ImageInputs((str(tmp_path / "a.png"),)).is_dataset("feats.npz")


def test_single_images_get_the_given_boxes_each(tmp_path):
    inputs = ImageInputs(("a.png", "b.png"), ("1,2,3,4", "5,6,7,9"))
    assert inputs.boxes_by_image() == {name: [Box(1, 1, 2, 3, 4), Box(2, 5, 6, 7, 9)] for name in ("a.png", "b.png")}
    (tmp_path / "boxes.json").write_text('{"b.png": [[1, 1, 5, 5]]}')
    assert ImageInputs(("a.png", "b.png"), boxes_file=str(tmp_path / "boxes.json")).boxes_by_image() == {"b.png": [Box(1, 1, 1, 5, 5)]}


@pytest.mark.parametrize(("inputs", "fragment"), [
    (ImageInputs(()), "no image given"),
    (ImageInputs(("a.png",), glob="*.png"), "glob='*.png': picks a dataset's images"),
    (ImageInputs(("a.png",), images_root="root"), "images_root='root'"),
    (ImageInputs(("a.png",), max_boxes=0), "max_boxes=0"),
])
def test_what_only_a_dataset_reads_is_refused_for_single_images(inputs, fragment):
    with pytest.raises(BadInput, match=fragment.replace("*", r"\*")):
        inputs.check_single()


def test_a_dataset_folder_with_given_boxes_or_a_detector(tmp_path):
    for name in ("a.png", "b.png"):
        random_image(tmp_path / name, (32, 32), 1)
    images, problems = ImageInputs((str(tmp_path),), ("1,1,9,9",)).dataset_images()
    assert [(image.image_id, [a.box for a in image.annotations]) for image in images] == [("a.png", [(1, 1, 9, 9)]),
                                                                                           ("b.png", [(1, 1, 9, 9)])]
    found, _ = ImageInputs((str(tmp_path),)).dataset_images(detecting=True)
    assert [(image.image_id, image.annotations) for image in found] == [("a.png", []), ("b.png", [])] and problems == []
    with pytest.raises(BadInput, match="not both"):
        ImageInputs((str(tmp_path),), ("1,1,9,9",), annotations="x.json").dataset_images()
