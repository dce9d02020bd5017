"""Peer: what a torchinfo user runs to see ResNet18's layer shapes."""

import torchinfo
import torchvision

torchinfo.summary(torchvision.models.resnet18(), (1, 3, 224, 224))
