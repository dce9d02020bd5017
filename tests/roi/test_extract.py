"""vizcli.roi.extract: RoIExtractor, the callable class, on a batch dict of paths or bytes."""


import numpy as np

from tests.checks import CHELSEA


def test_the_extractor_takes_a_batch_dict_of_paths_or_bytes():
    from vizcli.roi import extract
    from vizcli.roi.boxes import Box
    from vizcli.roi.report import run_roi

    extractor = extract.RoIExtractor(model="resnet18", layer="layer3")
    boxes = [[140.0, 80.0, 210.0, 150.0], [290.0, 100.0, 350.0, 165.0]]
    batch = extractor({"id": ["a", "b"], "image": [str(CHELSEA), CHELSEA.read_bytes()], "boxes": [boxes, boxes[:1]]})
    assert [f.shape for f in batch["features"]] == [(2, 256, 7, 7), (1, 256, 7, 7)] and batch["id"] == ["a", "b"]
    single = run_roi([str(CHELSEA)], {str(CHELSEA): [Box(i + 1, *box) for i, box in enumerate(boxes)]})
    np.testing.assert_allclose(batch["features"][0], single.images[0].outputs["align"].numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(batch["features"][1], batch["features"][0][:1], rtol=1e-5, atol=1e-5)
