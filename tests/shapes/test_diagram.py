"""The notes' diagram as data and the check against a measured run."""

import torch
import torchvision

from vizcli.shapes.diagram import NOTES_DIAGRAM, check_diagram
from vizcli.shapes.trace import trace_shapes


def test_diagram_encodes_every_node_of_the_notes():
    ids = [node.id for node in NOTES_DIAGRAM]
    assert len(ids) == len(set(ids)) == 5 + 4 * 8 + 4
    for stage in range(1, 5):
        for part in ("conv1", "bn1", "relu", "conv2", "bn2", "add", "skip", "relu2"):
            assert f"layer{stage}_0_{part}" in ids
    assert {"conv1", "bn1", "relu", "pool1", "pool2", "flatten", "fc"} <= set(ids)


def test_check_holds_at_224_and_lists_simplifications():
    model = torchvision.models.resnet18()
    check = check_diagram(trace_shapes(model, torch.randn(1, 3, 224, 224)), model)
    assert check.all_hold
    stated = [v for v in check.verdicts if v.holds is not None]
    assert len(stated) == 36 and all(v.holds for v in stated)
    text = " ".join(check.simplifications)
    assert "runs 2" in text and "AdaptiveAvgPool2d" in text and "logits" in text


def test_check_reports_differences_at_320_without_crashing():
    model = torchvision.models.resnet18()
    check = check_diagram(trace_shapes(model, torch.randn(1, 3, 320, 320)), model)
    assert not check.all_hold
    differing = {v.node.id: v.measured for v in check.differing}
    assert differing["conv1"] == "160×160×64"
    assert differing["layer4_0_relu2"] == "10×10×512"
    assert "pool2" not in differing and "fc" not in differing  # adaptive pooling keeps these
