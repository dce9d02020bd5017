"""RoIAlign / RoIPool against a slow, obviously-correct float64 reference written here."""

import math

import pytest
import torch

from tests.checks import CHELSEA
from vizcli.roi.explain import explain_align, explain_pool, notes_examples
from vizcli.roi.pooling import PoolSpec, roi_features


def _bilinear(plane, y, x):
    height, width = len(plane), len(plane[0])
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return 0.0
    y, x = max(y, 0.0), max(x, 0.0)
    y0, x0 = int(math.floor(y)), int(math.floor(x))
    if y0 >= height - 1:
        y0 = y1 = height - 1
        y = float(y0)
    else:
        y1 = y0 + 1
    if x0 >= width - 1:
        x0 = x1 = width - 1
        x = float(x0)
    else:
        x1 = x0 + 1
    ly, lx = y - y0, x - x0
    return ((1 - ly) * (1 - lx) * plane[y0][x0] + (1 - ly) * lx * plane[y0][x1]
            + ly * (1 - lx) * plane[y1][x0] + ly * lx * plane[y1][x1])


def reference_align(features, box, out_h, out_w, scale, ratio, aligned):
    """RoIAlign as published (Mask R-CNN) with torchvision's border rules, in plain loops."""
    channels = len(features)
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (v * scale - offset for v in box)
    roi_w, roi_h = x2 - x1, y2 - y1
    if not aligned:
        roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
    bin_h, bin_w = roi_h / out_h, roi_w / out_w
    grid_h = ratio if ratio > 0 else math.ceil(roi_h / out_h)
    grid_w = ratio if ratio > 0 else math.ceil(roi_w / out_w)
    out = [[[0.0] * out_w for _ in range(out_h)] for _ in range(channels)]
    for c in range(channels):
        for ph in range(out_h):
            for pw in range(out_w):
                total = 0.0
                for iy in range(grid_h):
                    y = y1 + ph * bin_h + (iy + 0.5) * bin_h / grid_h
                    for ix in range(grid_w):
                        x = x1 + pw * bin_w + (ix + 0.5) * bin_w / grid_w
                        total += _bilinear(features[c], y, x)
                out[c][ph][pw] = total / max(grid_h * grid_w, 1)
    return out


def _c_round(v):
    return math.floor(v + 0.5) if v >= 0 else -math.floor(-v + 0.5)


def reference_pool(features, box, out_h, out_w, scale):
    """RoIPool (Fast R-CNN): round the box, floor/ceil the bins, max; empty bins give 0."""
    channels, height, width = len(features), len(features[0]), len(features[0][0])
    x1, y1, x2, y2 = (_c_round(v * scale) for v in box)
    roi_w, roi_h = max(x2 - x1 + 1, 1), max(y2 - y1 + 1, 1)
    bin_h, bin_w = roi_h / out_h, roi_w / out_w
    out = [[[0.0] * out_w for _ in range(out_h)] for _ in range(channels)]
    for c in range(channels):
        for ph in range(out_h):
            for pw in range(out_w):
                h0 = min(max(math.floor(ph * bin_h) + y1, 0), height)
                h1 = min(max(math.ceil((ph + 1) * bin_h) + y1, 0), height)
                w0 = min(max(math.floor(pw * bin_w) + x1, 0), width)
                w1 = min(max(math.ceil((pw + 1) * bin_w) + x1, 0), width)
                values = [features[c][h][w] for h in range(h0, h1) for w in range(w0, w1)]
                out[c][ph][pw] = max(values) if values else 0.0
    return out


def _random_boxes(generator, count, width, height):
    boxes = []
    for _ in range(count):
        x1 = float(torch.rand(1, generator=generator)) * (width - 2)
        y1 = float(torch.rand(1, generator=generator)) * (height - 2)
        x2 = x1 + 0.5 + float(torch.rand(1, generator=generator)) * (width - x1)
        y2 = y1 + 0.5 + float(torch.rand(1, generator=generator)) * (height - y1)
        boxes.append((x1, y1, x2, y2))
    return boxes


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("ratio", [1, 2, 0])
def test_align_matches_reference(aligned, ratio):
    generator = torch.Generator().manual_seed(7)
    features = torch.randn(1, 3, 9, 11, generator=generator)
    boxes = _random_boxes(generator, 6, 11 * 16, 9 * 16)
    output = roi_features(features, torch.tensor(boxes, dtype=torch.float64), "align", PoolSpec((4, 3), 1 / 16, ratio, aligned))
    plain = features[0].double().tolist()
    for index, box in enumerate(boxes):
        expected = torch.tensor(reference_align(plain, box, 4, 3, 1 / 16, ratio, aligned), dtype=torch.float64)
        assert torch.allclose(output[index].double(), expected, atol=1e-5), (box, aligned, ratio)


def test_pool_matches_reference():
    generator = torch.Generator().manual_seed(3)
    features = torch.randn(1, 3, 9, 11, generator=generator)
    boxes = _random_boxes(generator, 8, 11 * 16, 9 * 16) + [(0.0, 0.0, 10.0, 10.0), (100.0, 100.0, 176.0, 144.0)]
    output = roi_features(features, torch.tensor(boxes, dtype=torch.float64), "pool", PoolSpec((5, 4), 1 / 16))
    plain = features[0].double().tolist()
    for index, box in enumerate(boxes):
        expected = torch.tensor(reference_pool(plain, box, 5, 4, 1 / 16), dtype=torch.float64)
        assert torch.allclose(output[index].double(), expected, atol=1e-6), box


def test_chunking_does_not_change_results():
    generator = torch.Generator().manual_seed(5)
    features = torch.randn(1, 4, 10, 10, generator=generator)
    boxes = torch.tensor(_random_boxes(generator, 50, 160, 160), dtype=torch.float64)
    whole = roi_features(features, boxes, "align", PoolSpec((7, 7), 1 / 16), chunk=1000)
    chunked = roi_features(features, boxes, "align", PoolSpec((7, 7), 1 / 16), chunk=7)
    assert torch.equal(whole, chunked)


def test_identity_case_returns_the_map():
    features = torch.randn(1, 2, 6, 8)
    box = torch.tensor([[0.0, 0.0, 8.0, 6.0]], dtype=torch.float64)  # the whole map at scale 1
    output = roi_features(features, box, "align", PoolSpec((6, 8), 1.0, sampling_ratio=1, aligned=True))
    assert torch.allclose(output[0], features[0], atol=1e-6)


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("ratio", [2, 0])
def test_explain_equals_op_output(aligned, ratio):
    generator = torch.Generator().manual_seed(11)
    features = torch.randn(1, 2, 12, 12, generator=generator)
    boxes = _random_boxes(generator, 4, 192, 192)
    align = roi_features(features, torch.tensor(boxes, dtype=torch.float64), "align", PoolSpec((7, 7), 1 / 16, ratio, aligned))
    pool = roi_features(features, torch.tensor(boxes, dtype=torch.float64), "pool", PoolSpec((7, 7), 1 / 16))
    for index, box in enumerate(boxes):
        for row, col in ((0, 0), (3, 3), (6, 2)):
            for channel in range(2):
                plane = features[0, channel].double()
                by_hand = explain_align(plane, box, PoolSpec((7, 7), 1 / 16, ratio, aligned), row, col).by_hand
                assert abs(by_hand - float(align[index, channel, row, col])) <= 1e-5
                by_hand = explain_pool(plane, box, PoolSpec((7, 7), 1 / 16), row, col).by_hand
                assert abs(by_hand - float(pool[index, channel, row, col])) <= 1e-5


def test_notes_worked_examples():
    examples = notes_examples()
    assert torch.allclose(examples.pool_output, examples.pool_by_hand, atol=1e-5)
    assert all((b.rows[1] - b.rows[0], b.cols[1] - b.cols[0]) == (2, 2) for b in examples.pool_bins)
    weights = {(col, row): round(w, 10) for row, col, _, w in examples.align.samples[0].neighbours}
    assert weights == {(3, 5): 0.32, (4, 5): 0.48, (3, 6): 0.08, (4, 6): 0.12}
    assert abs(examples.align.by_hand - examples.align_output) <= 1e-5


def test_a_single_image_on_a_pyramid_equals_multiscale_roi_align_and_the_dataset_path():
    """--model/--layer fpn for one image: the backbone and pooling of dataset runs, checked
    against torchvision's MultiScaleRoIAlign on the same maps."""
    import numpy as np
    from torchvision.ops import MultiScaleRoIAlign

    from vizcli.roi.boxes import Box
    from vizcli.roi.extract import RoIExtractor
    from vizcli.roi.report import run_roi

    coords = [(2.0, 3.0, 30.0, 40.0), (0.0, 0.0, 250.0, 230.0), (10.0, 20.0, 150.0, 150.0), (5.0, 5.0, 400.0, 250.0)]
    spec = PoolSpec.for_layer("fpn", (7, 7), sampling_ratio=2, aligned=False)
    report = run_roi([str(CHELSEA)], {str(CHELSEA): [Box(i + 1, *box) for i, box in enumerate(coords)]}, "fpn",
                     ("align", "pool"), spec, model="resnet18")
    image = report.images[0]
    assert [box.level for box in image.boxes] == ["0", "2", "1", "2"]  # FPN eq. 1 at 224 px (P5 needs 448 px)
    assert [box.spatial_scale for box in image.boxes] == [1 / 4, 1 / 16, 1 / 8, 1 / 16]
    assert image.boxes[1].cells == (0.0, 0.0, 250 / 16, 230 / 16)
    extractor = RoIExtractor(model="resnet18", layer="fpn", op="both", output_size=7, sampling_ratio=2, aligned=False)
    maps = {name: fmap.tensor for name, fmap in image.feature_maps.items()}  # the backbone's pyramid on the padded image
    padded = next(iter(image.feature_maps.values())).padded
    with torch.inference_mode():
        reference = MultiScaleRoIAlign(["0", "1", "2", "3"], 7, 2)(maps, [torch.tensor(coords)], [(padded[1], padded[0])])
    np.testing.assert_allclose(image.outputs["align"].numpy(), reference.numpy(), rtol=1e-5, atol=1e-5)
    (pooled,) = extractor.pool([extractor.prepare(_annotated(CHELSEA, coords))])
    np.testing.assert_allclose(image.outputs["pool"].numpy(), pooled["pool"], rtol=1e-5, atol=1e-5)
    meta = report.metadata()
    assert meta["model"] == "resnet18" and meta["spatial_scale"] is None and meta["boxes"][3]["level"] == "2"
    assert sorted(meta["images"][0]["levels"]) == ["0", "1", "2", "3"] and "seeded random" in meta["notes"][0]




def _annotated(path, coords):
    from vizcli.roi.annotations import AnnotatedImage, Annotation

    return AnnotatedImage("x", str(path), [Annotation(box, str(i)) for i, box in enumerate(coords)])
