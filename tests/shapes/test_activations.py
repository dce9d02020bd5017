"""Activation statistics and feature maps, against forward hooks written here."""

import json

import pytest
import torch
import torch.nn as nn
import torchvision

from vizcli.common.errors import BadInput
from vizcli.shapes.activations import ActivationOptions, channel_order, tensor_statistics
from vizcli.shapes.report import run_module_shapes


def _hook_statistics(model, example):
    """Every leaf module's output statistics, by hooks: the reference."""
    seen = {}

    def hook(module, inputs, output, name):
        values = output.detach().double()
        finite = values[torch.isfinite(values)]
        seen.setdefault(name, []).append({
            "mean": float(finite.mean()), "std": float(finite.std(unbiased=False)), "min": float(finite.min()),
            "max": float(finite.max()), "zero_fraction": float((values == 0).double().mean()),
            "nan": int(torch.isnan(values).sum()), "inf": int(torch.isinf(values).sum())})

    hooks = [module.register_forward_hook(lambda m, i, o, name=name: hook(m, i, o, name))
             for name, module in model.named_modules() if not list(module.children())]
    with torch.no_grad():
        model.eval()(example)
    for handle in hooks:
        handle.remove()
    return seen


def test_resnet18_statistics_equal_hooks():
    torch.manual_seed(0)
    model = torchvision.models.resnet18()
    example = torch.randn(1, 3, 64, 64)
    expected = _hook_statistics(model, example)
    report = run_module_shapes(model, example, device="cpu", activations=ActivationOptions())
    trace = report.runs[0].trace
    checked = 0
    for record in trace.records:
        if record.name in expected:  # the module rows (the adds and the flatten are not modules)
            want = expected[record.name][record.call]
            got = trace.activations[record.index].as_dict()
            for key in ("mean", "std", "min", "max"):
                assert got[key] == pytest.approx(want[key], rel=1e-4, abs=1e-5), (record.name, key)
            assert got["zero_fraction"] == pytest.approx(want["zero_fraction"]) and got["nan"] == got["inf"] == 0
            checked += 1
    assert checked >= 40
    assert not {"std_mean", "aminmax", "isfinite", "clone"} & set(trace.operator_calls)  # the statistics are not the model's work
    relus = [trace.activations[r.index].zeros for r in trace.records if r.kind == "ReLU"]
    assert len(relus) == 17 and all(fraction > 0.1 for fraction in relus)  # each ReLU zeroes part of its input


def test_a_batch_norm_row_is_measured_before_the_in_place_relu_after_it():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(inplace=True)).eval()
    example = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        before_relu = model[1](model[0](example))
    report = run_module_shapes(model, example, device="cpu", activations=ActivationOptions())
    records = report.runs[0].trace.records
    statistics = report.runs[0].trace.activations
    assert statistics[records[1].index].min == pytest.approx(float(before_relu.min()), rel=1e-5)
    assert statistics[records[1].index].min < 0 and statistics[records[2].index].min == 0


def test_nan_and_inf_are_counted_and_left_out_of_the_moments():
    values = torch.tensor([1.0, 3.0, float("nan"), float("inf"), 0.0])
    found = tensor_statistics(values)
    assert (found.nan, found.inf) == (1, 1)
    assert found.mean == pytest.approx(4 / 3) and found.max == 3.0 and found.zeros == pytest.approx(0.2)
    assert tensor_statistics(torch.tensor([1, 2])) is None  # ids, not activations


def test_channels_most_active_first():
    channels = torch.zeros(3, 2, 2)
    channels[1] = 5
    channels[2] = -2
    assert channel_order(channels) == [1, 2, 0]


def test_maps_are_kept_only_where_asked_and_a_bad_name_is_refused():
    torch.manual_seed(0)
    model = torchvision.models.resnet18()
    options = ActivationOptions(statistics=False, maps=("layer1.0.conv1",), strip=True)
    report = run_module_shapes(model, torch.randn(1, 3, 64, 64), device="cpu", activations=options)
    kept = report.runs[0].trace.kept_maps
    assert list(kept.layers) == ["layer1.0.conv1"] and tuple(kept.layers["layer1.0.conv1"].shape) == (64, 16, 16)
    assert list(kept.stages)[-4:] == ["layer1", "layer2", "layer3", "layer4"]
    assert all(values.dim() == 2 for values, _ in kept.stages.values())
    with pytest.raises(BadInput, match="no row named 'layer9'"):
        run_module_shapes(model, torch.randn(1, 3, 32, 32), device="cpu", activations=ActivationOptions(maps=("layer9",)))


def test_the_command_line_shows_statistics_and_draws_maps(invoke, tmp_path):
    result = invoke("shapes", "--input-size", "3x64x64", "--stats", "--format", "json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)["tables"][0]["rows"]
    assert set(rows[0]["activation"]) == {"mean", "std", "min", "max", "zero_fraction", "nan", "inf"}
    table = invoke("shapes", "--input-size", "3x64x64", "--stats", "--depth", "1")
    assert "zeros" in table.stdout and "NaN/Inf" in table.stdout
    strip, grid = tmp_path / "strip.png", tmp_path / "grid.png"
    drawn = invoke("shapes", "--input-size", "3x64x64", "--depth", "1", "--stage-strip", strip, "--channel-grid",
                   f"layer1.0.conv1={grid}")
    assert drawn.exit_code == 0, drawn.stderr
    assert f"wrote {strip}" in drawn.stderr and f"wrote {grid}" in drawn.stderr
    assert strip.read_bytes().startswith(b"\x89PNG") and grid.read_bytes().startswith(b"\x89PNG")
    bad = invoke("shapes", "--input-size", "3x32x32", "--channel-grid", f"fc={tmp_path / 'fc.png'}")
    assert bad.exit_code == 2 and "has no channels" in bad.stderr and bad.stderr.count("\n") == 1
    assert not (tmp_path / "fc.png").exists()
