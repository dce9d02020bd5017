"""Detect, then pool: vizcli's Detector against torchvision's own detector, pooler and box head."""

import numpy as np
import pytest
import torch

from tests.checks import random_image
from vizcli.common.errors import BadInput
from vizcli.common.images import load_image, unit_tensor
from vizcli.common.models import load_model
from vizcli.roi.detect import Detector
from vizcli.roi.detectors import Thresholds

FAST = "fasterrcnn_mobilenet_v3_large_320_fpn"  # the quickest two-stage detector (320 px): the tests' default


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """Two images of different sizes (different transformed sizes too) and one of the first's size."""
    folder = tmp_path_factory.mktemp("detect")
    paths = []
    for name, size, seed in (("a.png", (160, 120), 1), ("b.png", (90, 140), 2), ("c.png", (160, 120), 3)):
        random_image(folder / name, size, seed)
        paths.append(str(folder / name))
    return paths


def reference_model(name, score_thresh=0.0, per_image=100):
    """torchvision's detector built independently, thresholds set through its own attributes."""
    model = load_model(name, seed=0).model.eval()
    owner = model.roi_heads if hasattr(model, "roi_heads") else model
    owner.score_thresh, owner.detections_per_img = score_thresh, per_image
    return model


def reference_pooled(model, image):
    """``box_head(box_roi_pool(features, [boxes], image_sizes))`` on torchvision's own detections,
    called step by step as GeneralizedRCNN.forward does (boxes before post-processing)."""
    with torch.inference_mode():
        listed, _ = model.transform([image])
        features = model.backbone(listed.tensors)
        proposals, _ = model.rpn(listed, features)
        (found,), _ = model.roi_heads(features, proposals, listed.image_sizes)
        pooled = model.roi_heads.box_roi_pool(features, [found["boxes"]], listed.image_sizes)
        return pooled.numpy(), model.roi_heads.box_head(pooled).numpy()


def test_detections_pooled_features_and_box_head_vectors_equal_torchvisions(pictures):
    detector = Detector(FAST, op="align,box-head", min_score=0.0, min_detections=0, max_detections=100, batch_size=3)
    out = detector({"image": pictures})
    model = reference_model(FAST)
    for number, path in enumerate(pictures):
        image = unit_tensor(load_image(path))
        with torch.inference_mode():
            (expected,) = model([image])
        assert len(expected["boxes"]) == 100  # random weights still give a full list at score 0
        np.testing.assert_array_equal(out["box"][number], expected["boxes"].numpy().astype(np.float64))
        np.testing.assert_array_equal(out["score"][number], expected["scores"].numpy())
        assert list(out["class_name"][number]) == [detector.categories[i] for i in expected["labels"].tolist()]
        align, head = reference_pooled(model, image)
        assert out["features_align"][number].shape == (100, 256, 7, 7) and out["features_box_head"][number].shape == (100, 1024)
        np.testing.assert_allclose(out["features_align"][number], align, rtol=0, atol=1e-6)
        np.testing.assert_allclose(out["features_box_head"][number], head, rtol=0, atol=1e-6)


def test_a_batch_gives_each_image_what_it_gives_alone(pictures):
    detector = Detector(FAST, op="box-head", min_score=0.0, min_detections=0, max_detections=20, batch_size=4)
    together = detector({"image": pictures})
    for number, path in enumerate(pictures):
        alone = detector({"image": [path]})
        np.testing.assert_array_equal(together["box"][number], alone["box"][0])
        np.testing.assert_array_equal(together["features_box_head"][number], alone["features_box_head"][0])


def test_default_thresholds_equal_torchvisions_own(pictures):
    """min_score = torchvision's 0.05 and max 100, no minimum: the rows are model(images) unchanged."""
    detector = Detector(FAST, op="align", min_score=0.05, min_detections=0, max_detections=100)
    model = reference_model(FAST, score_thresh=0.05, per_image=100)
    out = detector({"image": pictures[:1]})
    with torch.inference_mode():
        (expected,) = model([unit_tensor(load_image(pictures[0]))])
    np.testing.assert_array_equal(out["box"][0], expected["boxes"].numpy().astype(np.float64))


def test_min_detections_keeps_the_top_ones_under_the_score_and_max_caps(pictures):
    detector = Detector(FAST, op="align", min_score=0.99, min_detections=7, max_detections=9)
    out = detector({"image": pictures[:1]})
    everything = Detector(FAST, op="align", min_score=0.0, min_detections=0, max_detections=100)({"image": pictures[:1]})
    assert out["score"][0].max() < 0.99  # random weights: nothing reaches the score, the top 7 are kept
    np.testing.assert_array_equal(out["box"][0], everything["box"][0][:7])
    few = Thresholds(min_score=0.0, max_detections=3, min_detections=0).select(torch.tensor([0.9, 0.5, 0.4, 0.3, 0.1]),
                                                                                 torch.tensor([1, 2, 1, 2, 1]), None)
    assert few.tolist() == [0, 1, 2]


def test_classes_keep_only_those_classes_in_score_order(pictures):
    everything = Detector(FAST, op="align", min_score=0.0, min_detections=0, max_detections=100)({"image": pictures[:1]})
    names = list(everything["class_name"][0])
    chosen = names[0]
    only = Detector(FAST, op="align", min_score=0.0, min_detections=0, max_detections=5, classes=chosen)({"image": pictures[:1]})
    assert set(only["class_name"][0]) == {chosen}
    assert list(only["score"][0]) == sorted(only["score"][0], reverse=True)


def test_given_boxes_go_through_the_detectors_pooler_and_box_head(pictures):
    from torchvision.models.detection.transform import resize_boxes

    boxes = [[10.0, 12.0, 90.0, 100.0], [0.0, 0.0, 160.0, 120.0], [200.0, 200.0, 210.0, 210.0]]  # the last lies outside
    detector = Detector(FAST, detect=False, op="align,box-head", on_error="skip")  # a dataset's: the box is a problem
    out = detector({"image": pictures[:1], "boxes": [boxes]})
    assert out["kept"][0].tolist() == [0, 1] and "outside" in out["problems"][0]
    with pytest.raises(BadInput, match="lies outside the 160×120 image"):  # a single image's: it stops, as roi's
        Detector(FAST, detect=False, op="align,box-head")({"image": pictures[:1], "boxes": [boxes]})
    model = reference_model(FAST)
    with torch.inference_mode():
        listed, _ = model.transform([unit_tensor(load_image(pictures[0]))])
        features = model.backbone(listed.tensors)
        scaled = resize_boxes(torch.tensor(boxes[:2]), (120, 160), listed.image_sizes[0])
        pooled = model.roi_heads.box_roi_pool(features, [scaled], listed.image_sizes)
        head = model.roi_heads.box_head(pooled)
    np.testing.assert_allclose(out["features_box_head"][0], head.numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(out["box"][0], np.asarray(boxes[:2]), atol=1e-4)
    assert np.isnan(out["score"][0]).all()


def test_one_stage_detectors_give_boxes_only_equal_to_torchvisions(pictures):
    name = "retinanet_resnet50_fpn"
    detector = Detector(name, op="none", min_score=0.0, min_detections=0, max_detections=50)
    out = detector({"image": pictures[1:2]})
    model = reference_model(name, per_image=50)
    with torch.inference_mode():
        (expected,) = model([unit_tensor(load_image(pictures[1]))])
    np.testing.assert_array_equal(out["box"][0], expected["boxes"].numpy().astype(np.float64))
    np.testing.assert_array_equal(out["score"][0], expected["scores"].numpy())
    assert not any(name.startswith("features") for name in out)


def test_random_weights_say_the_boxes_are_meaningless():
    detector = Detector(FAST)
    assert any("meaningless" in note for note in detector.notes)
    metadata = detector.metadata()
    assert metadata["weights_sha256"] == detector.weights_sha256 and metadata["transform"]["min_size"] == [320]
    assert metadata["thresholds"] == {"min_score": 0.2, "max_detections": 36, "min_detections": 10, "classes": [], "nms": 0.5}


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"op": "pool"}, "not RoIPool"),
    ({"op": "align,nope"}, "comma list"),
    ({"detector": "retinanet_resnet50_fpn", "op": "box-head"}, "boxes only"),
    ({"detect": False, "op": "none"}, "detect=True"),
    ({"detector": "fasterrcnn_resnet50"}, "did you mean fasterrcnn_resnet50_fpn"),
    ({"classes": "persn"}, "did you mean person"),
    ({"min_score": 1.5}, "0..1"),
    ({"min_detections": 50, "max_detections": 36}, "0..max_detections"),
])
def test_bad_settings_are_refused_before_a_model_loads(kwargs, fragment):
    with pytest.raises(BadInput) as caught:
        Detector(**{"detector": FAST, **kwargs})
    assert fragment in str(caught.value.detail if hasattr(caught.value, "detail") else caught.value)


def test_default_weights_download_from_a_loopback_server_and_give_torchvisions_detections(server, pictures, tmp_path,
                                                                                          monkeypatch):
    import hashlib

    from vizcli.common.models import build_model
    from vizcli.roi.detectors import state_sha256

    folder, base = server
    torch.manual_seed(5)
    published = build_model(FAST)
    staging = folder / "staging.pth"
    torch.save(published.state_dict(), staging)
    name = f"{FAST}-{hashlib.sha256(staging.read_bytes()).hexdigest()[:8]}.pth"  # torchvision's hash check reads the name
    staging.rename(folder / name)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("VIZCLI_WEIGHTS_URL", f"{base}/{name}")
    detector = Detector(FAST, weights="DEFAULT", op="box-head", min_score=0.0, min_detections=0, max_detections=20)
    assert detector.pretrained and not detector.notes and (tmp_path / "torch" / "hub" / "checkpoints" / name).exists()
    assert detector.weights_sha256 == state_sha256(published)
    out = detector({"image": pictures[:1]})
    published.eval()
    published.roi_heads.score_thresh, published.roi_heads.detections_per_img = 0.0, 20
    with torch.inference_mode():
        (expected,) = published([unit_tensor(load_image(pictures[0]))])
    np.testing.assert_array_equal(out["box"][0], expected["boxes"].numpy().astype(np.float64))


def test_torchvisions_trained_weights_when_they_are_in_the_cache(pictures):
    """Runs only where torchvision's own file is already in the torch hub cache (nothing is downloaded)."""
    from pathlib import Path

    import torchvision

    weights = torchvision.models.get_model_weights(FAST).DEFAULT
    cached = Path(torch.hub.get_dir()) / "checkpoints" / weights.url.rsplit("/", 1)[-1]
    if not cached.exists():
        pytest.skip(f"{cached} is not in the cache (downloading is the user's choice: --weights DEFAULT)")
    detector = Detector(FAST, weights="DEFAULT", op="box-head", min_score=0.05, min_detections=0, max_detections=100)
    model = torchvision.models.get_model(FAST, weights=weights).eval()
    model.roi_heads.score_thresh, model.roi_heads.detections_per_img = 0.05, 100
    out = detector({"image": pictures[:1]})
    with torch.inference_mode():
        (expected,) = model([unit_tensor(load_image(pictures[0]))])
    np.testing.assert_array_equal(out["box"][0], expected["boxes"].numpy().astype(np.float64))
    assert list(out["class_name"][0]) == [weights.meta["categories"][i] for i in expected["labels"].tolist()]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["maskrcnn_resnet50_fpn", "keypointrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn_v2",
                                  "fcos_resnet50_fpn"])
def test_the_rest_of_the_family_equals_torchvision(pictures, name):
    """The 800-pixel detectors (seconds an image here): boxes and scores equal model(images); the
    mask and keypoint heads, which vizcli skips, change no box."""
    one_stage = name.startswith("fcos")
    detector = Detector(name, op="none" if one_stage else "box-head", min_score=0.0, min_detections=0, max_detections=30)
    out = detector({"image": pictures[1:2]})
    model = reference_model(name, per_image=30)
    with torch.inference_mode():
        (expected,) = model([unit_tensor(load_image(pictures[1]))])
    np.testing.assert_array_equal(out["box"][0], expected["boxes"].numpy().astype(np.float64))
    np.testing.assert_array_equal(out["score"][0], expected["scores"].numpy())
    if not one_stage:
        _, head = reference_pooled(model, unit_tensor(load_image(pictures[1])))
        np.testing.assert_allclose(out["features_box_head"][0], head[:30], rtol=0, atol=1e-5)


def test_yolo_boxes_in_0_to_1_are_converted_before_the_box_head(pictures):
    detector = Detector(FAST, detect=False, op="box-head")
    pixels = detector({"image": pictures[:1], "boxes": [[[16.0, 12.0, 96.0, 72.0]]]})
    yolo = detector({"image": pictures[:1], "boxes": [[[0.35, 0.35, 0.5, 0.5]]], "normalized": [[True]]})  # 160×120 image
    np.testing.assert_allclose(yolo["box"][0], pixels["box"][0])
    np.testing.assert_allclose(yolo["features_box_head"][0], pixels["features_box_head"][0], atol=1e-6)


def test_a_fine_tuned_detector_runs_with_its_own_class_count_and_names(pictures, tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("cat\ndog\nbird\nfish\n")
    torch.manual_seed(5)
    model = torchvision_detector(num_classes=5)
    torch.save(model.state_dict(), tmp_path / "five.pth")
    detector = Detector(FAST, weights=str(tmp_path / "five.pth"), class_names=str(names), op="box-head", min_score=0.0,
                        min_detections=0, max_detections=100)
    assert detector.categories == ["__background__", "cat", "dog", "bird", "fish"]
    out = detector({"image": pictures[:1]})
    model.roi_heads.score_thresh, model.roi_heads.detections_per_img = 0.0, 100  # as reference_model sets them
    with torch.inference_mode():
        (expected,) = model([unit_tensor(load_image(pictures[0]))])
    np.testing.assert_allclose(out["box"][0], expected["boxes"].numpy(), rtol=0, atol=1e-4)
    assert out["class_index"][0].tolist() == expected["labels"].tolist()
    assert list(out["class_name"][0]) == [detector.categories[i] for i in expected["labels"].tolist()]
    assert detector.metadata()["categories"] == detector.categories
    only = Detector(FAST, weights=str(tmp_path / "five.pth"), class_names=str(names), classes="dog", min_score=0.0,
                    min_detections=0, max_detections=100)({"image": pictures[:1]})
    assert set(only["class_name"][0]) <= {"dog"} and set(only["class_index"][0].tolist()) <= {2}
    with pytest.raises(BadInput, match=r"knows 4 classes \(1, 2, 3, 4\); they have no names: .*class_names=FILE"):
        Detector(FAST, weights=str(tmp_path / "five.pth"), classes="dog")


def torchvision_detector(**build):
    import torchvision

    return torchvision.models.get_model(FAST, weights=None, weights_backbone=None, **build).eval()


def test_class_indices_are_torchvisions_labels_including_the_unnamed_slots(pictures, tmp_path):
    """COCO's index 12 is one of ten "N/A" slots: a detection there is index 12 (and named "N/A (12)"), not 83."""
    import json

    from vizcli.roi.detections import detect_images, save_detections

    torch.manual_seed(6)
    model = torchvision_detector()
    with torch.no_grad():
        model.roi_heads.box_predictor.cls_score.bias[12] += 20.0  # every box is most likely "N/A" slot 12
    torch.save(model.state_dict(), tmp_path / "slot12.pth")
    detector = Detector(FAST, weights=str(tmp_path / "slot12.pth"), op="align", min_score=0.0, min_detections=0,
                        max_detections=100)
    detections = detect_images(detector, pictures[:1], None)
    model.roi_heads.score_thresh, model.roi_heads.detections_per_img = 0.0, 100  # as reference_model sets them
    with torch.inference_mode():
        (expected,) = model([unit_tensor(load_image(pictures[0]))])
    assert 12 in expected["labels"].tolist()
    assert detections.result["class_index"][0].tolist() == expected["labels"].tolist()
    assert "N/A (12)" in list(detections.result["class_name"][0])
    save_detections(detections, str(tmp_path / "det.npz"), "npz")
    arrays = np.load(tmp_path / "det.npz", allow_pickle=False)
    metadata = json.loads(str(arrays["metadata"]))
    assert arrays["labels"].tolist() == expected["labels"].tolist()
    assert [metadata["categories"][i] for i in arrays["labels"]] == list(detections.result["class_name"][0])


def test_one_stage_detectors_give_rows_with_no_level(pictures):
    from vizcli.roi.annotations import AnnotatedImage
    from vizcli.roi.rows import box_rows, image_batch, roi_schema

    detector = Detector("fcos_resnet50_fpn", op="none", min_score=0.0, min_detections=0, max_detections=5)
    batch = image_batch([AnnotatedImage(image_id=path, path=path) for path in pictures[:1]])
    table = box_rows({**batch, **detector(batch)}, roi_schema({}, scored=True))
    assert table.num_rows == 5 and set(table.column("level").to_pylist()) == {""}


def test_single_images_stop_on_a_box_partly_outside_with_strict_and_on_an_image_too_thin_to_resize(pictures, tmp_path):
    from PIL import Image

    strict = Detector(FAST, detect=False, op="box-head", strict=True)
    with pytest.raises(BadInput, match="extends outside"):
        strict({"image": pictures[:1], "boxes": [[[-10.0, 10.0, 100.0, 100.0]]]})
    Image.new("RGB", (3000, 2)).save(tmp_path / "thin.png")
    with pytest.raises(BadInput, match="3000×2 pixels"):
        Detector(FAST)({"image": [str(tmp_path / "thin.png")]})
    skipping = Detector(FAST, on_error="skip")({"image": [str(tmp_path / "thin.png"), pictures[0]]})
    assert "3000×2" in skipping["problems"][0] and len(skipping["box"][1]) == 10
