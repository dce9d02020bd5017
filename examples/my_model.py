"""An example of your own model for `vizcli shapes --model examples/my_model.py:build --model-arg width=32`."""

import torch.nn as nn


def build(width: int = 16, classes: int = 10) -> nn.Module:
    """A small CNN: two 3×3 convolutions, global pooling, a linear classifier."""
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, classes),
    )
