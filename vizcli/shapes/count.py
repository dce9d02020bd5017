"""Operator-level counting: the multiply-accumulates of what actually ran, from torch's dispatcher.

A ``TorchDispatchMode`` sees every ATen operator a forward pass dispatches, whichever module
or function issued it: convolutions (transposed too), mm/addmm/bmm/baddbmm (what ``linear``,
``matmul`` and ``einsum`` become), scaled-dot-product attention (its two matmuls) and the fused
attention of ``nn.MultiheadAttention``'s fast path. MACs come from ``torch.utils.flop_counter``'s
formulas (FLOPs = 2 × MACs) plus two for the CPU attention kernels it does not cover; every other
operator (batch_norm, add, softmax, …) is counted by calls, as carrying no MACs under this
convention. ``take()`` hands over what ran since the last call, so a tracer can attribute it.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry


def _sdpa_cpu_macs(args: tuple, kwargs: dict, out: Any) -> int:
    """``softmax(q kᵀ) v`` on q ``[B, H, L, E]``, k ``[B, H, S, E]``, v ``[B, H, S, Ev]``: two matmuls."""
    query, key, value = args[:3]
    *batch, length, embed = query.shape
    source = key.shape[-2]
    return math.prod(batch) * length * source * (embed + value.shape[-1])


def _native_mha_macs(args: tuple, kwargs: dict, out: Any) -> int:
    """``nn.MultiheadAttention``'s fused fast path: q/k/v projections, the two attention matmuls, out-projection."""
    query, key = args[0], args[1]
    embed = int(args[3])
    *batch, length, _ = query.shape
    source = key.shape[-2]
    items = math.prod(batch)
    projections = items * (length + 2 * source) * embed * embed + items * length * embed * embed
    return projections + 2 * items * length * source * embed


_EXTRA_FORMULAS = {
    name: formula
    for name, formula in (
        ("_scaled_dot_product_flash_attention_for_cpu", _sdpa_cpu_macs),
        ("_native_multi_head_attention", _native_mha_macs),
    )
    if hasattr(torch.ops.aten, name)
}


def operator_name(func: Any) -> str:
    """``aten.convolution.default`` → ``convolution``."""
    return str(func._overloadpacket.__name__)


class OperatorCounter(TorchDispatchMode):
    """Counts MACs per operator kind while active; ``take()`` returns the MACs since the last take."""

    def __init__(self) -> None:
        super().__init__()
        self.macs: Counter[str] = Counter()  # operator kind → MACs, the whole run
        self.calls: Counter[str] = Counter()  # operator kind → calls, for kinds that carry no MACs
        self._pending = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        packet = func._overloadpacket
        name = operator_name(func)
        macs = 0
        if packet in flop_registry:
            macs = int(flop_registry[packet](*args, **kwargs, out_val=out)) // 2
        elif name in _EXTRA_FORMULAS:
            macs = int(_EXTRA_FORMULAS[name](args, kwargs, out))
        if macs:
            self.macs[name] += macs
            self._pending += macs
        else:
            self.calls[name] += 1
        return out

    def reset(self) -> None:
        """Forget everything counted so far."""
        self.macs.clear()
        self.calls.clear()
        self._pending = 0

    def take(self) -> int:
        """MACs counted since the previous ``take`` (or the start)."""
        pending, self._pending = self._pending, 0
        return pending
