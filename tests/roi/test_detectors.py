"""vizcli.roi.detectors: the weights digest and --op parsing."""

from vizcli.common.models import load_model
from vizcli.roi.detectors import parse_ops, state_sha256

FAST = "fasterrcnn_mobilenet_v3_large_320_fpn"


def test_the_weights_digest_names_the_weights():
    first, again = load_model(FAST, seed=0).model, load_model(FAST, seed=0).model
    other = load_model(FAST, seed=1).model
    assert state_sha256(first) == state_sha256(again) != state_sha256(other)


def test_ops_parse_as_lists():
    assert parse_ops("align,box-head", True, FAST) == ("align", "box-head")
    assert parse_ops("both", False, "resnet18") == ("align", "pool")
    assert parse_ops("none", True, FAST) == ()
