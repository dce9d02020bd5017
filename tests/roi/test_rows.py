"""vizcli.roi.rows: the roi dataset job end to end: rows equal the single-image path, shard folders, merge, bad images, resume after a kill."""

import json
import signal
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.checks import random_image
from tests.conftest import ROOT
from tests.datasets.events import count, wait_for
from vizcli.datasets.keys import shard_of
from vizcli.datasets.run import SKIPPED_ROWS_EXIT


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
    from vizcli.roi.report import run_roi

    single = run_roi([str(images / "a.png")], {str(images / "a.png"): [Box(1, 10, 8, 50, 38), Box(2, 50, 20, 80, 50)]})
    expected = single.images[0].outputs["align"].reshape(2, -1).numpy()
    got = np.array(table.column("features_align").to_pylist()[:2], dtype=np.float32)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert table.column("feature_box").to_pylist()[0] == [10 / 16, 8 / 16, 50 / 16, 38 / 16]
    problems = [json.loads(line) for line in (tmp_path / "out.problems.jsonl").read_text().splitlines()]
    assert [p["annotation_id"] for p in problems] == ["13"]


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
    assert invoke("merge", folder, "-o", merged).exit_code == 0
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
    result = invoke("merge", *outputs, "-o", merged)
    assert result.exit_code == 0, result.stderr
    assert sorted(pq.read_table(merged).column("annotation_id").to_pylist()) == ["10", "11", "12", "14"]
    fullest = max(outputs, key=lambda out: pq.read_table(out).num_rows)
    twice = invoke("merge", fullest, fullest, "-o", tmp_path / "twice.parquet")
    assert twice.exit_code == 2 and "more than one input" in twice.stderr
    other = tmp_path / "other.parquet"
    assert invoke("roi", images, "--annotations", annotations, "-o", other, "--output-size", "3").exit_code == SKIPPED_ROWS_EXIT
    mixed = invoke("merge", fullest, other, "-o", tmp_path / "mixed.parquet")
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
    result = invoke("merge", folder, "-o", tmp_path / "m.parquet")
    assert result.exit_code == 2 and "sha256" in result.stderr


def test_bad_images_are_recorded_and_the_run_goes_on(invoke, tmp_path):
    folder = tmp_path / "images"
    random_image(folder / "good.png", (64, 64), 5)
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
        random_image(folder / f"{index:03d}.png", (64, 64), index)
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("4,4,40,40,a\n10,12,60,50,b\n")
    reference = tmp_path / "reference.parquet"
    common = [folder, "--annotations", boxes, "--shard-size", "0.05", "--batch-size", "1", "--decode-threads", "1", "--threads", "1"]
    subprocess.run([sys.executable, "-m", "vizcli", "roi", *map(str, common), "-o", str(reference)], cwd=ROOT, check=True,
                   capture_output=True, timeout=600)
    out = tmp_path / "out.parquet" if kind == "parquet" else tmp_path / "out"
    target = str(out) + ("/" if kind == "folder" else "")
    units = (tmp_path / "out.parquet.parts") if kind == "parquet" else out
    process = subprocess.Popen([sys.executable, "-m", "vizcli", "roi", *map(str, common), "-o", target], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # the event: four finished units renamed into place (inotify wakes the wait; no sleep decides when to signal)
    wait_for(lambda: count(units, "part-*") >= 4, [tmp_path, units], timeout=300, process=process)
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
    assert "already finished by an earlier run" in result.stderr
    assert not list(tmp_path.rglob("*.tmp"))
    from vizcli.datasets.merge import read_output
    from vizcli.datasets.units import read_unit

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


DETECT = ["--detector", "fasterrcnn_mobilenet_v3_large_320_fpn", "--op", "align,box-head", "--max-detections", "4",
          "--batch-size", "2"]


def _detect_images(folder):
    for number, size in enumerate([(120, 90), (90, 120), (120, 90), (100, 100)]):
        random_image(folder / f"{number}.png", size, number)
    (folder / "broken.png").write_bytes(b"not a PNG")
    return folder


def test_detect_rows_equal_the_detector_on_each_image_and_record_how_to_recompute_them(invoke, tmp_path):
    from vizcli.roi.detect import Detector

    images = _detect_images(tmp_path / "images")
    out = tmp_path / "det.parquet"
    result = invoke("detect", images, *DETECT, "-o", out)
    assert result.exit_code == SKIPPED_ROWS_EXIT, result.stderr  # broken.png is a problem, the rest are rows
    assert "meaningless" in result.stderr
    table = pq.read_table(out)
    assert table.num_rows == 16 and table.column("annotation_id").to_pylist()[:4] == ["0", "1", "2", "3"]
    detector = Detector("fasterrcnn_mobilenet_v3_large_320_fpn", op="align,box-head", max_detections=4)
    expected = detector({"image": [str(images / f"{n}.png") for n in range(4)]})
    got_head = np.array(table.column("features_box_head").to_pylist(), dtype=np.float32).reshape(4, 4, 1024)
    for number in range(4):
        rows = table.slice(4 * number, 4)
        assert rows.column("image").to_pylist() == [f"{number}.png"] * 4
        np.testing.assert_array_equal(np.array(rows.column("box").to_pylist()), expected["box"][number])
        np.testing.assert_array_equal(np.array(rows.column("score").to_pylist(), dtype=np.float32), expected["score"][number])
        assert rows.column("label").to_pylist() == list(expected["class_name"][number])
        np.testing.assert_array_equal(got_head[number], expected["features_box_head"][number])
    meta = json.loads(table.schema.metadata[b"vizcli"])
    assert meta["model"] == "fasterrcnn_mobilenet_v3_large_320_fpn" and meta["weights_sha256"] == detector.weights_sha256
    assert meta["thresholds"]["max_detections"] == 4 and meta["transform"]["min_size"] == [320]
    assert meta["feature_shapes"] == {"align": [256, 7, 7], "box-head": [1024]}
    assert meta["settings"]["detector"] == "fasterrcnn_mobilenet_v3_large_320_fpn" and meta["settings"]["op"] == "align,box-head"


def test_detect_shards_merge_and_resume_to_every_image_once(invoke, tmp_path):
    images = _detect_images(tmp_path / "images")
    parts = []
    for shard in ("0/2", "1/2"):
        folder = tmp_path / f"part{shard[0]}"
        result = invoke("detect", images, *DETECT, "-o", f"{folder}/", "--shard", shard)
        assert result.exit_code in (0, SKIPPED_ROWS_EXIT), result.stderr
        again = invoke("detect", images, *DETECT, "-o", f"{folder}/", "--shard", shard, "--resume")
        assert again.exit_code in (0, SKIPPED_ROWS_EXIT) and "wrote 0 rows" in again.stderr, again.stderr
        parts.append(folder)
    merged = invoke("merge", *parts, "-o", tmp_path / "all.parquet")
    assert merged.exit_code == 0, merged.stderr
    table = pq.read_table(tmp_path / "all.parquet")
    keys = list(zip(table.column("image").to_pylist(), table.column("annotation_id").to_pylist()))
    assert sorted(keys) == sorted((f"{n}.png", str(k)) for n in range(4) for k in range(4))


def test_given_boxes_go_through_the_box_head_in_a_dataset_run(invoke, coco, tmp_path):
    images, annotations = coco
    out = tmp_path / "head.parquet"
    result = invoke("detect", images, "--annotations", annotations, "--op", "box-head", "--detector",
                    "fasterrcnn_mobilenet_v3_large_320_fpn", "-o", out)
    assert result.exit_code == SKIPPED_ROWS_EXIT, result.stderr
    table = pq.read_table(out)
    assert table.column("annotation_id").to_pylist() == ["10", "11", "12", "14"]
    assert table.column("label").to_pylist() == ["cat", "ear", "cat", "ear"] and table.column("score").null_count == 4
    assert table.schema.field("features_box_head").type.list_size == 1024


@pytest.mark.ray
@pytest.mark.process
def test_detect_on_ray_writes_what_the_local_engine_writes(tmp_path):
    from tests.conftest import run_vizcli

    images = _detect_images(tmp_path / "images")
    local = run_vizcli("detect", images, *DETECT, "-o", tmp_path / "local.parquet", "--quiet")
    assert local.returncode == SKIPPED_ROWS_EXIT, local.stderr.decode()
    remote = run_vizcli("detect", images, *DETECT, "-o", tmp_path / "ray.parquet", "--engine", "ray", "--workers", "2", timeout=600)
    assert remote.returncode == SKIPPED_ROWS_EXIT, remote.stderr.decode()
    a, b = pq.read_table(tmp_path / "local.parquet"), pq.read_table(tmp_path / "ray.parquet")
    for name in ("image", "annotation_id", "label", "box", "score"):
        assert a.column(name).to_pylist() == b.column(name).to_pylist(), name
    np.testing.assert_allclose(np.array(a.column("features_box_head").to_pylist()),
                               np.array(b.column("features_box_head").to_pylist()), rtol=0, atol=1e-5)
    assert json.loads(a.schema.metadata[b"vizcli"]) == json.loads(b.schema.metadata[b"vizcli"])
