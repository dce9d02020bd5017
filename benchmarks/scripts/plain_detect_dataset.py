"""Peer: the usual detect-then-pool script over a dataset (the bottom-up-attention recipe with a
torchvision detector) — for each image: load, the detector's transform, backbone, RPN and box
predictor as GeneralizedRCNN.forward runs them; keep the top boxes (score ≥ 0.2, at least 10, at
most 36); the box head's vectors for those boxes; save boxes and vectors as .npy at the end."""

import sys
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision.models.detection.transform import resize_boxes
from torchvision.ops.misc import FrozenBatchNorm2d

folder, output, name = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
MIN_SCORE, MIN_BOXES, MAX_BOXES = 0.2, 10, 36


def freeze(module):  # torchvision builds these backbones with FrozenBatchNorm2d for their weights
    for child_name, child in module.named_children():
        if isinstance(child, torch.nn.BatchNorm2d):
            setattr(module, child_name, FrozenBatchNorm2d(child.num_features, eps=child.eps))
        else:
            freeze(child)


torch.manual_seed(0)
model = torchvision.models.get_model(name, weights=None, weights_backbone=None)
if name in ("fasterrcnn_resnet50_fpn", "fasterrcnn_mobilenet_v3_large_fpn", "fasterrcnn_mobilenet_v3_large_320_fpn"):
    freeze(model.backbone.body)
model.eval()
heads = model.roi_heads
heads.score_thresh, heads.detections_per_img = 0.0, MAX_BOXES  # keep low scores: at least MIN_BOXES per image
all_boxes, all_vectors = [], []
with torch.inference_mode():
    for path in sorted(folder.glob("*.jpg")):
        image = torch.from_numpy(np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)
        images, _ = model.transform([image])
        features = model.backbone(images.tensors)
        proposals, _ = model.rpn(images, features)
        (found,), _ = heads(features, proposals, images.image_sizes)
        scores = found["scores"]
        keep = torch.nonzero(scores >= MIN_SCORE).flatten()
        if keep.numel() < MIN_BOXES:
            keep = torch.arange(min(MIN_BOXES, scores.numel()))
        boxes = found["boxes"][keep[:MAX_BOXES]]
        vectors = heads.box_head(heads.box_roi_pool(features, [boxes], images.image_sizes))
        all_boxes.append(resize_boxes(boxes, images.image_sizes[0], image.shape[-2:]).numpy())
        all_vectors.append(vectors.numpy())
np.save(output + ".boxes.npy", np.concatenate(all_boxes))
np.save(output + ".vectors.npy", np.concatenate(all_vectors))
