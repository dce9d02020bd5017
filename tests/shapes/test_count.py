"""Operator-level MAC counting against torchvision's documented figures, one model per family."""

import pytest
import torch
import torchvision

from vizcli.common.models import build_model, documented_crop_size
from vizcli.shapes.trace import trace_shapes

FAMILIES = [
    "resnet18", "vgg11", "mobilenet_v3_small", "efficientnet_b0", "efficientnet_v2_s", "regnet_x_400mf",
    "convnext_tiny", "densenet121", "googlenet", "inception_v3", "shufflenet_v2_x0_5", "squeezenet1_0",
    "mnasnet0_5", "vit_b_16", "swin_t", "swin_v2_t", "maxvit_t",
]


def _documented(name):
    meta = torchvision.models.get_model_weights(name).DEFAULT.meta
    return float(meta["_ops"]), int(meta["num_params"])


@pytest.mark.parametrize("name", FAMILIES)
def test_macs_and_parameters_match_torchvision_for_every_family(name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    crop = documented_crop_size(name)
    trace = trace_shapes(model, torch.randn(1, 3, crop, crop))
    assert trace.error is None, trace.error
    documented_gmacs, documented_params = _documented(name)
    macs = sum(record.macs for record in trace.records)
    assert macs == sum(trace.operator_macs.values())  # every counted operator landed in a row
    # within 1%, or within the rounding of the 3 decimals torchvision prints (shufflenet_v2_x0_5: 0.04 G)
    tolerance = max(0.01 * documented_gmacs, 0.0005)
    assert abs(macs / 1e9 - documented_gmacs) <= tolerance, (name, macs / 1e9, documented_gmacs)
    assert sum(p.numel() for p in model.parameters()) == documented_params


def test_attention_is_counted_by_its_operators():
    model = build_model("vit_b_16").eval()
    trace = trace_shapes(model, torch.randn(1, 3, 224, 224))
    assert round(sum(trace.operator_macs.values()) / 1e9, 3) == 17.564
    assert set(trace.operator_macs) == {"addmm", "_native_multi_head_attention", "convolution"}
    assert {"native_layer_norm", "gelu", "add"} <= set(trace.operator_calls)


def test_macs_of_scaled_dot_product_attention_are_its_two_matmuls():
    from vizcli.shapes.count import OperatorCounter

    query, key, value = torch.randn(2, 4, 10, 8), torch.randn(2, 4, 12, 8), torch.randn(2, 4, 12, 6)
    with torch.no_grad(), OperatorCounter() as counter:
        torch.nn.functional.scaled_dot_product_attention(query, key, value)
    assert sum(counter.macs.values()) == 2 * 4 * 10 * 12 * (8 + 6)


def test_parameters_that_never_run_are_named(invoke):
    result = invoke("shapes", "--model", "inception_v3", "--depth", "1", "--format", "json")
    assert result.exit_code == 0, result.stderr
    import json

    totals = json.loads(result.stdout)["tables"][0]["totals"]
    assert totals["parameters"] == 27_161_264 and totals["unused_parameters"] == {"AuxLogits": 3_326_696}
    assert totals["executed_parameters"] == 27_161_264 - 3_326_696
    table = invoke("shapes", "--model", "inception_v3", "--depth", "1")
    assert "27,161,264 (trainable 27,161,264; 3,326,696 in AuxLogits, which did not run in eval)" in table.stdout
