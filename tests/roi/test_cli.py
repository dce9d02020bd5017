"""vizcli.roi.cli, dataset runs: options mean what they mean for single images, or are refused."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from tests.checks import CHELSEA, one_error_line
from tests.conftest import EXAMPLES, ROOT
from vizcli.datasets.run import SKIPPED_ROWS_EXIT


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        Image.new("RGB", (64, 48), (90, 120, 200)).save(folder / name)
    return folder


def test_boxes_on_a_folder_go_on_every_image(invoke, images, tmp_path):
    out = tmp_path / "o.parquet"
    result = invoke("roi", images, "--boxes", "1,1,30,30", "--boxes", "10,5,60,40", "-o", out, "--quiet")
    assert result.exit_code == 0, result.stderr
    table = pq.read_table(out, columns=["image", "annotation_id", "box"])
    assert table["image"].to_pylist() == ["a.png", "a.png", "b.png", "b.png"]
    assert table["box"].to_pylist()[1] == [10.0, 5.0, 60.0, 40.0]


def test_strict_turns_a_clipped_box_into_a_problem(invoke, images, tmp_path):
    boxes = tmp_path / "b.csv"
    boxes.write_text("image,x1,y1,x2,y2\na.png,1,1,100,100\na.png,1,1,20,20\n")
    out = tmp_path / "o.parquet"
    strict = invoke("roi", images, "--annotations", boxes, "--strict", "-o", out, "--quiet")
    assert strict.exit_code == SKIPPED_ROWS_EXIT, strict.stderr
    assert pq.read_table(out)["annotation_id"].to_pylist() == ["2"]
    (problem,) = [json.loads(line) for line in (tmp_path / "o.problems.jsonl").read_text().splitlines()]
    assert problem["annotation_id"] == "1" and "(strict=True: not clipped)" in problem["problem"]
    clipped = invoke("roi", images, "--annotations", boxes, "-o", tmp_path / "c.parquet", "--quiet")
    assert clipped.exit_code == 0 and pq.read_table(tmp_path / "c.parquet")["box"].to_pylist()[0] == [1.0, 1.0, 64.0, 48.0]


@pytest.mark.parametrize("flag", [["--output-format", "npz"], ["--format", "json"]])
def test_a_single_image_format_with_a_dataset_output_is_refused(invoke, images, tmp_path, flag):
    result = invoke("roi", images, "--boxes", "1,1,30,30", *flag, "-o", tmp_path / "r.parquet")
    assert result.exit_code == 2 and result.stderr.startswith(f"Error: {flag[0]} {flag[1]} is for single images")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imgs"]


def test_annotation_errors_name_annotations_not_boxes_file(invoke, images, tmp_path):
    bad = tmp_path / "b.json"
    bad.write_text("{oops")
    result = invoke("roi", images, "--annotations", bad, "-o", tmp_path / "o.parquet")
    assert result.exit_code == 2 and result.stderr.startswith(f"Error: --annotations {bad}") and "--boxes-file" not in result.stderr


def test_errors_about_the_images_argument_name_no_flag_that_does_not_exist(invoke, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_bytes(b"\xff.png\n")
    result = invoke("roi", listing, "--boxes", "1,1,5,5", "-o", tmp_path / "o.parquet")
    assert result.exit_code == 2 and result.stderr.startswith(f"Error: {listing}: line 1 is not UTF-8")
    assert "--dataset" not in result.stderr




BOXES = ["--boxes", "140,80,210,150", "--boxes", "290,100,350,165"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Run the issue's example once per format; keep what it wrote."""
    from typer.testing import CliRunner

    from vizcli.cli import app

    folder = tmp_path_factory.mktemp("roi")
    results = {}
    for ext in ("npz", "pt", "safetensors"):
        args = [str(CHELSEA), *BOXES, "--op", "both", "-o", str(folder / f"feats.{ext}")]
        if ext == "npz":
            args += ["--plot", str(folder / "roi.png")]
        results[ext] = CliRunner().invoke(app, ["roi", *args])
    results["npy"] = CliRunner().invoke(app, ["roi", str(CHELSEA), *BOXES, "-o", str(folder / "feats.npy")])
    return folder, results


def test_done_when_run(saved):
    folder, results = saved
    result = results["npz"]
    assert result.exit_code == 0, result.stderr
    assert "spatial scale 0.0625 = 1/16, measured" in result.stdout
    assert "+4 +0 +14 +10" in result.stdout  # RoIPool's edge shifts for box 1, in pixels
    assert "random weights" in result.stdout
    assert (folder / "roi.png").stat().st_size > 50_000
    assert sorted(os.listdir(folder)) == ["feats.npy", "feats.npy.json", "feats.npz", "feats.pt", "feats.safetensors", "roi.png"]


def test_metadata_round_trip_in_every_format(saved):
    from safetensors import safe_open

    folder, results = saved
    with np.load(folder / "feats.npz") as data:
        align, pool = data["roi_align"], data["roi_pool"]
        meta = json.loads(str(data["metadata"]))
    assert align.shape == pool.shape == (2, 256, 7, 7)
    assert meta["boxes"][0]["box"] == [140.0, 80.0, 210.0, 150.0]
    assert meta["boxes"][1]["feature_box"] == [290 / 16, 100 / 16, 350 / 16, 165 / 16]
    assert meta["images"][0]["path"] == str(CHELSEA) and meta["images"][0]["size"] == [451, 300]
    assert (meta["ops"], meta["output_size"], meta["spatial_scale"], meta["sampling_ratio"], meta["aligned"], meta["layer"]) == (
        ["align", "pool"], [7, 7], 0.0625, 2, True, "layer3")
    assert "random weights" in meta["weights"]
    saved_pt = torch.load(folder / "feats.pt", weights_only=True)
    assert saved_pt["metadata"] == meta
    assert np.array_equal(saved_pt["tensors"]["roi_align"].numpy(), align)
    with safe_open(str(folder / "feats.safetensors"), "np") as handle:
        assert np.array_equal(handle.get_tensor("roi_pool"), pool)
        assert json.loads(handle.metadata()["boxes"]) == meta["boxes"]
        assert handle.metadata()["layer"] == "layer3"
    npy = np.load(folder / "feats.npy")
    assert np.array_equal(npy, align)
    assert json.loads((folder / "feats.npy.json").read_text())["ops"] == ["align"]


def test_explain_agrees_with_op_output(invoke):
    result = invoke("roi", CHELSEA, *BOXES, "--op", "both", "--explain", "2:1,5", "--channel", "7")
    assert result.exit_code == 0, result.stderr
    assert "RoIAlign, box 2, bin (row 1, col 5), channel 7" in result.stdout
    assert "RoIPool, box 2, bin (row 1, col 5), channel 7" in result.stdout
    assert result.stdout.count(": agree (") == 2 and "DISAGREE" not in result.stdout
    assert len(re.findall(r"point \d at", result.stdout)) == 4


def test_one_image_on_a_pyramid_names_each_box_level_explains_it_and_draws_it(invoke, tmp_path):
    picture = tmp_path / "fpn.png"
    result = invoke("roi", CHELSEA, "--boxes", "140,80,210,150", "--boxes", "10,10,400,300", "--model", "resnet18",
                    "--layer", "fpn", "--op", "both", "--explain", "2", "--format", "json", "--plot", picture)
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert [(row["level"], row["spatial_scale"]) for row in document["rows"]] == [("0", 0.25), ("2", 0.0625)]
    assert document["rows"][1]["feature_box"] == [10 / 16, 10 / 16, 400 / 16, 300 / 16]
    assert document["metadata"]["model"] == "resnet18" and document["metadata"]["layer"] == "fpn"
    assert "seeded random" in result.stderr and picture.read_bytes()[:4] == b"\x89PNG"
    table = invoke("roi", CHELSEA, "--boxes", "10,10,400,300", "--layer", "fpn", "--explain", "1")
    assert "fpn level 2 feature map 256×20×30" in table.stdout and ": agree (" in table.stdout


def test_explain_notes(invoke):
    result = invoke("roi", "--explain-notes")
    assert result.exit_code == 0
    for weight in ("(3,5) weight 0.32", "(4,5) weight 0.48", "(3,6) weight 0.08", "(4,6) weight 0.12"):
        assert weight in result.stdout
    assert "every bin is 2×2 cells" in result.stdout and "DISAGREE" not in result.stdout


def test_several_images_with_keyed_json(invoke, tmp_path):
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"chelsea.png": [{"box": [140, 80, 210, 150], "label": "eye"}], "coffee.png": [[100, 50, 400, 300]]}))
    result = invoke("roi", CHELSEA, EXAMPLES / "coffee.png", "--boxes-file", boxes, "--format", "json", "--layer", "layer2")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert [row["label"] for row in document["rows"]] == ["eye", ""]
    assert document["metadata"]["spatial_scale"] == 0.125


def test_max_size_scales_boxes(invoke):
    result = invoke("roi", CHELSEA, "--boxes", "140,80,210,150", "--max-size", "226", "--format", "json")
    row = json.loads(result.stdout)["rows"][0]
    assert row["box"] == [140, 80, 210, 150]
    assert row["input_box"] == pytest.approx([70.16, 40.09, 105.24, 75.17], abs=0.01)


def test_partly_outside_is_clipped_with_warning(invoke):
    result = invoke("roi", CHELSEA, "--boxes", "400,250,500,320")
    assert result.exit_code == 0
    assert result.stderr.startswith("Warning: box 1 (400, 250, 500, 320): partly outside")
    strict = invoke("roi", CHELSEA, "--boxes", "400,250,500,320", "--strict")
    assert strict.exit_code == 2


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--boxes", "1,2,3"], "box 1 (--boxes 1,2,3): 4 numbers required"),
        (["--boxes", "a,b,c,d"], "box 1"),
        (["--boxes", "10,10,20,20", "--boxes", "50,10,20,20"], "box 2 (--boxes 50,10,20,20): x2 (20) must be greater than x1 (50)"),
        (["--boxes", "10,30,20,20"], "y2 (20) must be greater than y1 (30)"),
        (["--boxes", "nan,1,2,3"], "finite"),
        ([], "no boxes given"),
        (["--boxes", "1000,1000,1100,1100"], "box 1 [1000.0, 1000.0, 1100.0, 1100.0] lies outside the 451×300 image"),
        (["--boxes", "1,1,9,9", "--layer", "layer9"], "--layer layer9"),
        (["--boxes", "1,1,9,9", "--output-size", "0"], "--output-size 0"),
        (["--boxes", "1,1,9,9", "--output-size", "1000"], "at most 256"),
        (["--boxes", "1,1,9,9", "--output-size", "7x"], "--output-size"),
        (["--boxes", "1,1,9,9", "--sampling-ratio", "-1"], "--sampling-ratio -1"),
        (["--boxes", "1,1,9,9", "-o", "out.xyz"], "-o out.xyz"),
        (["--boxes", "1,1,9,9", "--op", "both", "-o", "out.npy"], ".npy holds one array"),
        (["--boxes", "1,1,9,9", "--op", "mean"], "--op mean"),
        (["--boxes", "1,1,9,9", "--explain", "3"], "box 3 does not exist"),
        (["--boxes", "1,1,9,9", "--explain", "1:7,0"], "outside the 7x7 output"),
        (["--boxes", "1,1,9,9", "-o", "/no/such/folder/f.npz"], "does not exist"),
        (["--boxes", "1,1,9,9", "--channel", "3"], "--channel 3: picks the channel --explain BOX shows"),
        (["--boxes", "1,1,9,9", "--glob", "*.png"], "--glob '*.png': picks a dataset's images"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(invoke, tmp_path, monkeypatch, args, fragment):
    monkeypatch.chdir(tmp_path)
    result = invoke("roi", CHELSEA, *args)
    assert result.exit_code == 2, result.stdout
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert fragment in result.stderr
    assert os.listdir(tmp_path) == []


def test_bad_boxes_file(invoke, tmp_path):
    path = tmp_path / "b.json"
    path.write_text("{not json")
    result = invoke("roi", CHELSEA, "--boxes-file", path)
    assert result.exit_code == 2 and "invalid JSON at line 1" in result.stderr
    path.write_text("[]")
    result = invoke("roi", CHELSEA, "--boxes-file", path)
    assert result.exit_code == 2 and "no boxes given" in result.stderr


@pytest.mark.slow
def test_ten_thousand_boxes(invoke, tmp_path):
    generator = np.random.default_rng(0)
    x1 = generator.uniform(0, 400, 10_000)
    y1 = generator.uniform(0, 250, 10_000)
    boxes = [[a, b, a + generator.uniform(8, 50), b + generator.uniform(8, 50)] for a, b in zip(x1, y1)]
    path = tmp_path / "many.json"
    path.write_text(json.dumps(boxes))
    result = invoke("roi", CHELSEA, "--boxes-file", path, "--output-size", "2", "--format", "json", "-o", tmp_path / "many.npy",
                    "--quiet")
    assert result.exit_code == 0, result.stderr
    assert np.load(tmp_path / "many.npy", mmap_mode="r").shape == (10_000, 256, 2, 2)  # 41 MB, not the 500 MB of 7 × 7


def _rounded(text: str) -> str:
    """Numbers to 3 significant digits, and a by-hand/op difference below 1e-6 as ``< 1e-6`` (its digits are the
    CPU's float noise: 8.6e-09 on one machine, 1.1e-08 on another), so golden files hold across machines."""
    import re

    def noise(match: re.Match) -> str:
        return "|difference| < 1e-6" if float(match.group(1)) < 1e-6 else match.group(0)

    text = re.sub(r"\|difference\| (\S+?)\)", lambda m: noise(m) + ")", text)
    return re.sub(r"-?\d+\.\d{3,}(e[-+]\d+)?", lambda m: f"{float(m.group(0)):.3g}", text)


def test_roi_tables_and_explain_match_golden(invoke, golden):
    result = invoke("roi", CHELSEA, *BOXES, "--op", "both", "--explain", "1:3,3")
    assert result.exit_code == 0, result.stderr
    (preprocessing,) = [line for line in result.stderr.splitlines() if line.startswith(str(CHELSEA))]  # on stderr now
    assert str(CHELSEA) not in result.stdout
    golden("roi_chelsea_both_explain.txt", _rounded(f"{preprocessing}\n{result.stdout}".replace(str(CHELSEA), "CHELSEA")))


def test_explain_notes_matches_golden(invoke, golden):
    result = invoke("roi", "--explain-notes")
    assert result.exit_code == 0, result.stderr
    golden("roi_explain_notes.txt", _rounded(result.stdout))


def test_quiet_with_output_file_prints_nothing_unless_asked(invoke, tmp_path):
    target = tmp_path / "feats.npz"
    silent = invoke("roi", CHELSEA, *BOXES, "-o", target, "--quiet")
    assert silent.exit_code == 0, silent.stderr
    assert silent.stdout == "" and silent.stderr == "" and target.exists()
    asked = invoke("roi", CHELSEA, *BOXES, "-o", target, "--quiet", "--format", "json")
    assert json.loads(asked.stdout)["metadata"]["ops"] == ["align"]
    explained = invoke("roi", CHELSEA, *BOXES, "-o", target, "--quiet", "--explain", "1")
    assert explained.stdout.startswith("RoIAlign, box 1") and "where each box lands" not in explained.stdout


@pytest.mark.slow
def test_hundred_thousand_boxes(invoke, tmp_path):
    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 250, (100_000, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(5, 50, (100_000, 2))], axis=1)
    (tmp_path / "many.json").write_text(json.dumps(boxes.round(2).tolist()))
    result = invoke("roi", EXAMPLES / "chelsea.png", "--boxes-file", tmp_path / "many.json", "--layer", "layer1",
                    "--output-size", "2", "-o", tmp_path / "many.npy", "--quiet", "--format", "table")
    assert result.exit_code == 0, result.stderr
    assert np.load(tmp_path / "many.npy", mmap_mode="r").shape == (100_000, 64, 2, 2)
    assert "… and 99,950 more boxes" in result.stdout


def test_explain_channel_is_checked_before_anything_prints(invoke):
    result = invoke("roi", CHELSEA, "--boxes", "140,80,210,150", "--explain", "1", "--channel", "999")
    assert "--channel 999" in one_error_line(result) and result.stdout == ""


def test_roi_metadata_records_the_exif_orientation(invoke, tmp_path):
    image = Image.new("RGB", (80, 40), (10, 200, 10))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise when shown
    image.save(tmp_path / "rotated.jpg", exif=exif)
    result = invoke("roi", tmp_path / "rotated.jpg", "--boxes", "1,1,30,60", "--format", "json", "--quiet")
    assert result.exit_code == 0, result.stderr
    meta = json.loads(result.stdout)["metadata"]["images"][0]
    assert meta["exif_orientation"] == 6 and meta["size"] == [40, 80]


@pytest.mark.process
@pytest.mark.parametrize("fmt", ["pt", "npy", "npz", "safetensors"])
def test_roi_features_go_to_a_pipe_in_every_format(fmt):
    result = subprocess.run([sys.executable, "-m", "vizcli", "roi", str(CHELSEA), "--boxes", "1,1,50,50", "-o", "/dev/stdout",
                             "--output-format", fmt, "--quiet"], capture_output=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-500:]
    assert len(result.stdout) > 256 * 7 * 7 * 4  # one box of [256, 7, 7] float32, plus headers


# ---------------------------------------------------------------- one command, one job


def help_text(invoke, command):
    """``vizcli COMMAND --help`` as words (rich's panel borders and line wrapping taken out)."""
    result = invoke(command, "--help")
    assert result.exit_code == 0, result.stderr
    return " ".join(re.sub("[│╭╮╰╯─]", " ", result.stdout).split())


def _visible_options(name):
    import typer.main

    from vizcli.cli import app

    command = typer.main.get_command(app).commands[name]
    return {max(param.opts, key=len): param for param in command.params if param.opts[0].startswith("-") and not param.hidden}


def test_roi_help_lists_only_what_roi_uses_each_option_in_a_panel(invoke):
    text = help_text(invoke, "roi")
    for foreign in ("--detector", "--min-score", "--max-detections", "--classes", "--layout", "--sample", "--tolerance",
                    "--save-format", "--detect ", "box-head", "verify:", "export:"):
        assert foreign not in text, foreign
    assert "--op" in text and "--explain-notes" in text and "--decode-threads" in text
    assert "study notes on ResNet18, RoI pooling, BERT's pooler and universal approximation that vizcli checks" in text
    options = _visible_options("roi")
    assert [flag for flag, param in options.items() if not getattr(param, "rich_help_panel", None)] == []
    assert {options[flag].rich_help_panel for flag in ("--boxes", "--op", "--layer", "--explain", "--output", "--resume", "--workers")} == {
        "Boxes", "Pooling", "Model", "Explain", "Output", "Dataset run", "Ray"}


@pytest.mark.parametrize(("args", "fragment"), [
    (["verify", "out.parquet"], "'vizcli roi verify' is now 'vizcli verify OUTPUT'"),
    (["merge", "a.parquet", "b.parquet", "-o", "all.parquet"], "'vizcli roi merge' is now 'vizcli merge OUTPUTS... -o OUTPUT'"),
    (["export", "feats.parquet", "--layout", "butd-tsv", "-o", "f.tsv"], "'vizcli roi export' is now 'vizcli export OUTPUT -o FILE'"),
    (["verify", "out.parquet", "--sample", "4"], "is now 'vizcli verify OUTPUT'"),
    ([str(CHELSEA), "--detect"], "--detect is now its own command: vizcli detect IMAGE"),
    ([str(CHELSEA), "--boxes", "1,1,9,9", "--save-format", "npz", "-o", "x.npz"], "--save-format is now --output-format"),
    ([str(CHELSEA), "--boxes", "1,1,9,9", "--op", "box-head"], "vizcli detect --op box-head"),
    ([str(CHELSEA), "--boxes", "1,1,9,9", "--resume"], "--resume runs datasets"),
])
def test_old_spellings_are_one_error_line_naming_the_new_one(invoke, tmp_path, monkeypatch, args, fragment):
    monkeypatch.chdir(tmp_path)
    assert fragment in one_error_line(invoke("roi", *args))
    assert os.listdir(tmp_path) == []


def test_no_argument_is_read_as_a_command_name(invoke, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (40, 30)).save(tmp_path / "verify", format="PNG")  # an image file named like the old verb
    result = invoke("roi", "verify", "--boxes", "1,1,20,20", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["metadata"]["images"][0]["path"] == "verify"


def test_pool_alone_prints_no_roialign_setting_and_each_file_written_is_said(invoke, tmp_path):
    pooled = invoke("roi", CHELSEA, "--boxes", "140,80,210,150", "--op", "pool", "-o", tmp_path / "f.npy", "--plot",
                    tmp_path / "p.png")
    assert pooled.exit_code == 0, pooled.stderr
    (settings,) = [line for line in pooled.stdout.splitlines() if line.startswith("op ")]
    assert "sampling ratio" not in settings and "aligned" not in settings
    assert f"wrote roi_pool [1, 256, 7, 7] to {tmp_path / 'f.npy'} and the metadata to {tmp_path / 'f.npy'}.json" in pooled.stderr
    assert f"wrote the picture to {tmp_path / 'p.png'}" in pooled.stderr
    assert "there is 1 box" in one_error_line(invoke("roi", CHELSEA, "--boxes", "1,1,9,9", "--explain", "2"))


def test_a_dataset_run_counts_in_words(invoke, images, tmp_path):
    out = tmp_path / "o.parquet"
    first = invoke("roi", images / "a.png", "--boxes", "1,1,30,30", "-o", out)
    assert first.exit_code == 0 and f"wrote 1 row from 1 image to {out}" in first.stderr, first.stderr
    again = invoke("roi", images / "a.png", "--boxes", "1,1,30,30", "-o", out, "--resume")
    assert "wrote 0 rows from 0 images" in again.stderr and "1 image was already finished by an earlier run" in again.stderr


@pytest.mark.process
def test_only_the_result_goes_to_stdout_so_head_shows_its_first_line(tmp_path):
    command = f"{sys.executable} -m vizcli roi {CHELSEA} --boxes 140,80,210,150 | head -1"
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("layer3 feature map 256×20×30") and result.stdout.count("\n") == 1
    assert f"{CHELSEA}: read PNG 451×300 RGB" in result.stderr
