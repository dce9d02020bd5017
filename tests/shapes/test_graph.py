"""vizcli.shapes.graph: the traced graph drawn by Graphviz, repeated blocks rolled into one ×N; real files checked."""

import re
import shutil

import pytest

from tests.checks import one_error_line
from vizcli.shapes.graph import find_rolls

pytestmark = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed (make setup installs it)")


def _svg_texts(path):
    return [re.sub(r"<[^>]+>", "", text) for text in re.findall(r"<text[^>]*>(.*?)</text>", path.read_text(encoding="utf-8"))]


def test_resnet18_is_drawn_with_layer1s_two_equal_blocks_rolled(invoke, tmp_path):
    from vizcli.shapes.report import run_shapes

    records = run_shapes([], None, False, "resnet18", None, 0, "cpu", None).runs[0].trace.records
    rolls, stand_in = find_rolls(records)
    assert [(roll.parent, roll.first, roll.count) for roll in rolls] == [("layer1", 0, 2)]  # layer2-4 open with a downsample
    assert all(records[key].name.startswith("layer1.1.") and records[value].name.startswith("layer1.0.") for key, value in stand_in.items())
    picture = tmp_path / "resnet18.svg"
    result = invoke("shapes", "--plot", picture)  # every computation (--depth 1 draws the stages: see below)
    assert result.exit_code == 0, result.stderr
    texts = _svg_texts(picture)
    assert "layer1.0 … layer1.1  ×2" in [text.replace("&#160;", " ") for text in texts]
    assert texts.count("Conv2d 3x3, 64") == 2  # layer1.0's two convs, drawn once for both blocks
    assert sum(text.startswith("layer1.1.") for text in texts) == 0  # the rolled copy is not drawn
    assert "1×64×56×56 (56×56×64)" in texts and "fc" in texts


def test_bert_is_drawn_with_its_six_layers_rolled_and_its_attention_inputs(invoke, tmp_path):
    picture = tmp_path / "bert.svg"
    result = invoke("shapes", "--model", "minilm", "--seq-len", "8", "--plot", picture)
    assert result.exit_code == 0, result.stderr
    texts = _svg_texts(picture)
    assert "encoder.layer.0 … encoder.layer.5  ×6" in [text.replace("&#160;", " ") for text in texts]
    assert "encoder.layer.0.attention.self.attention" in texts and "encoder.layer.3.attention.self.attention" not in texts
    assert {"Q", "K", "V", "residual", "h[CLS]"} <= set(texts)
    assert "1×12×8×32 (heads 12 × seq 8 × head 32)" in texts


def test_a_png_and_a_detector(invoke, tmp_path):
    picture = tmp_path / "detector.png"
    result = invoke("shapes", "--model", "fasterrcnn_mobilenet_v3_large_320_fpn", "--input-size", "3x320x320", "--depth", "2",
                    "--plot", picture)  # depth 2: still a big picture (depth 1 draws four stages)
    assert result.exit_code == 0, result.stderr
    data = picture.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 50_000
    assert [path.name for path in tmp_path.iterdir()] == ["detector.png"]  # written whole, no temporary left


@pytest.mark.parametrize("plot, fragment", [("graph.pdf", "use a .svg or .png file"), ("out.svg", "is also the output")])
def test_bad_plot_paths_are_refused_before_work(invoke, tmp_path, monkeypatch, plot, fragment):
    monkeypatch.chdir(tmp_path)
    args = ["shapes", "--plot", plot] + (["-o", "out.svg"] if plot == "out.svg" else [])
    assert fragment in one_error_line(invoke(*args), 2)
    assert list(tmp_path.iterdir()) == []


def test_the_plot_follows_depth(invoke, tmp_path):
    picture = tmp_path / "stages.svg"
    result = invoke("shapes", "--plot", picture, "--depth", "1")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[-1] == f"wrote {picture}"
    texts = _svg_texts(picture)
    stages = ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "flatten", "fc"]
    assert [text for text in texts if text in stages] == stages  # one node a stage, in order
    assert "2× BasicBlock" in texts and not any(text.startswith("layer1.0") for text in texts)
    blocks = tmp_path / "blocks.svg"
    assert invoke("shapes", "--plot", blocks, "--depth", "2").exit_code == 0
    block_texts = _svg_texts(blocks)
    assert "layer2.0" in block_texts and "layer2.0.conv1" not in block_texts
