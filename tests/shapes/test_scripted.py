"""TorchScript: a scripted model is traced by its operators; scripted submodules are rows of their own."""

import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from vizcli.shapes.report import run_module_shapes
from vizcli.shapes.trace import trace_shapes

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit.script is deprecated, still used


def _script(module):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.script(module)


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 1))

    def forward(self, x):
        return self.layers(x)


def test_a_scripted_model_is_counted_row_by_row():
    model = _script(Mlp())
    trace = trace_shapes(model, torch.randn(64, 128))
    assert trace.error is None and trace.method == "operators"
    linears = [record for record in trace.records if record.kind == "Linear"]
    assert [record.name for record in linears] == ["layers.0", "layers.2", "layers.4"]
    assert [record.macs for record in linears] == [64 * 128 * 128, 64 * 128 * 128, 64 * 128]
    assert [record.params for record in linears] == [128 * 128 + 128, 128 * 128 + 128, 129]
    assert [record.shape for record in linears] == [(64, 128), (64, 128), (64, 1)]
    assert sum(r.macs for r in trace.records) == sum(trace.operator_macs.values()) == 64 * 128 * (2 * 128 + 1)
    assert sum(r.params for r in trace.records) == sum(p.numel() for p in model.parameters())
    assert [record.kind for record in trace.records].count("relu") == 2


def test_a_scripted_model_reports_no_unused_parameters():
    report = run_module_shapes(_script(Mlp()), torch.randn(2, 128), device="cpu")
    assert report.unused_parameters == {} and report.runs[0].trace.error is None


class PartlyScripted(nn.Module):
    """torchinfo's PartialJITModel: eager convolutions, scripted linears."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.fc1 = _script(nn.Linear(1440, 50))
        self.fc2 = _script(nn.Linear(50, 10))

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(self.fc1(x.flatten(1)))
        return F.log_softmax(self.fc2(x), dim=1)


def test_scripted_submodules_are_rows_that_ran():
    model = PartlyScripted()
    report = run_module_shapes(model, torch.randn(2, 1, 28, 28), device="cpu")
    trace = report.runs[0].trace
    rows = {record.name: record for record in trace.records}
    assert trace.method == "fx"
    assert rows["fc1"].macs == 2 * 1440 * 50 and rows["fc1"].params == 1440 * 50 + 50 and rows["fc1"].kind == "Linear"
    assert rows["fc2"].macs == 2 * 50 * 10 and rows["fc2"].params == 510
    assert "fc1.forward" not in rows
    assert report.unused_parameters == {}
