"""vizcli.roi.dataset: which images a dataset run covers; bad lists and patterns are refused up front."""

import json
import math
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from tests.checks import CHELSEA
from tests.conftest import ROOT
from vizcli.common.errors import BadInput
from vizcli.datasets.keys import Shard, shard_of
from vizcli.datasets.run import SKIPPED_ROWS_EXIT
from vizcli.roi.annotations import read_annotations
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




def _image(path, size, seed):
    generator = np.random.default_rng(seed)
    array = generator.integers(0, 255, size=(size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture
def coco(tmp_path):
    """A COCO dataset: three images (one in a subfolder), five annotations (one without area)."""
    images = tmp_path / "images"
    _image(images / "a.png", (96, 64), 1)
    _image(images / "sub" / "b.png", (64, 96), 2)
    _image(images / "c.png", (96, 64), 3)
    data = {
        "images": [{"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": "sub/b.png"}, {"id": 3, "file_name": "c.png"}],
        "annotations": [
            {"id": 10, "image_id": 1, "bbox": [10, 8, 40, 30], "category_id": 1, "iscrowd": 0},
            {"id": 11, "image_id": 1, "bbox": [50, 20, 30, 30], "category_id": 2, "iscrowd": 1},
            {"id": 12, "image_id": 2, "bbox": [4, 4, 50, 80], "category_id": 1},
            {"id": 13, "image_id": 3, "bbox": [0, 0, 0, 5], "category_id": 1},
            {"id": 14, "image_id": 3, "bbox": [5, 5, 60, 40], "category_id": 2},
        ],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "ear"}],
    }
    annotations = tmp_path / "instances.json"
    annotations.write_text(json.dumps(data))
    return images, annotations


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


def test_yolo_boxes_are_converted_with_each_images_real_size(tmp_path):
    _image(tmp_path / "images" / "x.png", (200, 100), 4)
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


def test_headerless_csv_is_read_as_x1_y1_x2_y2_label(invoke, tmp_path):
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("53.7,211.9,208.4,256.1\n10,10,60,60,ear\n")
    read = read_annotations(str(boxes))
    assert read.format == "csv"
    assert [(a.box, a.label) for a in read.every_image] == [((53.7, 211.9, 208.4, 256.1), ""), ((10.0, 10.0, 60.0, 60.0), "ear")]
    result = invoke("roi", CHELSEA, "--boxes-file", boxes, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert [box["label"] for box in json.loads(result.stdout)["metadata"]["boxes"]] == ["", "ear"]


def test_dataset_rows_equal_the_single_image_path(invoke, coco, tmp_path):
    images, annotations = coco
    out = tmp_path / "out.parquet"
    result = invoke("roi", images, "--annotations", annotations, "-o", out, "--batch-size", "2")
    assert result.exit_code == SKIPPED_ROWS_EXIT, result.stderr
    table = pq.read_table(out)
    assert table.num_rows == 4 and table.column("annotation_id").to_pylist() == ["10", "11", "12", "14"]
    meta = json.loads(table.schema.metadata[b"vizcli"])
    assert meta["schema"] == "vizcli.roi/2" and meta["feature_shape"] == [256, 7, 7] and meta["ops"] == ["align"]
    from vizcli.roi.boxes import Box
    from vizcli.roi.pooling import run_roi

    single = run_roi([str(images / "a.png")], {str(images / "a.png"): [Box(1, 10, 8, 50, 38), Box(2, 50, 20, 80, 50)]})
    expected = single.images[0].outputs["align"].reshape(2, -1).numpy()
    got = np.array(table.column("features_align").to_pylist()[:2], dtype=np.float32)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert table.column("feature_box").to_pylist()[0] == [10 / 16, 8 / 16, 50 / 16, 38 / 16]
    problems = [json.loads(line) for line in (tmp_path / "out.problems.jsonl").read_text().splitlines()]
    assert [p["annotation_id"] for p in problems] == ["13"]


def test_fpn_levels_equal_torchvision_multiscale_roi_align():
    from torchvision.ops import MultiScaleRoIAlign

    from vizcli.roi.annotations import AnnotatedImage, Annotation
    from vizcli.roi.extract import RoIExtractor

    extractor = RoIExtractor(model="resnet18", layer="fpn", output_size=7, sampling_ratio=2, aligned=False)
    boxes = [(2.0, 3.0, 30.0, 40.0), (0.0, 0.0, 250.0, 230.0), (10.0, 20.0, 150.0, 150.0), (5.0, 5.0, 400.0, 250.0)]
    image = AnnotatedImage("x", str(CHELSEA), [Annotation(box, str(i)) for i, box in enumerate(boxes)])
    prepared = extractor.prepare(image)
    (result,) = extractor.pool([prepared])
    assert len(set(result["levels"])) >= 3  # the boxes spread over the pyramid
    padded = prepared.padded
    tensor = torch.nn.functional.pad(prepared.tensor, (0, padded[1] - prepared.tensor.shape[2], 0, padded[0] - prepared.tensor.shape[1]))
    with torch.inference_mode():
        maps = extractor.backbone.module(tensor[None])
        reference = MultiScaleRoIAlign(["0", "1", "2", "3"], 7, 2)(
            {name: maps[name] for name in ["0", "1", "2", "3"]}, [torch.tensor(boxes)], [tuple(padded)]
        )
    np.testing.assert_allclose(result["align"], reference.numpy(), rtol=1e-5, atol=1e-6)


def test_other_resnets_and_what_is_refused(invoke, tmp_path):
    from vizcli.roi.backbones import load_backbone, stage_channels

    for model, layer in (("resnet50", "layer2"), ("wide_resnet50_2", "layer1"), ("resnet34", "layer4"), ("resnet18", "fpn")):
        assert load_backbone(model, layer).channels == stage_channels(model, layer), (model, layer)
    assert stage_channels("resnet50", "layer2") == 512
    refused = invoke("roi", tmp_path, "--boxes", "1,1,5,5", "--model", "vgg16", "-o", tmp_path / "x.parquet")
    assert refused.exit_code == 2 and "ResNet" in refused.stderr
    single = invoke("roi", CHELSEA, "--boxes", "1,1,50,50", "--model", "vgg16")
    assert single.exit_code == 2 and "ResNet" in single.stderr
    detector_stage = invoke("roi", CHELSEA, "--boxes", "1,1,50,50", "--model", "fasterrcnn_resnet50_fpn")
    assert detector_stage.exit_code == 2 and "--layer fpn" in detector_stage.stderr
    channel = invoke("roi", CHELSEA, "--boxes", "1,1,50,50", "--model", "resnet50", "--explain", "1", "--channel", "1024")
    assert channel.exit_code == 2 and "0..1023" in channel.stderr
    nowhere = invoke("roi", tmp_path, "--boxes", "1,1,5,5", "-o", tmp_path / "missing" / "x.parquet")
    assert nowhere.exit_code == 2 and "does not exist" in nowhere.stderr and not (tmp_path / "missing").exists()


@pytest.mark.parametrize("shard_format", ["safetensors", "npz"])
def test_shard_folder_has_a_manifest_with_sha256_and_reads_back(invoke, coco, tmp_path, shard_format):
    import hashlib

    images, annotations = coco
    folder = tmp_path / "feats"
    result = invoke("roi", images, "--annotations", annotations, "-o", f"{folder}/", "--shard-format", shard_format,
                    "--shard-size", "0.05", "--batch-size", "1")
    assert result.exit_code == SKIPPED_ROWS_EXIT, result.stderr
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["complete"] and manifest["rows"] == 4 and manifest["format"] == shard_format
    assert len(manifest["shards"]) == 3  # 0.05 MB holds one 50 KB row: one image (two rows for a.png) a shard
    for shard in manifest["shards"]:
        assert hashlib.sha256((folder / shard["file"]).read_bytes()).hexdigest() == shard["sha256"]
    first = folder / manifest["shards"][0]["file"]
    if shard_format == "safetensors":
        from safetensors.numpy import load_file

        arrays = load_file(first)
    else:
        arrays = dict(np.load(first, allow_pickle=False))
    assert arrays["features_align"].shape == (2, 256, 7, 7) and arrays["box"].shape == (2, 4)
    merged = tmp_path / "merged.parquet"
    assert invoke("roi", "merge", folder, "-o", merged).exit_code == 0
    whole = tmp_path / "whole.parquet"
    assert invoke("roi", images, "--annotations", annotations, "-o", whole).exit_code == SKIPPED_ROWS_EXIT
    assert pq.read_table(merged).to_pydict() == pq.read_table(whole).to_pydict()


def test_shards_split_the_images_and_merge_checks_what_it_joins(invoke, coco, tmp_path):
    images, annotations = coco
    outputs = []
    for index in range(3):
        out = tmp_path / f"part{index}.parquet"
        result = invoke("roi", images, "--annotations", annotations, "-o", out, "--shard", f"{index}/3")
        assert result.exit_code == SKIPPED_ROWS_EXIT, result.stderr
        if out.exists():
            outputs.append(out)
    ids = [pq.read_table(out).column("image").to_pylist() for out in outputs]
    assert sorted(set(i for part in ids for i in part)) == ["1", "2", "3"]
    assert sum(len(set(part)) for part in ids) == 3  # each image in exactly one shard
    assert all(shard_of(i, 3) == int(out.stem[-1]) for out, part in zip(outputs, ids) for i in part)
    merged = tmp_path / "all.parquet"
    result = invoke("roi", "merge", *outputs, "-o", merged)
    assert result.exit_code == 0, result.stderr
    assert sorted(pq.read_table(merged).column("annotation_id").to_pylist()) == ["10", "11", "12", "14"]
    fullest = max(outputs, key=lambda out: pq.read_table(out).num_rows)
    twice = invoke("roi", "merge", fullest, fullest, "-o", tmp_path / "twice.parquet")
    assert twice.exit_code == 2 and "more than one input" in twice.stderr
    other = tmp_path / "other.parquet"
    assert invoke("roi", images, "--annotations", annotations, "-o", other, "--output-size", "3").exit_code == SKIPPED_ROWS_EXIT
    mixed = invoke("roi", "merge", fullest, other, "-o", tmp_path / "mixed.parquet")
    assert mixed.exit_code == 2 and "feature_shape" in mixed.stderr and "output_size" in mixed.stderr
    assert not (tmp_path / "mixed.parquet").exists()


def test_merge_refuses_a_shard_that_does_not_match_its_manifest(invoke, coco, tmp_path):
    images, annotations = coco
    folder = tmp_path / "feats"
    assert invoke("roi", images, "--annotations", annotations, "-o", f"{folder}/").exit_code == SKIPPED_ROWS_EXIT
    shard = next(folder.glob("part-*.safetensors"))
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF
    shard.write_bytes(bytes(data))
    result = invoke("roi", "merge", folder, "-o", tmp_path / "m.parquet")
    assert result.exit_code == 2 and "sha256" in result.stderr


def test_bad_images_are_recorded_and_the_run_goes_on(invoke, tmp_path):
    folder = tmp_path / "images"
    _image(folder / "good.png", (64, 64), 5)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("4,4,40,40\n")
    out = tmp_path / "out.parquet"
    result = invoke("roi", folder, "--annotations", boxes, "-o", out)
    assert result.exit_code == SKIPPED_ROWS_EXIT, result.stderr  # finished, with a row skipped: scripts can tell
    assert "1 problem was recorded" in result.stderr and "exit status 3" in result.stderr
    assert pq.read_table(out).column("image").to_pylist() == ["good.png"]
    ignored = invoke("roi", folder, "--annotations", boxes, "-o", tmp_path / "ignored.parquet", "--on-error", "ignore")
    assert ignored.exit_code == 0, ignored.stderr
    assert pq.read_table(tmp_path / "ignored.parquet").column("image").to_pylist() == ["good.png"]
    (problem,) = [json.loads(line) for line in (tmp_path / "out.problems.jsonl").read_text().splitlines()]
    assert problem["image"] == "broken.png" and "not a readable image" in problem["problem"]
    stop = invoke("roi", folder, "--annotations", boxes, "-o", tmp_path / "stop.parquet", "--on-error", "stop")
    assert stop.exit_code == 1 and "broken.png" in stop.stderr and "--resume" in stop.stderr


def test_a_second_run_without_resume_is_refused_and_bfloat16_stays_close(invoke, coco, tmp_path):
    images, annotations = coco
    folder = tmp_path / "feats"
    assert invoke("roi", images, "--annotations", annotations, "-o", f"{folder}/").exit_code == SKIPPED_ROWS_EXIT
    again = invoke("roi", images, "--annotations", annotations, "-o", f"{folder}/")
    assert again.exit_code == 2 and "--resume" in again.stderr
    for dtype in ("float32", "bfloat16"):
        assert invoke("roi", images, "--annotations", annotations, "-o", tmp_path / f"{dtype}.parquet", "--dtype", dtype).exit_code == SKIPPED_ROWS_EXIT
    a = np.array(pq.read_table(tmp_path / "float32.parquet").column("features_align").to_pylist())
    b = np.array(pq.read_table(tmp_path / "bfloat16.parquet").column("features_align").to_pylist())
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cosine.min() > 0.99


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "stop"), [("parquet", signal.SIGKILL), ("folder", signal.SIGTERM)])
def test_a_killed_run_resumes_to_every_box_exactly_once(tmp_path, kind, stop):
    folder = tmp_path / "images"
    for index in range(24):
        _image(folder / f"{index:03d}.png", (64, 64), index)
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("4,4,40,40,a\n10,12,60,50,b\n")
    reference = tmp_path / "reference.parquet"
    common = [folder, "--annotations", boxes, "--shard-size", "0.05", "--batch-size", "1", "--workers", "1", "--threads", "1"]
    subprocess.run([sys.executable, "-m", "vizcli", "roi", *map(str, common), "-o", str(reference)], cwd=ROOT, check=True,
                   capture_output=True, timeout=600)
    out = tmp_path / "out.parquet" if kind == "parquet" else tmp_path / "out"
    target = str(out) + ("/" if kind == "folder" else "")
    units = (tmp_path / "out.parquet.parts") if kind == "parquet" else out
    process = subprocess.Popen([sys.executable, "-m", "vizcli", "roi", *map(str, common), "-o", target], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(list(units.glob("part-*"))) < 4:
        time.sleep(0.05)
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=60)
    finished = len(list(units.glob("part-*")))
    assert 4 <= finished < 24, finished  # killed in the middle
    if stop == signal.SIGTERM:  # (SIGKILL can leave the unit it was writing as a temporary; --resume removes it)
        assert not [path for path in units.iterdir() if path.name.endswith(".tmp")]  # nothing half-written
        assert process.returncode == 128 + signal.SIGTERM
        assert "finished units are kept" in stderr and "--resume" in stderr
    result = subprocess.run([sys.executable, "-m", "vizcli", "roi", *map(str, common), "-o", target, "--resume"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "already there" in result.stderr
    assert not list(tmp_path.rglob("*.tmp"))
    from vizcli.datasets.merge import read_output
    from vizcli.datasets.sink import read_unit

    _, _, parts = read_output(str(out))
    table = pq.read_table(out) if kind == "parquet" else __import__("pyarrow").concat_tables([read_unit(p) for p in parts])
    expected = pq.read_table(reference)
    keys = list(zip(table.column("image").to_pylist(), table.column("annotation_id").to_pylist()))
    assert len(keys) == len(set(keys)) == 48
    order = sorted(range(len(keys)), key=lambda i: keys[i])
    expected_keys = list(zip(expected.column("image").to_pylist(), expected.column("annotation_id").to_pylist()))
    expected_order = sorted(range(len(expected_keys)), key=lambda i: expected_keys[i])
    got = np.array(table.column("features_align").to_pylist())[order]
    want = np.array(expected.column("features_align").to_pylist())[expected_order]
    np.testing.assert_array_equal(got, want)


def test_shard_parsing():
    assert Shard.parse("1/4") == Shard(1, 4) and str(Shard.parse(None)) == "0/1"
    for bad in ("4/4", "x", "-1/2", "1/0"):
        with pytest.raises(Exception, match="K/N"):
            Shard.parse(bad)
    assert math.isclose(sum(shard_of(str(i), 4) == 0 for i in range(4000)) / 4000, 0.25, abs_tol=0.03)


def test_the_extractor_takes_a_batch_dict_of_paths_or_bytes():
    from vizcli.roi import extract
    from vizcli.roi.boxes import Box
    from vizcli.roi.pooling import run_roi

    extractor = extract.RoIExtractor(model="resnet18", layer="layer3")
    boxes = [[140.0, 80.0, 210.0, 150.0], [290.0, 100.0, 350.0, 165.0]]
    batch = extractor({"id": ["a", "b"], "image": [str(CHELSEA), CHELSEA.read_bytes()], "boxes": [boxes, boxes[:1]]})
    assert [f.shape for f in batch["features"]] == [(2, 256, 7, 7), (1, 256, 7, 7)] and batch["id"] == ["a", "b"]
    single = run_roi([str(CHELSEA)], {str(CHELSEA): [Box(i + 1, *box) for i, box in enumerate(boxes)]})
    np.testing.assert_allclose(batch["features"][0], single.images[0].outputs["align"].numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(batch["features"][1], batch["features"][0][:1], rtol=1e-5, atol=1e-5)
