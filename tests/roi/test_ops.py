"""vizcli.roi.ops: --op read in one place, for RoIExtractor and Detector alike."""

import pytest

from vizcli.common.errors import BadInput
from vizcli.roi.ops import pooling_ops, split_ops


@pytest.mark.parametrize(("text", "ops"), [
    ("align", ("align",)), ("both", ("align", "pool")), ("align,pool", ("align", "pool")), ("pool, align", ("pool", "align")),
    ("align,box-head", ("align", "box-head")), ("both,align", ("align", "pool")), ("none", ()), (("align", "pool"), ("align", "pool")),
])
def test_names_lists_and_both_read_the_same_everywhere(text, ops):
    assert split_ops(text) == ops


@pytest.mark.parametrize(("text", "fragment"), [("mean", "use align, pool, box-head, none"), ("none,align", "goes alone"),
                                                ("", "use align")])
def test_unknown_names_are_refused_naming_op(text, fragment):
    with pytest.raises(BadInput, match=fragment) as raised:
        split_ops(text)
    assert str(raised.value).startswith(f"op={text!r}")


def test_the_extractor_pools_align_and_pool_only():
    assert pooling_ops("both") == pooling_ops("align,pool") == ("align", "pool")
    with pytest.raises(BadInput, match="vizcli detect --op box-head"):
        pooling_ops("align,box-head")
    with pytest.raises(BadInput, match="at least one of align, pool"):
        pooling_ops("none")
