"""Peer: the plain script — load the image, backbone forward to layer3, torchvision's roi_align, save."""

import json
import sys

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision.ops import roi_align

image_path, boxes_path, output = sys.argv[1], sys.argv[2], sys.argv[3]
torch.manual_seed(0)
model = torchvision.models.resnet18().eval()
backbone = torch.nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool, model.layer1, model.layer2, model.layer3)
pixels = torch.from_numpy(np.asarray(Image.open(image_path).convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)
pixels = (pixels - torch.tensor([0.485, 0.456, 0.406])[:, None, None]) / torch.tensor([0.229, 0.224, 0.225])[:, None, None]
with open(boxes_path) as handle:
    boxes = torch.tensor(json.load(handle), dtype=torch.float32)
with torch.inference_mode():
    features = backbone(pixels[None])
    pooled = roi_align(features, [boxes], (7, 7), 1 / 16, 2, True)
np.save(output, pooled.numpy())
