"""vizcli.roi.annotations: every value of an annotation file is checked before it is used."""

import json
import os

import pytest

from tests.checks import CHELSEA
from vizcli.common.errors import BadInput
from vizcli.roi.annotations import read_annotations


def _coco(tmp_path, images, annotations):
    path = tmp_path / "instances.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "cat"}]}))
    return str(path)


IMAGE = {"id": 1, "file_name": "a.png", "width": 64, "height": 48}
BOX = {"id": 7, "image_id": 1, "bbox": [1, 2, 10, 10], "category_id": 1}


@pytest.mark.parametrize("images, annotations, fragment", [
    ([{**IMAGE, "id": [1]}], [BOX], "images[0].id is [1]"),
    ([{**IMAGE, "id": True}], [BOX], "images[0].id is True"),
    ([{**IMAGE, "id": ""}], [BOX], "images[0].id is ''"),
    ([IMAGE, {**IMAGE, "file_name": "b.png"}], [BOX], "image id '1' appears twice"),
    ([{**IMAGE, "file_name": "a\x00.png"}], [BOX], "NUL byte"),
    ([{**IMAGE, "file_name": " "}], [BOX], "is not a file name"),
    ([IMAGE], [BOX, {**BOX, "bbox": [2, 2, 5, 5]}], "annotation id '7' appears twice"),
    ([IMAGE], [{**BOX, "id": {"x": 1}}], "annotations[0].id is {'x': 1}"),
])
def test_coco_values_that_cannot_be_ids_or_names_are_refused_naming_where(tmp_path, images, annotations, fragment):
    with pytest.raises(BadInput) as refused:
        read_annotations(_coco(tmp_path, images, annotations))
    assert fragment in str(refused.value) and refused.value.parameter == "annotations"


def test_coco_flags_are_read_as_coco_writes_them_and_others_become_problems(tmp_path):
    crowds = [0, 1, "0", "1", True, "maybe", 2]
    annotations = [{**BOX, "id": number, "iscrowd": crowd} for number, crowd in enumerate(crowds)]
    read = read_annotations(_coco(tmp_path, [IMAGE], annotations))
    assert [a.iscrowd for a in read.images[0].annotations] == [False, True, False, True, True]
    assert [(p["annotation_id"], p["problem"]) for p in read.problems] == [
        ("5", "iscrowd 'maybe' is not 0 or 1"), ("6", "iscrowd 2 is not 0 or 1")]


def test_coco_string_ids_name_their_image(tmp_path):
    read = read_annotations(_coco(tmp_path, [{**IMAGE, "id": "x1"}], [{**BOX, "image_id": "x1"}]))
    assert [(i.image_id, [a.annotation_id for a in i.annotations]) for i in read.images] == [("x1", ["7"])]


def test_a_list_image_id_in_an_annotation_is_refused(tmp_path):
    with pytest.raises(BadInput, match=r"annotations\[1\].image_id is \[1\]"):
        read_annotations(_coco(tmp_path, [IMAGE], [BOX, {**BOX, "id": 8, "image_id": [1]}]))


def test_yolo_and_voc_folders_report_entries_that_are_not_files(tmp_path):
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (labels / "b.txt").mkdir()
    os.symlink(tmp_path / "nowhere.txt", labels / "c.txt")
    read = read_annotations(str(labels))
    assert sorted(read.by_key) == ["a"] and len(read.problems) == 2
    assert all("not a readable file" in p["problem"] or "No such file" in p["problem"] for p in read.problems)
    voc = tmp_path / "voc"
    voc.mkdir()
    (voc / "a.xml").write_text("<annotation><filename>a.png</filename><object><name>c</name><bndbox><xmin>1</xmin>"
                               "<ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object></annotation>")
    (voc / "b.xml").mkdir()
    os.symlink(tmp_path / "nowhere.xml", voc / "c.xml")
    read = read_annotations(str(voc))
    assert [image.image_id for image in read.images] == ["a"]
    assert sorted(p["annotations_file"].rsplit("/", 1)[1] for p in read.problems) == ["b.xml", "c.xml"]


def test_a_classes_file_that_is_not_utf8_is_refused_naming_its_line(tmp_path):
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (labels / "classes.txt").write_bytes(b"dog\ncaf\xe9\n")
    with pytest.raises(BadInput, match=r"classes.txt is not UTF-8 text \(line 2\)"):
        read_annotations(str(labels))


def test_a_csv_quote_never_closed_is_an_error_not_a_swallowed_file(tmp_path):
    boxes = tmp_path / "boxes.csv"
    boxes.write_text('image,x1,y1,x2,y2,label\na.png,1,1,10,10,"cat\nb.png,2,2,20,20,dog\n')
    with pytest.raises(BadInput) as refused:
        read_annotations(str(boxes))
    assert refused.value.parameter == "annotations" and "unexpected end of data" in str(refused.value)


def test_a_coco_file_too_big_to_parse_here_is_refused_before_it_is_read(tmp_path, monkeypatch):
    from vizcli.common import runtime

    path = _coco(tmp_path, [IMAGE], [BOX])
    size = os.path.getsize(path)
    monkeypatch.setattr(runtime, "memory_budget", lambda: size * 10)  # less than the parser would take
    with pytest.raises(BadInput, match="takes about .* GB to parse, and this process may use"):
        read_annotations(path)
    monkeypatch.setattr(runtime, "memory_budget", lambda: size * 100)
    assert read_annotations(path).images[0].image_id == "1"


def test_the_memory_budget_reads_the_address_space_limit():
    import resource

    from vizcli.common.runtime import memory_budget

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    budget = memory_budget()
    assert budget is None or budget > 0
    if soft == resource.RLIM_INFINITY and budget is not None:
        with open("/proc/meminfo") as handle:
            available = next(int(line.split()[1]) * 1024 for line in handle if line.startswith("MemAvailable:"))
        assert abs(budget - available) < available * 0.2


def test_coco_keeps_ids_labels_and_flags_and_records_boxes_without_area(coco):
    images, annotations = coco
    read = read_annotations(str(annotations))
    assert read.format == "coco"
    first = read.images[0]
    assert (first.image_id, first.path) == ("1", "a.png")
    assert [(a.annotation_id, a.label, a.iscrowd, a.box) for a in first.annotations] == [
        ("10", "cat", False, (10.0, 8.0, 50.0, 38.0)), ("11", "ear", True, (50.0, 20.0, 80.0, 50.0)),
    ]
    assert [p["annotation_id"] for p in read.problems] == ["13"]


def test_voc_folder_keeps_difficult_and_refuses_entity_expansion(tmp_path):
    folder = tmp_path / "Annotations"
    folder.mkdir()
    (folder / "0001.xml").write_text(
        "<annotation><filename>0001.jpg</filename><size><width>96</width><height>64</height></size>"
        "<object><name>dog</name><difficult>1</difficult><bndbox><xmin>3</xmin><ymin>4</ymin><xmax>50</xmax><ymax>60</ymax></bndbox></object>"
        "<object><name>cat</name><bndbox><xmin>9</xmin><ymin>4</ymin><xmax>5</xmax><ymax>60</ymax></bndbox></object>"
        "</annotation>"
    )
    (folder / "0002.xml").write_text(
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        "<annotation><filename>&lol2;</filename></annotation>"
    )
    read = read_annotations(str(folder))
    assert read.format == "voc"
    assert [(i.image_id, [(a.label, a.difficult, a.box, a.annotation_id) for a in i.annotations]) for i in read.images] == [
        ("0001", [("dog", True, (3.0, 4.0, 50.0, 60.0), "0001#1")])
    ]
    problems = {p.get("annotation_id") or p["annotations_file"]: p["problem"] for p in read.problems}
    assert "xmin < xmax" in problems["0001#2"]
    assert any("Entities" in text or "DTD" in text for text in problems.values())  # refused, never expanded


def test_headerless_csv_is_read_as_x1_y1_x2_y2_label(invoke, tmp_path):
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("53.7,211.9,208.4,256.1\n10,10,60,60,ear\n")
    read = read_annotations(str(boxes))
    assert read.format == "csv"
    assert [(a.box, a.label) for a in read.every_image] == [((53.7, 211.9, 208.4, 256.1), ""), ((10.0, 10.0, 60.0, 60.0), "ear")]
    result = invoke("roi", CHELSEA, "--boxes-file", boxes, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert [box["label"] for box in json.loads(result.stdout)["metadata"]["boxes"]] == ["", "ear"]


def test_csv_and_json_boxes_without_area_are_problems_and_the_rest_is_read(tmp_path):
    rows = tmp_path / "boxes.csv"
    rows.write_text("image,x1,y1,x2,y2,label\na.png,10,10,60,60,cat\na.png,5,5,5,40,flat\nb.png,1,1,9,x,typo\nb.png,1,1,9,9,dog\n")
    read = read_annotations(str(rows))
    assert {key: [a.label for a in boxes] for key, boxes in read.by_key.items()} == {"a.png": ["cat"], "b.png": ["dog"]}
    assert [(p["line"], p["image"], p["annotation_id"]) for p in read.problems] == [(3, "a.png", "2"), (4, "b.png", "3")]
    assert "x2 (5) must be greater than x1 (5)" in read.problems[0]["problem"] and "must be numbers" in read.problems[1]["problem"]
    keyed = tmp_path / "boxes.json"
    keyed.write_text(json.dumps({"a.png": [[10, 10, 60, 60], [3, 8, 20, 8], ["a", 1, 2, 3], [9, 9, 12, 12]],
                                 "b.png": [[0, 0, 1e400, 5]]}).replace("Infinity", "1e400"))
    read = read_annotations(str(keyed))
    assert [[box.box for box in read.by_key[key]] for key in ("a.png", "b.png")] == [[(10, 10, 60, 60), (9, 9, 12, 12)], []]
    assert [a.annotation_id for a in read.by_key["a.png"]] == ["1", "4"]  # each box keeps its number in the file
    assert [(p["image"], p["box"]) for p in read.problems] == [("a.png", 2), ("a.png", 3), ("b.png", 1)]
    assert read.problems[1]["problem"].startswith("coordinates must be numbers")  # the file, box and image are fields


def test_yolo_labels_in_a_subfolder_are_found(tmp_path):
    labels = tmp_path / "labels"
    (labels / "train").mkdir(parents=True)
    (labels / "train" / "0001.txt").write_text("3 0.5 0.5 0.25 0.5\n")
    (tmp_path / "classes.txt").write_text("a\nb\nc\nd\n")
    read = read_annotations(str(labels))
    assert read.format == "yolo" and read.by_key["train/0001"][0].label == "d"
    from vizcli.roi.annotations import AnnotatedImage, attach

    (image,) = attach(read, [AnnotatedImage(image_id="train/0001.jpg", path="images/train/0001.jpg")])
    assert image.annotations[0].box == (0.5, 0.5, 0.25, 0.5) and image.annotations[0].normalized
    (tmp_path / "empty" / "deeper").mkdir(parents=True)
    with pytest.raises(BadInput, match="in it or in its subfolders"):
        read_annotations(str(tmp_path / "empty"))


def test_boxes_keyed_by_a_file_name_are_not_given_to_its_namesake_of_another_extension(tmp_path):
    from vizcli.roi.annotations import AnnotatedImage, attach

    rows = tmp_path / "boxes.csv"
    rows.write_text("image,x1,y1,x2,y2\nx.png,1,1,9,9\n")
    images = attach(read_annotations(str(rows)), [AnnotatedImage("x.png", "x.png"), AnnotatedImage("x.jpg", "x.jpg")])
    assert [len(image.annotations) for image in images] == [1, 0]
