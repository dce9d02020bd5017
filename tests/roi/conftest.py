"""Fixtures of the roi tests: a small COCO dataset."""

import json

import pytest

from tests.checks import random_image


@pytest.fixture
def coco(tmp_path):
    """A COCO dataset: three images (one in a subfolder), five annotations (one without area)."""
    images = tmp_path / "images"
    random_image(images / "a.png", (96, 64), 1)
    random_image(images / "sub" / "b.png", (64, 96), 2)
    random_image(images / "c.png", (96, 64), 3)
    data = {
        "images": [{"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": "sub/b.png"}, {"id": 3, "file_name": "c.png"}],
        "annotations": [
            {"id": 10, "image_id": 1, "bbox": [10, 8, 40, 30], "category_id": 1, "iscrowd": 0},
            {"id": 11, "image_id": 1, "bbox": [50, 20, 30, 30], "category_id": 2, "iscrowd": 1},
            {"id": 12, "image_id": 2, "bbox": [4, 4, 50, 80], "category_id": 1},
            {"id": 13, "image_id": 3, "bbox": [0, 0, 0, 5], "category_id": 1},
            {"id": 14, "image_id": 3, "bbox": [5, 5, 60, 40], "category_id": 2},
        ],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "ear"}],
    }
    annotations = tmp_path / "instances.json"
    annotations.write_text(json.dumps(data))
    return images, annotations
