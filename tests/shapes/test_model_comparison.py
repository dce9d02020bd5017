"""Model against model: totals side by side, rows aligned by name, checked against torch directly."""

import csv
import io
import json

import pytest
import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode

from vizcli.common.errors import BadInput
from vizcli.shapes.model_comparison import ModelOptions, compare_models


def _flop_counter_macs(model, size):
    """torch's own FlopCounterMode, per module (FLOPs = 2 × MACs)."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model.eval()(torch.randn(1, *size))
    return {name: sum(counts.values()) // 2 for name, counts in counter.get_flop_counts().items()}


@pytest.fixture(scope="module")
def resnets():
    return compare_models(["resnet18", "resnet34"], ModelOptions(input_size=["3x64x64"], device="cpu", depth=1))


def test_totals_and_stage_rows_equal_torch(resnets):
    small, large = torchvision.models.resnet18(), torchvision.models.resnet34()
    totals = resnets.totals()
    assert [t["parameters"] for t in totals] == [sum(p.numel() for p in m.parameters()) for m in (small, large)]
    counted = [_flop_counter_macs(model, (3, 64, 64)) for model in (small, large)]
    assert [t["macs"] for t in totals] == [c["Global"] for c in counted]
    rows = {row.name: row for row in resnets.rows}
    for stage in ("layer1", "layer2", "layer3", "layer4"):
        delta = sum(p.numel() for p in getattr(large, stage).parameters()) - sum(p.numel() for p in getattr(small, stage).parameters())
        assert rows[stage].delta("params") == delta
        assert rows[stage].delta("macs") == counted[1][f"ResNet.{stage}"] - counted[0][f"ResNet.{stage}"]
    assert rows["conv1"].delta("params") == 0 and rows["fc"].delta("macs") == 0
    assert rows["layer3"].cells[0].op == "2× BasicBlock" and rows["layer3"].cells[1].op == "6× BasicBlock"


def test_blocks_only_one_model_has_keep_their_place():
    comparison = compare_models(["resnet18", "resnet34"], ModelOptions(input_size=["3x32x32"], device="cpu", depth=2))
    names = [row.name for row in comparison.rows]
    assert names[names.index("layer1.0"):names.index("layer2.0")] == ["layer1.0", "layer1.1", "layer1.2"]
    extra = next(row for row in comparison.rows if row.name == "layer3.5")
    assert extra.cells[0] is None and extra.cells[1].params == extra.delta("params") > 0


def test_bad_comparisons_are_refused():
    with pytest.raises(BadInput, match="2 to 4"):
        compare_models(["resnet18"] * 5, ModelOptions())
    with pytest.raises(BadInput, match="once per --model"):
        compare_models(["resnet18", "resnet34"], ModelOptions(weights=["a.pth"]))


def test_the_command_line_compares_models(invoke, tmp_path):
    base = ["shapes", "--model", "resnet18", "--model", "resnet34", "--input-size", "3x32x32", "--depth", "1"]
    table = invoke(*base)
    assert table.exit_code == 0, table.stderr
    assert "resnet34 − resnet18" in table.stdout and "rows aligned by name" in table.stdout
    document = json.loads(invoke(*base, "--format", "json").stdout)
    assert document["schema"] == "vizcli.shapes.models/1" and document["models"] == ["resnet18", "resnet34"]
    assert document["totals"][1]["parameters"] == 21_797_672
    rows = list(csv.DictReader(io.StringIO(invoke(*base, "--format", "csv").stdout)))
    assert [row["name"] for row in rows][:2] == ["conv1", "bn1"] and "resnet34_macs" in rows[0]
    picture = tmp_path / "macs.png"
    plotted = invoke(*base, "--plot", picture)
    assert plotted.exit_code == 0 and picture.read_bytes().startswith(b"\x89PNG")
    refused = invoke(*base, "--check")
    assert refused.exit_code == 2 and refused.stderr.count("\n") == 1
