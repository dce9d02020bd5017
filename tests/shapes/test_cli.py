"""vizcli shapes through the CLI: formats, golden tables, check, weights, failures."""

import csv
import io
import json
import re

import pytest
import torch
import torchvision
from PIL import Image

from tests.checks import CHELSEA, check_form, one_error_line
from tests.conftest import EXAMPLES


def _stable(text: str) -> str:
    return re.sub(r"forward time: .*\n", "forward time: <timing>\n", text)


def test_golden_depth_1_table(invoke, golden):
    result = invoke("shapes", "--depth", "1")
    assert result.exit_code == 0, result.stderr
    golden("shapes_resnet18_depth1.txt", _stable(result.stdout))


def test_golden_depth_3_table_for_an_image(invoke, golden, monkeypatch):
    monkeypatch.chdir(EXAMPLES)  # a relative path: the text wraps the same wherever the clone lives
    result = invoke("shapes", "chelsea.png")
    assert result.exit_code == 0, result.stderr
    assert "451×300" in result.stderr and "random weights" in result.stdout  # preprocessing: stderr (issue 34)
    golden("shapes_resnet18_chelsea.txt", _stable(result.stdout))


def test_json_schema(invoke):
    result = invoke("shapes", "--format", "json")
    document = json.loads(result.stdout)
    assert document["schema"] == "vizcli.shapes/1"
    table = document["tables"][0]
    assert len(table["rows"]) == 69
    assert table["totals"]["parameters"] == 11_689_512
    assert table["totals"]["flops"] == 2 * table["totals"]["macs"]
    assert "random weights" in document["weights"]
    assert table["rows"][9]["diagram_node"] == "layer1_0_add"


def test_csv_reads(invoke):
    result = invoke("shapes", "--format", "csv", "--depth", "2")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [row["name"] for row in rows][:6] == ["conv1", "bn1", "relu", "maxpool", "layer1.0", "layer1.1"]
    assert sum(int(row["params"]) for row in rows) == 11_689_512
    assert "random weights" in result.stderr


def test_markdown_has_every_row(invoke):
    result = invoke("shapes", "--format", "markdown")
    assert result.stdout.count("\n| ") == 69 + 1


def test_mermaid_has_every_node_and_edge(invoke):
    from vizcli.shapes.diagram import NOTES_DIAGRAM

    result = invoke("shapes", "--format", "mermaid")
    text = result.stdout
    assert "\nflowchart TD\n" in text
    for node in NOTES_DIAGRAM:
        if node.id == "layer1_0_skip":
            continue  # identity: drawn as a labelled edge, not a node
        assert re.search(rf"^\s+{node.id}[\[{{]", text, re.M), node.id
    assert "layer4_1_conv2" in text  # the second block the notes leave out
    edges = re.findall(r"^\s+(\w+) -->(?:\|\"([^\"]*)\"\|)? (\w+)$", text, re.M)
    assert len(edges) == 69 + 8 + 1  # one per input (each add has 2) + the output
    labels = [label for _, label, _ in edges if label]
    assert sum(label.startswith("identity") for label in labels) == 5
    assert labels.count("downsample path") == 3
    assert text.count("subgraph") == 4 and text.count("\n    end") == 4


def test_check_passes_at_224_and_fails_cleanly_at_320(invoke):
    good = invoke("shapes", "--check", "--depth", "1")
    assert good.exit_code == 0
    assert "36 of 36 stated sizes hold" in good.stdout
    bad = invoke("shapes", "--check", "--input-size", "3x320x320", "--depth", "1")
    assert bad.exit_code == 1
    assert "DIFFERS" in bad.stdout
    assert bad.stderr.startswith("Error: 33 sizes stated by the notes' diagram differ")


def test_other_model_depth_1(invoke):
    result = invoke("shapes", "--model", "resnet50", "--depth", "1")
    assert result.exit_code == 0
    assert "3× Bottleneck" in result.stdout and "25,557,032" in result.stdout


def test_unknown_model_suggests_names(invoke):
    result = invoke("shapes", "--model", "resnet5")
    assert result.exit_code == 2
    assert "did you mean resnet50" in result.stderr


def test_failed_forward_prints_rows_and_names_layer(invoke):
    result = invoke("shapes", "--model", "vgg16", "--input-size", "3x16x16")
    assert result.exit_code == 1
    assert "features.29" in result.stdout
    assert result.stderr.startswith("Error: forward pass of the synthetic input failed at features.30")
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.parametrize("size", ["3x", "0x224x224", "a", "1x2x3x4"])
def test_bad_input_size(invoke, size):
    result = invoke("shapes", "--input-size", size)
    assert result.exit_code == 2 and result.stderr.startswith("Error: --input-size")


def test_weights_from_pth_and_safetensors_give_predictions(invoke, tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(1)
    state = torchvision.models.resnet18().state_dict()
    torch.save(state, tmp_path / "w.pth")
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "w.safetensors"))
    for name in ("w.pth", "w.safetensors"):
        result = invoke("shapes", EXAMPLES / "chelsea.png", "--weights", tmp_path / name, "--depth", "1")
        assert result.exit_code == 0, result.stderr
        assert "top-5 for" in result.stdout and "random weights" not in result.stdout


def test_weights_mismatch_lists_keys(invoke, tmp_path):
    state = torchvision.models.resnet18().state_dict()
    state.pop("fc.bias")
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad.pth")
    result = invoke("shapes", "--weights", tmp_path / "bad.pth")
    assert result.exit_code == 2
    assert "1 missing (first: fc.bias)" in result.stderr and "extra.weight" in result.stderr


def test_weights_pickle_with_code_is_refused(invoke, tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"x": Evil()}, tmp_path / "evil.pth")
    result = invoke("shapes", "--weights", tmp_path / "evil.pth")
    assert result.exit_code == 2 and "refused" in result.stderr
    assert not marker.exists()


def test_weights_default_offline_says_where_the_file_belongs(invoke, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    # tests never touch the network: a closed port on loopback stands for an unreachable host
    monkeypatch.setenv("VIZCLI_WEIGHTS_URL", "http://127.0.0.1:9/resnet18-f37072fd.pth")
    result = invoke("shapes", "--weights", "DEFAULT")
    assert result.exit_code == 1
    assert str(tmp_path) in result.stderr and "resnet18-f37072fd.pth" in result.stderr


def test_keep_size_tables_per_distinct_size(invoke):
    result = invoke("shapes", EXAMPLES / "chelsea.png", EXAMPLES / "coffee.png", "--keep-size", "--depth", "1")
    assert result.exit_code == 0
    assert "input 1×3×300×451" in result.stdout and "input 1×3×400×600" in result.stdout
    same = invoke("shapes", EXAMPLES / "chelsea.png", EXAMPLES / "coffee.png", "--depth", "1")
    assert same.stdout.count("computations: 69") == 1


def test_image_smaller_than_the_network_takes_is_a_clear_failure(invoke, tmp_path):
    path = tmp_path / "tiny.png"
    Image.new("RGB", (8, 8)).save(path)
    result = invoke("shapes", path, "--keep-size", "--model", "vgg16", "--depth", "1")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: forward pass of image {path} failed at features.") and result.stderr.count("\n") == 1
    check_form(result.stderr)


def test_input_size_with_channels_the_model_cannot_take(invoke):
    assert "3-channel" in one_error_line(invoke("shapes", "--input-size", "1x224x224"))


def test_nan_weights_are_flagged_not_printed_as_percentages(invoke, tmp_path):
    import torch
    import torchvision

    state = {key: torch.full_like(value, float("nan")) if value.is_floating_point() else value
             for key, value in torchvision.models.resnet18().state_dict().items()}
    torch.save(state, tmp_path / "nan.pth")
    result = invoke("shapes", CHELSEA, "--weights", tmp_path / "nan.pth", "--depth", "1")
    assert result.exit_code == 0, result.stderr
    assert "NaN or infinite" in result.stdout and "nan%" not in result.stdout
