"""Peer: the usual region-feature script over a dataset — for each image: load, backbone to layer3,
torchvision's roi_align on its boxes; collect; save one .npy at the end."""

import csv
import sys
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision.ops import roi_align

folder, boxes_path, output = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
torch.manual_seed(0)
model = torchvision.models.resnet18().eval()
backbone = torch.nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool, model.layer1, model.layer2, model.layer3)
with open(boxes_path) as handle:
    boxes = torch.tensor([[float(v) for v in row[:4]] for row in csv.reader(handle)], dtype=torch.float32)
mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
features = []
with torch.inference_mode():
    for path in sorted(folder.glob("*.jpg")):
        pixels = torch.from_numpy(np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)
        feature_map = backbone(((pixels - mean) / std)[None])
        features.append(roi_align(feature_map, [boxes], (7, 7), 1 / 16, 2, True).numpy())
np.save(output, np.concatenate(features))
