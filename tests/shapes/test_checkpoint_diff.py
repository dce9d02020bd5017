"""Checkpoint against checkpoint, against a direct torch computation written here."""

import csv
import io
import json

import pytest
import torch
import torchvision

from vizcli.common.errors import BadInput
from vizcli.shapes.checkpoint_diff import compare_state_dicts, diff_checkpoints


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """resnet18 A, and B: fc nudged, layer4.1.conv2 scaled by 1.1, one key dropped, one added."""
    folder = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(0)
    a = torchvision.models.resnet18().state_dict()
    b = {key: value.clone() for key, value in a.items()}
    generator = torch.Generator().manual_seed(1)
    b["fc.weight"] += 0.01 * torch.randn(b["fc.weight"].shape, generator=generator)
    b["layer4.1.conv2.weight"] *= 1.1
    torch.save(a, folder / "a.pth")
    torch.save(b, folder / "b.pth")
    c = dict(b)
    del c["fc.bias"]
    c["extra.weight"] = torch.ones(3)
    torch.save(c, folder / "c.pth")
    return a, b, folder


def _direct(a, b):
    a64, b64 = a.flatten().double(), b.flatten().double()
    return float((b64 - a64).norm() / a64.norm()), float(a64 @ b64 / (a64.norm() * b64.norm()))


def test_per_layer_change_and_cosine_equal_torch(checkpoints):
    a, b, _ = checkpoints
    layers, only_a, only_b, differs = compare_state_dicts(a, b)
    by_name = {layer.name: layer for layer in layers}
    fc_a = torch.cat([a["fc.weight"].flatten(), a["fc.bias"]])
    fc_b = torch.cat([b["fc.weight"].flatten(), b["fc.bias"]])
    change, cosine = _direct(fc_a, fc_b)
    assert by_name["fc"].relative_change == pytest.approx(change, rel=1e-12)
    assert by_name["fc"].cosine == pytest.approx(cosine, rel=1e-12)
    assert by_name["fc"].values == 512 * 1000 + 1000
    assert by_name["layer4.1.conv2"].relative_change == pytest.approx(0.1, rel=1e-6)
    assert by_name["layer4.1.conv2"].cosine == pytest.approx(1.0, abs=1e-9)
    assert by_name["layer1.0.conv1"].relative_change == 0 and by_name["layer1.0.conv1"].cosine == pytest.approx(1.0)
    # a BatchNorm layer joins its weight, bias and running statistics (floating tensors only)
    bn = torch.cat([a[f"bn1.{key}"].flatten() for key in ("weight", "bias", "running_mean", "running_var")])
    assert by_name["bn1"].values == bn.numel()
    assert only_a == only_b == differs == []


def test_activation_change_on_the_same_input_equals_hooks(checkpoints):
    a, b, folder = checkpoints
    diff = diff_checkpoints("resnet18", str(folder / "a.pth"), str(folder / "b.pth"), input_size="3x64x64", device="cpu",
                            statistics=True)
    rows = {(row.name, row.call): row for row in diff.activations}
    # the reference: the same seeded input, forward hooks on both models
    example = torch.randn((3, 64, 64), generator=torch.Generator().manual_seed(0)).unsqueeze(0)
    outputs = {}
    for key, state in (("a", a), ("b", b)):
        model = torchvision.models.resnet18().eval()
        model.load_state_dict(state)
        seen: dict = {}

        def keeper(label, seen=seen):
            return lambda module, inputs, output: seen.__setitem__(label, output.clone())

        hooks = [model.layer4[1].conv2.register_forward_hook(keeper("conv2")), model.fc.register_forward_hook(keeper("fc")),
                 model.layer1[0].conv1.register_forward_hook(keeper("early"))]
        with torch.no_grad():
            model(example)
        for hook in hooks:
            hook.remove()
        outputs[key] = seen
    for name, key in (("layer4.1.conv2", "conv2"), ("fc", "fc"), ("layer1.0.conv1", "early")):
        change, cosine = _direct(outputs["a"][key], outputs["b"][key])
        assert rows[(name, 0)].relative_change == pytest.approx(change, rel=1e-5, abs=1e-12)
        assert rows[(name, 0)].cosine == pytest.approx(cosine, rel=1e-6)
    assert rows[("layer1.0.conv1", 0)].relative_change == 0
    before, after = rows[("fc", 0)].statistics
    assert after.mean == pytest.approx(float(outputs["b"]["fc"].mean()), rel=1e-4, abs=1e-6)
    assert before.max == pytest.approx(float(outputs["a"]["fc"].max()), rel=1e-6)


def test_sorted_filtered_and_keys_in_one_checkpoint_only(checkpoints):
    _, _, folder = checkpoints
    diff = diff_checkpoints("resnet18", str(folder / "a.pth"), str(folder / "c.pth"), input_size="3x32x32", device="cpu",
                            sort="change", min_change=0.05)
    assert [layer.name for layer in diff.layers] == ["fc", "layer4.1.conv2"]  # largest change first, the rest filtered out
    assert diff.only_in_a == ["fc.bias"] and diff.only_in_b == ["extra.weight"]
    assert diff.activations == [] and "activations not compared" in diff.activation_note and "c.pth" in diff.activation_note


def test_bad_choices_are_refused_before_loading(checkpoints):
    _, _, folder = checkpoints
    with pytest.raises(BadInput, match="sort"):
        diff_checkpoints("resnet18", "missing-a.pth", "missing-b.pth", sort="size")
    with pytest.raises(BadInput, match="min_change"):
        diff_checkpoints("resnet18", "missing-a.pth", "missing-b.pth", min_change=-1)
    with pytest.raises(BadInput, match="two different"):
        diff_checkpoints("resnet18", str(folder / "a.pth"), str(folder / "a.pth"))


def test_the_command_line_as_table_json_csv_and_plot(invoke, checkpoints, tmp_path):
    _, _, folder = checkpoints
    base = ["shapes", "--weights", folder / "a.pth", "--weights", folder / "b.pth", "--input-size", "3x32x32"]
    table = invoke(*base, "--sort", "change", "--min-change", "0.05")
    assert table.exit_code == 0, table.stderr
    assert "‖B−A‖/‖A‖" in table.stdout and table.stdout.index("│ fc") < table.stdout.index("│ layer4.1.conv2")
    document = json.loads(invoke(*base, "--format", "json").stdout)
    assert document["schema"] == "vizcli.shapes.checkpoints/1" and len(document["layers"]) == 41  # 20 convs, 20 norms, fc
    rows = list(csv.DictReader(io.StringIO(invoke(*base, "--format", "csv", "--stats").stdout)))
    assert {row["part"] for row in rows} == {"weights", "activations"} and "mean_b" in rows[-1]
    picture = tmp_path / "change.png"
    plotted = invoke(*base, "--plot", picture)
    assert plotted.exit_code == 0 and picture.read_bytes().startswith(b"\x89PNG") and f"wrote {picture}" in plotted.stderr
    bad = invoke(*base, "--plot", tmp_path / "change.svg")
    assert bad.exit_code == 2 and bad.stderr.startswith("Error: --plot") and bad.stderr.count("\n") == 1
