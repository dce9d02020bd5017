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
    result = CliRunner().invoke(app, ["detect", str(folder / "images"), "--detector", "fasterrcnn_mobilenet_v3_large_320_fpn",
                                      "--op", "align,box-head", "--max-detections", "3", "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_the_tsv_reads_back_as_bottom_up_attention_readers_read_it(invoke, detected, tmp_path):
    from vizcli.roi.detectors import detector_categories

    tsv = tmp_path / "feats.tsv"
    result = invoke("export", detected, "-o", tsv)
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
    result = invoke("export", detected, "--layout", "butd-npz", "--feature", "align", "-o", folder)
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
    (["--feature", "pool"], "--feature pool: is not stored"),
    ([], "give --output (the file or folder to write"),
])
def test_bad_exports_are_one_error_line(invoke, detected, args, fragment, tmp_path):
    target = [] if not args or "-o" in args else ["-o", tmp_path / "x.tsv"]
    assert fragment in one_error_line(invoke("export", detected, *args, *target))


def test_an_npz_export_refuses_a_folder_with_files_and_leaves_nothing(invoke, detected, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    assert "exists (a folder)" in one_error_line(invoke("export", detected, "--layout", "butd-npz", "-o", tmp_path / "full"))
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]


def _features(image_id, boxes=2):
    from vizcli.roi.export import ImageFeatures

    generator = np.random.default_rng(len(image_id))
    return ImageFeatures(image_id, 64, 48, generator.random((boxes, 4), dtype=np.float32),
                         generator.random((boxes, 8), dtype=np.float32), np.arange(boxes, dtype=np.int64),
                         np.full(boxes, 0.5, np.float32))


def test_two_images_that_would_share_an_npz_name_are_refused_and_leave_nothing(tmp_path):
    from vizcli.common.errors import BadInput
    from vizcli.roi.export import write_npz_folder

    with pytest.raises(BadInput, match="'x.png' and 'x.jpg' would both be x.npz"):
        write_npz_folder(iter([_features("x.png"), _features("y.png"), _features("x.jpg")]), str(tmp_path / "out"))
    assert list(tmp_path.iterdir()) == []
    assert write_npz_folder(iter([_features("x.png"), _features("sub/x.jpg")]), str(tmp_path / "out")) == 2


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_the_npz_folder_follows_the_umask(tmp_path, umask):
    import os
    import stat

    from vizcli.roi.export import write_npz_folder

    previous = os.umask(umask)
    try:
        write_npz_folder(iter([_features("a/b.png")]), str(tmp_path / "out"))
    finally:
        os.umask(previous)
    for folder in (tmp_path / "out", tmp_path / "out" / "a"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o777 & ~umask
    data = np.load(tmp_path / "out" / "a" / "b.npz", allow_pickle=False)
    np.testing.assert_array_equal(data["x"], _features("a/b.png").features)


def test_an_npz_export_never_replaces_a_folder_or_a_link(tmp_path):
    import os

    from vizcli.common.errors import BadInput
    from vizcli.roi.export import write_npz_folder

    (tmp_path / "empty").mkdir(mode=0o755)
    (tmp_path / "to-empty").symlink_to(tmp_path / "empty")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    for name, what in (("empty", "a folder"), ("to-empty", "a link"), ("dangling", "a link"), ("empty/", "a folder")):
        with pytest.raises(BadInput, match=f"exists \\({what}\\)"):
            write_npz_folder(iter([_features("a.png")]), str(tmp_path / name))
    assert sorted(os.listdir(tmp_path)) == ["dangling", "empty", "to-empty"] and os.listdir(tmp_path / "empty") == []
    assert os.readlink(tmp_path / "dangling") == str(tmp_path / "nowhere")


def test_export_refuses_to_write_over_its_own_input_however_named(tmp_path):
    from vizcli.common.errors import BadInput
    from vizcli.roi.export import export_command

    source = tmp_path / "X.parquet"
    source.write_bytes(b"PAR1 rows PAR1")
    (tmp_path / "link.tsv").symlink_to(source)
    for destination in (source, tmp_path / "link.tsv", tmp_path / "." / "X.parquet"):
        with pytest.raises(BadInput, match="is also an input"):
            export_command(str(source), "butd-tsv", str(destination), None)
    assert source.read_bytes() == b"PAR1 rows PAR1"


def test_the_tsv_goes_to_stdout_for_a_dash_and_the_npz_folder_refuses_it(tmp_path, capsys):
    from vizcli.common.errors import BadInput
    from vizcli.roi.export import export_command, write_tsv

    assert write_tsv(iter([_features("a.png"), _features("b.png")]), "-") == 2
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["a.png", "b.png"] and not (tmp_path / "-").exists()
    with pytest.raises(BadInput, match="stdout cannot hold"):
        export_command(str(tmp_path / "X.parquet"), "butd-npz", "-", None)
