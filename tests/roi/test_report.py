"""vizcli.roi.report: a single image is a dataset of one, through the same RoIExtractor."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.checks import random_image
from vizcli.common.errors import BadInput
from vizcli.roi.boxes import Box


@pytest.fixture(scope="module")
def extractor():
    from vizcli.roi.extract import RoIExtractor

    return RoIExtractor(model="resnet18", layer="layer2", op="both")


def test_one_image_gives_the_rows_a_dataset_of_one_gives_bit_for_bit(invoke, tmp_path):
    image = tmp_path / "a.png"
    random_image(image, (96, 64), 1)
    boxes = ["--boxes", "4,4,40,40", "--boxes", "10,12,90,60", "--op", "align,pool", "--quiet"]
    assert invoke("roi", image, *boxes, "-o", tmp_path / "one.npz").exit_code == 0
    result = invoke("roi", image, *boxes, "-o", tmp_path / "one.parquet")  # rows asked for: a dataset of one image
    assert result.exit_code == 0, result.stderr
    table = pq.read_table(tmp_path / "one.parquet")
    with np.load(tmp_path / "one.npz") as saved:
        arrays, meta = {name: saved[name] for name in ("roi_align", "roi_pool")}, json.loads(str(saved["metadata"]))
    for op in ("align", "pool"):
        rows = np.array(table.column(f"features_{op}").to_pylist(), dtype=np.float32)
        np.testing.assert_array_equal(rows, arrays[f"roi_{op}"].reshape(2, -1))
    assert table.column("box").to_pylist() == [box["box"] for box in meta["boxes"]]
    assert table.column("feature_box").to_pylist() == [box["feature_box"] for box in meta["boxes"]]
    assert table.column("level").to_pylist() == [box["level"] for box in meta["boxes"]] == ["layer3", "layer3"]


def test_the_report_reads_the_extractors_result(extractor, tmp_path):
    from vizcli.roi.report import report_images
    from vizcli.roi.rows import image_batch

    image = tmp_path / "b.png"
    random_image(image, (80, 70), 2)
    warnings = []
    report = report_images(extractor, [str(image)], {str(image): [Box(1, 2, 3, 50, 40, "cat"), Box(2, -8, 10, 60, 90)]},
                           warnings.append)
    assert warnings == [f"box 2 (-8, 10, 60, 90): partly outside {image} (80×70); clipped to (0, 10, 60, 70)"]
    (shown,) = report.images
    assert [box.box for box in shown.boxes] == [Box(1, 2, 3, 50, 40, "cat"), Box(2, 0, 10, 60, 70)]
    assert shown.boxes[1].cells == (0.0, 10 / 8, 60 / 8, 70 / 8) and report.spec.spatial_scale == 1 / 8
    assert shown.steps[-1] == "normalised, zero-padded to a multiple of 32" and shown.picture.size == (80, 70)
    assert list(shown.feature_maps["layer2"].tensor.shape) == [1, 128, 12, 12]  # 96×96 padded, stride 8
    from vizcli.roi.annotations import AnnotatedImage, Annotation

    extractor.details, extractor.on_error = False, "skip"
    batch = extractor(image_batch([AnnotatedImage("b", str(image), [Annotation((2, 3, 50, 40), "1"), Annotation((-8, 10, 60, 90), "2")])]))
    for op in ("align", "pool"):
        np.testing.assert_array_equal(batch[f"features_{op}"][0], shown.outputs[op].numpy())


@pytest.mark.parametrize(("boxes", "strict", "fragment"), [
    ([Box(1, 200, 200, 300, 300)], False, "box 1 [200.0, 200.0, 300.0, 300.0] lies outside the 80×70 image"),
    ([Box(1, 2, 3, 50, 40), Box(2, -8, 10, 60, 90)], True, "box 2 [-8.0, 10.0, 60.0, 90.0] extends outside"),
    ([], False, "no boxes given"),
])
def test_a_box_that_cannot_be_pooled_stops_a_single_image_run(extractor, tmp_path, boxes, strict, fragment):
    from vizcli.roi.report import report_images

    image = tmp_path / "c.png"
    random_image(image, (80, 70), 3)
    extractor.strict = strict
    try:
        with pytest.raises(BadInput, match=fragment.replace("[", r"\[").replace("]", r"\]")):
            report_images(extractor, [str(image)], {str(image): boxes})
    finally:
        extractor.strict = False
