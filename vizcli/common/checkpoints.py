"""Checkpoint files: a state_dict read safely, and checked against the model it is for.

``.safetensors`` through safetensors; ``.pth``/``.pt``/``.bin`` through ``torch.load(weights_only=True)``
(never arbitrary pickle), after refusing a zip whose entries declare far more bytes than the file
holds. ``check_state_dict_fits`` names the missing, unexpected and misshapen keys.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from vizcli.common.errors import BadInput, error_text
from vizcli.common.files import checked_os_call, require_file

MAX_CHECKPOINT_EXPANSION = 4  # declared uncompressed bytes per file byte beyond which a .pth is refused


def load_state_dict_file(path: str) -> dict[str, Any]:
    """A ``{name: Tensor}`` dict from ``.safetensors`` or ``.pth``/``.pt`` (weights_only)."""
    import torch

    file = require_file(path, "weights", "a .pth, .pt or .safetensors state_dict")
    suffix = file.suffix.lower()
    if suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(file), device="cpu")
        except Exception as error:  # safetensors raises its own error types
            raise BadInput(f"not a valid safetensors file ({error_text(error)})", parameter="weights", value=path) from None
    if suffix not in (".pth", ".pt", ".bin"):
        raise BadInput(f"unknown extension '{suffix}'; use .pth, .pt or .safetensors", parameter="weights", value=path)
    check_declared_sizes(file, path)
    try:
        loaded = torch.load(str(file), map_location="cpu", weights_only=True)
    except Exception as error:
        text = error_text(error)
        if "weights only load failed" in text.lower() or "Unsupported global" in text:
            raise BadInput(
                "refused: the file holds Python objects other than tensors, and "
                "loading them could run code; save a plain state_dict (or use .safetensors)",
                parameter="weights",
                value=path,
            ) from None
        raise BadInput(f"cannot be read as a PyTorch checkpoint ({text})", parameter="weights", value=path) from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(loaded, dict) and isinstance(loaded.get(key), dict):
            loaded = loaded[key]
    if not isinstance(loaded, dict) or not all(hasattr(v, "shape") for v in loaded.values()):
        raise BadInput("not a state_dict (a dict of tensors)", parameter="weights", value=path)
    return loaded


def check_state_dict_fits(
    expected: dict[str, Any],
    state_dict: dict[str, Any],
    *,
    parameter: str,
    value: str,
    optional: Callable[[str], bool] = lambda key: False,
    allow_unexpected: bool = False,
) -> dict[str, Any]:
    """The entries of ``state_dict`` that ``expected`` (a model's own state_dict) takes.

    Raises ``BadInput`` naming ``parameter=value`` when keys the model needs are missing
    (``optional`` keys may be), when there are keys it does not know (unless
    ``allow_unexpected``), or when a tensor's shape differs.
    """
    missing = [key for key in expected if key not in state_dict and not optional(key)]
    unexpected = [] if allow_unexpected else [key for key in state_dict if key not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (first: {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (first: {', '.join(unexpected[:3])})")
        raise BadInput(f"does not fit the model: {'; '.join(parts)} keys", parameter=parameter, value=value)
    usable = {key: tensor for key, tensor in state_dict.items() if key in expected}
    wrong = [
        f"{key} {tuple(tensor.shape)} vs {tuple(expected[key].shape)}"
        for key, tensor in usable.items()
        if tuple(tensor.shape) != tuple(expected[key].shape)
    ]
    if wrong:
        raise BadInput(f"{len(wrong)} tensors have the wrong shape (first: {wrong[0]})", parameter=parameter, value=value)
    return usable


def check_declared_sizes(file: Path, path: str, parameter: str = "weights") -> None:
    """Refuse a zip checkpoint whose entries declare far more bytes than the file holds.

    ``torch.save`` stores tensors uncompressed, so a real checkpoint expands by about 1×; a small
    file that declares gigabytes is a zip bomb, refused here before any memory is spent.
    """
    import zipfile

    if not checked_os_call(lambda: zipfile.is_zipfile(file), parameter, path):
        return
    try:
        with zipfile.ZipFile(file) as archive:
            declared = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError) as error:
        raise BadInput(f"cannot be read as a PyTorch checkpoint ({error_text(error)})", parameter=parameter, value=path) from None
    size = checked_os_call(lambda: file.stat().st_size, parameter, path)
    if declared > MAX_CHECKPOINT_EXPANSION * max(size, 1):
        raise BadInput(
            f"its entries declare {declared:,} bytes inside a {size:,}-byte file (more than "
            f"{MAX_CHECKPOINT_EXPANSION}×); torch.save does not compress, so this is refused as a possible zip bomb",
            parameter=parameter, value=path,
        )
