"""vizcli.roi.detect_cli: `vizcli detect`, the detector's own command (detections in depth: test_detections.py)."""

import subprocess
import sys

import pytest

from tests.checks import one_error_line, random_image
from tests.conftest import ROOT
from tests.roi.test_cli import _visible_options, help_text

FAST = ["--detector", "fasterrcnn_mobilenet_v3_large_320_fpn"]


def test_detect_help_lists_only_what_detect_uses_each_option_in_a_panel(invoke):
    text = help_text(invoke, "detect")
    for foreign in ("--layer", "--explain ", "--channel", "--sampling-ratio", "--output-size", "--aligned", "--max-size",
                    "--dtype", "--model", "--detect ", "--save-format", "--detect:"):
        assert foreign not in text, foreign
    for own in ("--detector", "--min-score", "--max-detections", "--classes", "--class-names", "--boxes", "--op", "box-head"):
        assert own in text, own
    options = _visible_options("detect")
    assert [flag for flag, param in options.items() if not getattr(param, "rich_help_panel", None)] == []
    assert options["--min-score"].rich_help_panel == "Detection" and options["--op"].rich_help_panel == "Pooling"


def test_given_boxes_refuse_the_detection_thresholds(invoke, tmp_path):
    image = tmp_path / "a.png"
    random_image(image, (64, 48), 1)
    message = one_error_line(invoke("detect", image, "--boxes", "1,1,30,30", "--max-detections", "5", *FAST))
    assert "--max-detections 5 chooses among a detector's detections" in message


def test_options_of_datasets_are_refused_for_single_images(invoke, tmp_path):
    image = tmp_path / "a.png"
    random_image(image, (64, 48), 1)
    assert "--shard runs datasets" in one_error_line(invoke("detect", image, "--shard", "0/2", *FAST))
    assert "--format json is for single images" in one_error_line(invoke("detect", tmp_path, "--format", "json", "-o",
                                                                          tmp_path / "x.parquet", *FAST))


@pytest.mark.process
def test_only_the_result_goes_to_stdout_so_head_shows_its_first_line(tmp_path):
    image = tmp_path / "a.png"
    random_image(image, (96, 80), 2)
    command = f"{sys.executable} -m vizcli detect {image} {' '.join(FAST)} --max-detections 3 | head -1"
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("fasterrcnn_mobilenet_v3_large_320_fpn · detections") and result.stdout.count("\n") == 1
    assert "meaningless" in result.stderr
