"""Every torchvision model ``shapes`` accepts, against torchvision's documented figures.

Classification models are counted on the meta device (shapes only, no arithmetic), which is
checked here to give the very counts of a real run; the slow sweep then covers all of them in
under a minute. Segmentation and video models run on meta too; detectors run for real, because
how many proposals survive decides how often their heads run."""

import pytest
import torch
import torchvision

from vizcli.common.models import build_model, documented_input, models_for_task
from vizcli.shapes.trace import trace_shapes

# Detectors whose documented MACs a random-weight run reproduces: their cost does not depend on
# how many proposals survive (one-stage heads over fixed anchors), or they keep all 1,000
# proposals either way. The others' heads run once per surviving proposal or detection.
DETECTORS_MATCHING = {
    "fasterrcnn_resnet50_fpn_v2", "maskrcnn_resnet50_fpn_v2", "retinanet_resnet50_fpn",
    "retinanet_resnet50_fpn_v2", "fcos_resnet50_fpn", "ssd300_vgg16", "ssdlite320_mobilenet_v3_large",
}


def _meta_model(name):
    try:
        with torch.device("meta"):
            return build_model(name).eval()
    except NotImplementedError:  # RegNet computes its widths with tensors while building
        return build_model(name).eval().to("meta")


def _documented(name):
    meta = torchvision.models.get_model_weights(name).DEFAULT.meta
    return float(meta["_ops"]), int(meta["num_params"])


def _check_against_documented(name, model, trace):
    assert trace.error is None, trace.error
    documented_gmacs, documented_params = _documented(name)
    macs = sum(record.macs for record in trace.records)
    assert macs == sum(trace.operator_macs.values())  # every counted operator landed in a row
    tolerance = max(0.01 * documented_gmacs, 0.0005)  # 1%, or the rounding of the 3 printed decimals
    assert abs(macs / 1e9 - documented_gmacs) <= tolerance, (name, macs / 1e9, documented_gmacs)
    assert sum(p.numel() for p in model.parameters()) == documented_params


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small", "swin_t", "inception_v3"])
def test_meta_device_counts_equal_a_real_run(name):
    torch.manual_seed(0)
    real_model = build_model(name).eval()
    size = documented_input(name)
    real = trace_shapes(real_model, torch.randn(1, *size))
    meta = trace_shapes(_meta_model(name), torch.empty(1, *size, device="meta"))
    assert [(r.name, r.shape, r.params, r.macs) for r in meta.records] == [
        (r.name, r.shape, r.params, r.macs) for r in real.records
    ]
    assert meta.operator_macs == real.operator_macs


@pytest.mark.slow
@pytest.mark.parametrize("name", models_for_task("classification"))
def test_every_classification_model_matches_torchvision(name):
    model = _meta_model(name)
    trace = trace_shapes(model, torch.empty(1, *documented_input(name), device="meta"))
    _check_against_documented(name, model, trace)


@pytest.mark.slow
@pytest.mark.parametrize("name", models_for_task("segmentation") + models_for_task("video"))
def test_every_segmentation_and_video_model_matches_torchvision(name):
    model = _meta_model(name)
    trace = trace_shapes(model, torch.empty(1, *documented_input(name), device="meta"))
    _check_against_documented(name, model, trace)


@pytest.mark.slow
@pytest.mark.parametrize("name", models_for_task("detection"))
def test_every_detection_model_runs_and_its_parameters_match(name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    trace = trace_shapes(model, torch.rand(1, *documented_input(name)))
    assert trace.error is None, trace.error
    assert trace.method == "hooks"  # detectors' data-dependent control flow defeats torch.fx
    assert trace.records and all(record.shape for record in trace.records)
    if name in DETECTORS_MATCHING:
        _check_against_documented(name, model, trace)
    else:
        assert sum(p.numel() for p in model.parameters()) == _documented(name)[1]


def test_a_detector_prints_its_table_and_totals(invoke):
    result = invoke("shapes", "--model", "ssdlite320_mobilenet_v3_large", "--depth", "1")
    assert result.exit_code == 0, result.stderr
    assert "3,440,060" in result.stdout and "torchvision documents 0.583 G" in result.stdout
    assert "MACs: 583." in result.stdout and "traced with forward hooks" in result.stdout


def test_a_video_model_takes_a_clip_size(invoke):
    result = invoke("shapes", "--model", "r3d_18", "--input-size", "3x4x56x56", "--depth", "1", "--format", "json")
    assert result.exit_code == 0, result.stderr
    import json

    table = json.loads(result.stdout)["tables"][0]
    assert table["input_shape"] == [1, 3, 4, 56, 56]
    assert table["rows"][-1]["shape"] == [1, 400]


def test_video_models_refuse_images_and_flat_sizes(invoke):
    images = invoke("shapes", "--model", "r3d_18", "examples/chelsea.png")
    assert images.exit_code == 2 and "--input-size CxTxHxW" in images.stderr
    flat = invoke("shapes", "--model", "r3d_18", "--input-size", "1x2x3x4x5")
    assert flat.exit_code == 2 and "CxTxHxW" in flat.stderr


def test_detectors_refuse_train(invoke):
    result = invoke("shapes", "--model", "ssdlite320_mobilenet_v3_large", "--train")
    assert result.exit_code == 2 and "target boxes" in result.stderr
