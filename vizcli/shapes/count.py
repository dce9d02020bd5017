"""Operator-level counting: the multiply-accumulates of what actually ran, from torch's dispatcher.

A ``TorchDispatchMode`` sees every ATen operator a forward pass dispatches, whichever module
or function issued it: convolutions (transposed too), mm/addmm/bmm/baddbmm (what ``linear``,
``matmul`` and ``einsum`` become), scaled-dot-product attention (its two matmuls) and the fused
attention of ``nn.MultiheadAttention``'s fast path, and the fused recurrent kernels of ``nn.LSTM``/``nn.GRU``/
``nn.RNN`` (oneDNN's, cuDNN's, and the whole-sequence operators ``inference_mode`` leaves undecomposed).
MACs come from ``torch.utils.flop_counter``'s formulas (FLOPs = 2 × MACs) plus ours for the kernels it
does not cover; every other
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


def _tokens(sequence: Any) -> int:
    """Steps × batch of a recurrent input: ``[T, N, I]``, ``[N, T, I]`` or packed ``[sum of lengths, I]``."""
    return sequence.numel() // sequence.shape[-1] if sequence.dim() else 0


def _matrices(tensors: Any) -> int:
    """Elements of the 2-D weights among ``tensors``: each one multiplies once per token (biases add)."""
    return sum(t.numel() for t in tensors if hasattr(t, "dim") and t.dim() == 2)


def _onednn_layer_macs(args: tuple, kwargs: dict, out: Any) -> int:
    """One layer and direction of an LSTM on oneDNN: ``tokens × (4H·I + 4H·H)`` from ``W_ih [4H, I]``, ``W_hh [4H, H]``."""
    return _tokens(args[0]) * _matrices(args[1:3])


def _weight_list_macs(args: tuple, kwargs: dict, out: Any) -> int:
    """cuDNN's and MIOpen's whole-stack kernels: every layer's and direction's matrices, once per token
    (a layer's tokens are its input's: the same steps × batch all the way up)."""
    return _tokens(args[0]) * _matrices(args[1])


def _sequence_macs(params_at: int) -> Any:
    """``aten.lstm``/``gru``/``rnn_tanh``/``rnn_relu`` seen whole (under ``inference_mode``): ``params`` at ``params_at``."""

    def macs(args: tuple, kwargs: dict, out: Any) -> int:
        return _tokens(args[0]) * _matrices(args[params_at])

    return macs


_EXTRA_FORMULAS = {
    name: formula
    for name, formula in (
        ("_scaled_dot_product_flash_attention_for_cpu", _sdpa_cpu_macs),
        ("_native_multi_head_attention", _native_mha_macs),
        ("mkldnn_rnn_layer", _onednn_layer_macs),
        ("_cudnn_rnn", _weight_list_macs),
        ("miopen_rnn", _weight_list_macs),
    )
    if hasattr(torch.ops.aten, name)
}


# the whole-sequence recurrent operators: overload → where their ``params`` list is
_SEQUENCE_OVERLOADS = {"input": 2, "data": 3}
_SEQUENCE_OPERATORS = ("lstm", "gru", "rnn_tanh", "rnn_relu")


def _extra_formula(func: Any, name: str) -> Any:
    if name in _EXTRA_FORMULAS:
        return _EXTRA_FORMULAS[name]
    if name in _SEQUENCE_OPERATORS:
        overload = func._overloadname
        if overload in _SEQUENCE_OVERLOADS:
            # lstm.input: (input, hx, params, …); lstm.data: (data, batch_sizes, hx, params, …); gru and rnn_* alike
            return _sequence_macs(_SEQUENCE_OVERLOADS[overload])
    return None


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
        elif (formula := _extra_formula(func, name)) is not None:
            macs = int(formula(args, kwargs, out))
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
