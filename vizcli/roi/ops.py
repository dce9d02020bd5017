"""``op``: which features a run computes for every box, parsed in this one place for both workers.

``align`` (RoIAlign) and ``pool`` (RoIPool) pool a backbone's feature map (``RoIExtractor``); a
detector pools with its own ``align`` (``MultiScaleRoIAlign``) and ``box-head`` (``TwoMLPHead``)
(``Detector``). ``both`` is ``align,pool``; ``none`` (a detector's boxes only) pools nothing; a comma
list combines names (``align,box-head``). Each worker then keeps the names it computes.
"""

from __future__ import annotations

from collections.abc import Sequence

from vizcli.common.errors import BadInput

POOLINGS = ("align", "pool")  # RoIExtractor: a backbone's map, pooled by torchvision.ops
DETECTOR_OPS = ("align", "box-head")  # Detector: its own pooler and box head
NAMES = ("align", "pool", "box-head", "none")
BOX_HEAD_ELSEWHERE = "box-head is a detector's box head (TwoMLPHead): run the boxes through a Detector (vizcli detect --op box-head)"


def split_ops(op: str | Sequence[str]) -> tuple[str, ...]:
    """``"both"`` → ``("align", "pool")``; ``"align,box-head"`` → ``("align", "box-head")``; ``"none"`` → ``()``.

    Names keep their order, each once; ``op`` may be a text or a sequence of names.
    """
    text = op if isinstance(op, str) else ",".join(op)
    names: list[str] = []
    for part in (piece.strip() for piece in text.split(",")):
        names.extend(POOLINGS if part == "both" else (part,))
    for name in names:
        if name not in NAMES:
            raise BadInput(f"use {', '.join(NAMES)}, both, or a comma list such as align,box-head", parameter="op", value=text)
    if "none" in names:
        if len(names) > 1:
            raise BadInput("none (boxes only) goes alone", parameter="op", value=text)
        return ()
    return tuple(dict.fromkeys(names))


def pooling_ops(op: str | Sequence[str]) -> tuple[str, ...]:
    """``op`` for ``RoIExtractor``: ``align``, ``pool`` or both, from a backbone's map."""
    ops = split_ops(op)
    text = op if isinstance(op, str) else ",".join(op)
    if "box-head" in ops:
        raise BadInput(BOX_HEAD_ELSEWHERE, parameter="op", value=text)
    if not ops:
        raise BadInput("pools at least one of align, pool (none gives a detector's boxes only)", parameter="op", value=text)
    return ops
