"""Slow, obviously-correct scalar versions of RoIPool's rounding: the reference the vectorised code is checked against."""

import math


def round_half_away(value: float) -> int:
    """C's ``round``: halves go away from zero (torchvision's RoIPool uses it)."""
    return int(math.floor(abs(value) + 0.5)) * (1 if value >= 0 else -1)


def pool_rounded_box(box, spatial_scale: float) -> tuple:
    """RoIPool's first rounding: the box in whole feature cells, ends inclusive."""
    return tuple(round_half_away(value * spatial_scale) for value in box)


def pool_quantisation_error(box, spatial_scale: float) -> tuple:
    """Signed shift (image pixels) of each edge of RoIPool's rounded box from the exact box.

    The rounded box covers cells ``[x1r, x2r]`` inclusive, i.e. pixels ``[x1r / s, (x2r + 1) / s)``.
    """
    x1r, y1r, x2r, y2r = pool_rounded_box(box, spatial_scale)
    x1, y1, x2, y2 = box
    return (x1r / spatial_scale - x1, y1r / spatial_scale - y1, (x2r + 1) / spatial_scale - x2, (y2r + 1) / spatial_scale - y2)
