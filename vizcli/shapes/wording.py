"""The notes' wording for a module (``Conv2d 3x3, 128, stride=2``, ``Linear 512->1000``)."""

from __future__ import annotations


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def describe_module(module) -> str:
    """The notes' wording for a module: ``Conv2d 3x3, 128, stride=2``, ``Linear 512->1000``."""
    import torch.nn as nn

    if isinstance(module, nn.Conv2d):
        kh, kw = _pair(module.kernel_size)
        text = f"Conv2d {kh}x{kw}, {module.out_channels}"
        stride = _pair(module.stride)
        if stride != (1, 1):
            text += f", stride={stride[0]}" if stride[0] == stride[1] else f", stride={stride}"
        if module.groups > 1:
            text += ", depthwise" if module.groups == module.in_channels else f", groups={module.groups}"
        return text
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return f"{type(module).__name__} {module.num_features}"
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        kh, kw = _pair(module.kernel_size)
        stride = _pair(module.stride)
        return f"{type(module).__name__} {kh}x{kw}, stride={stride[0]}"
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        oh, ow = _pair(module.output_size)
        return f"{type(module).__name__} →{oh}x{ow}"
    if isinstance(module, nn.Linear):
        return f"Linear {module.in_features}->{module.out_features}"
    if isinstance(module, nn.Dropout):
        return f"Dropout p={module.p}"
    return str(getattr(module, "original_name", "") or type(module).__name__)  # a scripted module keeps its class name
