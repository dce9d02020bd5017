"""``--weights DEFAULT`` downloads for real, from an HTTP server on 127.0.0.1 that the test starts."""

import hashlib
import os

import pytest
import torch
import torchvision

from tests.conftest import EXAMPLES


def _publish(folder, state_dict, corrupt=False):
    """Save ``state_dict`` under a torchvision-style name: resnet18-<first 8 hex of its sha256>.pth."""
    staging = folder / "staging.pth"
    torch.save(state_dict, staging)
    digest = hashlib.sha256(staging.read_bytes()).hexdigest()[:8]
    name = f"resnet18-{'00000000' if corrupt else digest}.pth"
    staging.rename(folder / name)
    return name


def test_default_weights_download_once_into_the_hub_cache_and_are_used(invoke, server, tmp_path, monkeypatch):
    folder, base = server
    torch.manual_seed(1)
    name = _publish(folder, torchvision.models.resnet18().state_dict())
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("VIZCLI_WEIGHTS_URL", f"{base}/{name}")
    first = invoke("shapes", EXAMPLES / "chelsea.png", "--weights", "DEFAULT", "--depth", "1")
    assert first.exit_code == 0, first.stderr
    assert "top-5 for" in first.stdout and "IMAGENET1K_V1 (torchvision" in first.stdout
    assert "Downloading" not in first.stdout and "Downloading" in first.stderr  # stdout carries only the result
    cached = tmp_path / "torch" / "hub" / "checkpoints" / name
    assert cached.exists()
    (folder / name).unlink()  # the server no longer has it: the second run must use the cache
    again = invoke("shapes", "--weights", "IMAGENET1K_V1", "--depth", "1")
    assert again.exit_code == 0, again.stderr


@pytest.mark.parametrize("case", ["missing", "bad hash"])
def test_a_failed_download_is_one_line_and_leaves_nothing_in_the_cache(invoke, server, tmp_path, monkeypatch, case):
    folder, base = server
    name = "resnet18-deadbeef.pth" if case == "missing" else _publish(folder, {"w": torch.zeros(3)}, corrupt=True)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("VIZCLI_WEIGHTS_URL", f"{base}/{name}")
    result = invoke("shapes", "--weights", "DEFAULT", "--depth", "1")
    assert result.exit_code == 1, result.stderr
    lines = result.stderr.splitlines()  # torch's "Downloading: …" progress line may come first, on stderr
    assert lines[-1].startswith("Error: --weights ") and result.stderr.count("Error:") == 1
    assert all(line.startswith("Downloading") for line in lines[:-1]), lines
    assert f"{base}/{name}" in lines[-1]
    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    assert not checkpoints.exists() or os.listdir(checkpoints) == []


def test_an_unknown_weights_name_is_bad_input(invoke, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("shapes", "--weights", "IMAGENET9K_V9")
    assert result.exit_code == 2 and "--weights IMAGENET9K_V9: no such file" in result.stderr


FAST_DETECTOR = "fasterrcnn_mobilenet_v3_large_320_fpn"


def _saved_detector(path, seed, **build):
    """A torchvision detector as users build and save one: ``weights=None`` (BatchNorm2d, with its
    ``num_batches_tracked`` counters), seeded, its state_dict saved as a plain file."""
    torch.manual_seed(seed)
    model = torchvision.models.get_model(FAST_DETECTOR, weights=None, weights_backbone=None, **build).eval()
    torch.save(model.state_dict(), path)
    return model


def test_a_detector_saved_from_a_weights_none_build_loads_and_computes_the_same(tmp_path):
    from vizcli.common.models import load_model

    theirs = _saved_detector(tmp_path / "det.pth", seed=3)
    assert any(key.endswith("num_batches_tracked") for key in torch.load(tmp_path / "det.pth", weights_only=True))
    ours = load_model(FAST_DETECTOR, weights=str(tmp_path / "det.pth")).model
    image = torch.rand(3, 120, 160, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        (expected,), (got,) = theirs([image]), ours([image])
    torch.testing.assert_close(got["boxes"], expected["boxes"], rtol=0, atol=1e-4)
    torch.testing.assert_close(got["scores"], expected["scores"], rtol=0, atol=1e-5)


def test_a_fine_tuned_detector_is_built_with_its_own_class_count(tmp_path):
    from vizcli.common.models import load_model

    _saved_detector(tmp_path / "five.pth", seed=4, num_classes=5)
    loaded = load_model(FAST_DETECTOR, weights=str(tmp_path / "five.pth"))
    assert loaded.meta["num_classes"] == 5 and loaded.categories is None  # not COCO's names
    assert loaded.model.roi_heads.box_predictor.cls_score.out_features == 5
    assert load_model(FAST_DETECTOR).model.roi_heads.box_predictor.cls_score.out_features == 91


def test_a_python_file_without_its_factory_is_told_the_form(invoke):
    message = invoke("shapes", "--model", "my_net.py").stderr
    assert message.startswith("Error: --model my_net.py:") and "FILE.py:FACTORY" in message and "my_net.py:build" in message
