"""trace_shapes: one record per computation, exact counts, hooks cleaned up."""

import pytest
import torch
import torchvision

from vizcli.common.models import documented_macs
from vizcli.shapes.records import diagram_shape, torch_shape
from vizcli.shapes.trace import trace_shapes


def test_fx_internals_never_reach_a_message():
    from vizcli.shapes.records import trace_error_text

    assert trace_error_text(RuntimeError("size mismatch for Proxy(getitem_2) While executing %x")) == "size mismatch for getitem_2"


@pytest.fixture(scope="module")
def resnet18_trace():
    model = torchvision.models.resnet18()
    return model, trace_shapes(model, torch.randn(1, 3, 224, 224))


def test_resnet18_has_69_rows_in_execution_order(resnet18_trace):
    _, trace = resnet18_trace
    records = trace.records
    assert trace.method == "fx"
    assert len(records) == 69
    assert sum(r.kind == "add" for r in records) == 8
    assert sum(r.kind == "flatten" for r in records) == 1
    assert sum(r.kind not in ("add", "flatten") for r in records) == 60
    names = [r.name for r in records]
    assert names[:11] == [
        "conv1", "bn1", "relu", "maxpool", "layer1.0.conv1", "layer1.0.bn1", "layer1.0.relu",
        "layer1.0.conv2", "layer1.0.bn2", "layer1.0.add", "layer1.0.relu",
    ]
    assert [r.call for r in records[6:11]] == [0, 0, 0, 0, 1]  # the reused relu: two rows
    assert names[-3:] == ["avgpool", "flatten", "fc"]
    assert "layer2.0.downsample.0" in names


def test_wording_and_shapes(resnet18_trace):
    _, trace = resnet18_trace
    by_name = {(r.name, r.call): r for r in trace.records}
    assert by_name[("conv1", 0)].op == "Conv2d 7x7, 64, stride=2"
    assert by_name[("maxpool", 0)].op == "MaxPool2d 3x3, stride=2"
    assert by_name[("layer2.0.conv1", 0)].op == "Conv2d 3x3, 128, stride=2"
    assert by_name[("layer2.0.downsample.0", 0)].op == "Conv2d 1x1, 128, stride=2"
    assert by_name[("layer2.0.bn1", 0)].op == "BatchNorm2d 128"
    assert by_name[("fc", 0)].op == "Linear 512->1000"
    record = by_name[("layer2.0.conv1", 0)]
    assert torch_shape(record.shape) == "1×128×28×28"
    assert diagram_shape(record.shape) == "28×28×128"


def test_parameter_total_equals_numel_sum(resnet18_trace):
    model, trace = resnet18_trace
    assert sum(r.params for r in trace.records) == sum(p.numel() for p in model.parameters()) == 11_689_512


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "mobilenet_v2"])
def test_macs_match_torchvision_documented_figures(name):
    model = torchvision.models.get_model(name)
    trace = trace_shapes(model, torch.randn(1, 3, 224, 224))
    measured = sum(r.macs for r in trace.records) / 1e9
    documented = documented_macs(name)
    assert abs(measured - documented) / documented < 0.005, (measured, documented)


def test_hooks_removed_and_mode_restored_even_on_failure():
    model = torchvision.models.vgg11()
    model.train()
    trace = trace_shapes(model, torch.randn(1, 3, 16, 16), method="hooks")
    assert trace.error and trace.failed_at.startswith("features.")
    assert model.training
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    fx_trace = trace_shapes(model, torch.randn(1, 3, 16, 16))
    assert fx_trace.failed_at == trace.failed_at
    assert len(fx_trace.records) > 0 and model.training


def test_hooks_fallback_for_untraceable_model():
    class Branchy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)

        def forward(self, x):
            if x.sum() > 0:  # data-dependent control flow: fx cannot trace this
                return self.conv(x)
            return self.conv(-x)

    trace = trace_shapes(Branchy(), torch.ones(1, 3, 8, 8))
    assert trace.method == "hooks"
    assert "torch.fx" in trace.fallback_reason
    assert [r.name for r in trace.records] == ["conv"]
    assert trace.records[0].macs == 4 * 6 * 6 * 3 * 3 * 3


@pytest.mark.parametrize("name", ["vit_b_16", "swin_t"])
def test_parameters_read_by_functional_code_are_counted_once_so_the_column_sums_to_the_total(name):
    from vizcli.shapes.report import run_shapes

    report = run_shapes([], None, False, name, None, 0, "cpu", None)
    # vit's class token and position embedding, swin's qkv weights and bias tables are read with get_attr
    assert sum(r.params for r in report.runs[0].trace.records) == report.parameters


class _TwoNames(torch.nn.Module):
    """One Linear registered as ``linear`` and inside ``model`` (torchinfo's ReuseLinearExtended)."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(10, 10)
        self.model = torch.nn.Sequential(self.linear, torch.nn.ReLU(), self.linear)

    def forward(self, x):
        return self.model(x)


def test_a_module_under_two_names_ran_under_either():
    from vizcli.shapes.report import run_module_shapes

    report = run_module_shapes(_TwoNames(), torch.randn(2, 10), device="cpu")
    records = report.runs[0].trace.records
    assert report.unused_parameters == {}
    assert sum(r.params for r in records) == 110 and sum(r.macs for r in records) == 2 * 2 * 100


def test_a_tied_weight_is_counted_once():
    class Tied(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(100, 8)
            self.head = torch.nn.Linear(8, 100, bias=False)
            self.head.weight = self.embedding.weight

        def forward(self, ids):
            return self.head(self.embedding(ids))

    model = Tied()
    trace = trace_shapes(model, torch.randint(0, 100, (1, 5)))
    assert sum(r.params for r in trace.records) == sum(p.numel() for p in model.parameters()) == 800
