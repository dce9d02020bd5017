"""``--dtype int8``: the encoder's linear layers in int8, the rest in float32.

Each ``nn.Linear`` of the encoder layers (the fused Q/K/V projection included) becomes an
``Int8Linear``:

* weights: symmetric int8 with **one scale per output channel** (``max|w_row| / 127``);
* activations: symmetric int8 with **one scale per row** (per token), computed for every call, so a
  padding row or one outlier token never coarsens the other tokens' steps;
* the product: ``torch._int_mm`` (int8 × int8 → int32; oneDNN's GEMM, which uses VNNI on x86 CPUs
  that have it), then ``int32 × row scale × channel scale + bias`` in float32.

Kept in float32: the embeddings, every LayerNorm, the attention scores, their softmax and the
weighted sum of the values, GELU, the pooler (one row per text: too small to gain). The choices
were measured against torch's stock ``quantize_dynamic`` (per-tensor activations) in
benchmarks/RESULTS.md ("embed int8").

``quality_receipt`` measures what a run lost: the cosine of each of the first N texts' int8
vectors against float32, recorded in the output's metadata.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

INT8_MAX = 127


class Int8Linear(nn.Module):
    """``y = x Wᵀ + b`` with int8 ``W`` (per-channel scales) and int8 ``x`` (per-row scales)."""

    weight_int8: torch.Tensor
    weight_scales: torch.Tensor
    bias: torch.Tensor

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        weight = weight.detach().float()
        scales = weight.abs().amax(dim=1).clamp(min=1e-12) / INT8_MAX
        self.out_features, self.in_features = weight.shape
        # buffers, not parameters, and not persistent: the float state_dict stays the model's own
        self.register_buffer("weight_int8", torch.round(weight / scales[:, None]).clamp(-INT8_MAX, INT8_MAX).to(torch.int8),
                             persistent=False)
        self.register_buffer("weight_scales", scales, persistent=False)
        self.register_buffer("bias", (bias.detach().float() if bias is not None else torch.zeros(self.out_features)),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        rows = x.reshape(-1, self.in_features).float()
        row_scales = rows.abs().amax(dim=1, keepdim=True).clamp_(min=1e-12).div_(INT8_MAX)
        quantized = (rows / row_scales).round_().to(torch.int8)  # |value| ≤ 127 by construction
        product = torch._int_mm(quantized, self.weight_int8.t())
        out = torch.addcmul(self.bias, product.to(torch.float32).mul_(row_scales), self.weight_scales)
        return out.view(*shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 per-channel weights, per-row activations"


def quantize_linears(model: nn.Module) -> int:
    """Replace the encoder layers' linear layers of ``model`` (float32, CPU, loaded) by ``Int8Linear``
    in place; returns how many. The pooler and the embeddings stay float32."""
    count = 0
    for name, module in list(model.named_modules()):
        if "pooler" in name.split("."):
            continue
        fused = getattr(module, "fused", None)
        if isinstance(fused, tuple):  # vizcli.embed.bert's one Q/K/V matrix
            module.fused = Int8Linear(*fused)
            count += 1
            for child in ("query", "key", "value"):  # unused once fused: drop their float weights
                setattr(module, child, nn.Identity())
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.Linear) and child_name != "pooler":
                setattr(module, child_name, Int8Linear(child.weight, child.bias))
                count += 1
    return count


def quality_receipt(quantized: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    """``{pooling: {"texts", "min_cosine", "mean_cosine"}}`` of int8 vectors against float32 ones
    (``{pooling: float32 [N, D]}`` each, the same texts in the same order)."""
    import numpy as np

    receipt = {}
    for name, vectors in quantized.items():
        a = np.asarray(vectors, dtype=np.float64)
        b = np.asarray(reference[name], dtype=np.float64)
        cosines = (a * b).sum(axis=1) / np.clip(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12, None)
        receipt[name] = {"texts": int(len(cosines)), "min_cosine": round(float(cosines.min()), 6) if len(cosines) else None,
                         "mean_cosine": round(float(cosines.mean()), 6) if len(cosines) else None}
    return receipt
