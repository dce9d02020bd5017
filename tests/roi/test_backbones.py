"""vizcli.roi.backbones: ResNet stages and pyramid levels, against torchvision's MultiScaleRoIAlign; what is refused."""


import numpy as np
import torch

from tests.checks import CHELSEA


def test_fpn_levels_equal_torchvision_multiscale_roi_align():
    from torchvision.ops import MultiScaleRoIAlign

    from vizcli.roi.annotations import AnnotatedImage, Annotation
    from vizcli.roi.extract import RoIExtractor

    extractor = RoIExtractor(model="resnet18", layer="fpn", output_size=7, sampling_ratio=2, aligned=False)
    boxes = [(2.0, 3.0, 30.0, 40.0), (0.0, 0.0, 250.0, 230.0), (10.0, 20.0, 150.0, 150.0), (5.0, 5.0, 400.0, 250.0)]
    image = AnnotatedImage("x", str(CHELSEA), [Annotation(box, str(i)) for i, box in enumerate(boxes)])
    prepared = extractor.prepare(image)
    (result,) = extractor.pool([prepared])
    assert len(set(result["levels"])) >= 3  # the boxes spread over the pyramid
    padded = prepared.padded
    tensor = torch.nn.functional.pad(prepared.tensor, (0, padded[1] - prepared.tensor.shape[2], 0, padded[0] - prepared.tensor.shape[1]))
    with torch.inference_mode():
        maps = extractor.backbone.module(tensor[None])
        reference = MultiScaleRoIAlign(["0", "1", "2", "3"], 7, 2)(
            {name: maps[name] for name in ["0", "1", "2", "3"]}, [torch.tensor(boxes)], [tuple(padded)]
        )
    np.testing.assert_allclose(result["align"], reference.numpy(), rtol=1e-5, atol=1e-6)


def test_other_resnets_and_what_is_refused(invoke, tmp_path):
    from vizcli.roi.backbones import load_backbone, stage_channels

    for model, layer in (("resnet50", "layer2"), ("wide_resnet50_2", "layer1"), ("resnet34", "layer4"), ("resnet18", "fpn")):
        assert load_backbone(model, layer).channels == stage_channels(model, layer), (model, layer)
    assert stage_channels("resnet50", "layer2") == 512
    refused = invoke("roi", tmp_path, "--boxes", "1,1,5,5", "--model", "vgg16", "-o", tmp_path / "x.parquet")
    assert refused.exit_code == 2 and "ResNet" in refused.stderr
    single = invoke("roi", CHELSEA, "--boxes", "1,1,50,50", "--model", "vgg16")
    assert single.exit_code == 2 and "ResNet" in single.stderr
    detector_stage = invoke("roi", CHELSEA, "--boxes", "1,1,50,50", "--model", "fasterrcnn_resnet50_fpn")
    assert detector_stage.exit_code == 2 and "--layer fpn" in detector_stage.stderr
    channel = invoke("roi", CHELSEA, "--boxes", "1,1,50,50", "--model", "resnet50", "--explain", "1", "--channel", "1024")
    assert channel.exit_code == 2 and "0..1023" in channel.stderr
    nowhere = invoke("roi", tmp_path, "--boxes", "1,1,5,5", "-o", tmp_path / "missing" / "x.parquet")
    assert nowhere.exit_code == 2 and "does not exist" in nowhere.stderr and not (tmp_path / "missing").exists()
