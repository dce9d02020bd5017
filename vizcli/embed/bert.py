"""A BERT encoder in plain torch, loaded from safetensors (or a weights-only ``.bin``).

Importing ``transformers.BertModel`` costs seconds; this module computes the same
``last_hidden_state`` and ``pooler_output`` (the tests check it against
``transformers.BertModel`` within 1e-5) with nothing but torch, so a one-sentence call stays
fast. Other architectures of the family (RoBERTa, DistilBERT, …) are run through
``transformers.AutoModel`` instead; see ``load_encoder``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vizcli.text_models.bert_config import NATIVE_ACTIVATIONS, strip_prefix, supports_natively  # noqa: F401 (re-exported)

ACTIVATIONS = {  # the names of NATIVE_ACTIVATIONS
    "gelu": lambda x, F: F.gelu(x),
    "gelu_new": lambda x, F: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x, F: F.gelu(x, approximate="tanh"),
    "relu": lambda x, F: F.relu(x),
    "silu": lambda x, F: F.silu(x),
}


class _Embeddings(nn.Module):
    def __init__(self, config: dict):
        super().__init__()
        hidden = config["hidden_size"]
        self.word_embeddings = nn.Embedding(config["vocab_size"], hidden)
        self.position_embeddings = nn.Embedding(config["max_position_embeddings"], hidden)
        self.token_type_embeddings = nn.Embedding(config.get("type_vocab_size", 2), hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=config.get("layer_norm_eps", 1e-12))

    def forward(self, input_ids):
        """``Tensor[B, L]`` token ids → ``Tensor[B, L, H]`` (token type 0 for every token)."""
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        embedded = (
            self.word_embeddings(input_ids)
            + self.position_embeddings(positions)[None]
            + self.token_type_embeddings.weight[0][None, None]
        )
        return self.LayerNorm(embedded)


class _SelfAttention(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.fused: tuple[torch.Tensor, torch.Tensor] | nn.Module | None = None  # [3H, H] weight and [3H] bias (fuse()), or int8

    def fuse(self) -> None:
        """Stack the query, key and value projections into one [3H, H] matrix, so each layer runs one
        GEMM instead of three (the state_dict keeps its three entries; call again after loading)."""
        with torch.no_grad():
            weight = torch.cat([self.query.weight, self.key.weight, self.value.weight]).contiguous()
            bias = torch.cat([self.query.bias, self.key.bias, self.value.bias]).contiguous()
        self.fused = (weight, bias)

    def project(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.fused is None:
            return self.query(states), self.key(states), self.value(states)
        if isinstance(self.fused, nn.Module):  # int8 (vizcli.embed.int8.quantize_linears)
            query, key, value = self.fused(states).chunk(3, dim=-1)
            return query, key, value
        weight, bias = self.fused
        if weight.dtype != states.dtype or weight.device != states.device:
            weight, bias = weight.to(states), bias.to(states)
        query, key, value = F.linear(states, weight, bias).chunk(3, dim=-1)
        return query, key, value


class _DenseNorm(nn.Module):
    def __init__(self, width_in: int, hidden: int, eps: float):
        super().__init__()
        self.dense = nn.Linear(width_in, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)


class _Attention(nn.Module):
    def __init__(self, hidden: int, eps: float):
        super().__init__()
        self.self = _SelfAttention(hidden)
        self.output = _DenseNorm(hidden, hidden, eps)


class _Intermediate(nn.Module):
    def __init__(self, hidden: int, width: int):
        super().__init__()
        self.dense = nn.Linear(hidden, width)


class _Layer(nn.Module):
    """One transformer layer; module names match ``transformers.BertLayer`` so state_dicts load."""

    def __init__(self, config: dict):
        super().__init__()
        hidden, eps = config["hidden_size"], config.get("layer_norm_eps", 1e-12)
        self.heads = config["num_attention_heads"]
        self.activation = ACTIVATIONS[config.get("hidden_act", "gelu")]
        self.attention = _Attention(hidden, eps)
        self.intermediate = _Intermediate(hidden, config["intermediate_size"])
        self.output = _DenseNorm(config["intermediate_size"], hidden, eps)

    def forward(self, states, mask):
        """``Tensor[B, L, H]`` and a boolean ``Tensor[B, 1, 1, L]`` key mask → ``Tensor[B, L, H]``."""
        batch, length, hidden = states.shape
        projections = self.attention.self

        def split(x):
            return x.view(batch, length, self.heads, hidden // self.heads).transpose(1, 2)

        query, key, value = projections.project(states)
        context = attend(split(query), split(key), split(value), mask)
        context = context.transpose(1, 2).reshape(batch, length, hidden)
        attended = self.attention.output.LayerNorm(self.attention.output.dense(context) + states)
        inner = self.activation(self.intermediate.dense(attended), F)
        return self.output.LayerNorm(self.output.dense(inner) + attended)


SHORT_ATTENTION = 64  # up to this many tokens, batched matmuls beat the fused SDPA kernel on CPU


def attend(query, key, value, mask):
    """Softmax attention of ``[B, heads, L, d]`` query/key/value under a boolean ``[B, 1, 1, L]`` key mask.

    For short inputs on CPU two batched matmuls around a softmax take half the time of
    ``scaled_dot_product_attention``'s fused kernel (whose tiling is sized for long sequences); both
    compute the same function (equal within 2e-6 in float32, tested)."""
    batch, heads, length, width = query.shape
    if length > SHORT_ATTENTION or query.device.type != "cpu":
        return F.scaled_dot_product_attention(query, key, value, attn_mask=mask)
    bias = torch.zeros(mask.shape, dtype=query.dtype, device=query.device).masked_fill_(~mask, float("-inf"))
    scores = torch.baddbmm(bias.expand(batch, heads, length, length).reshape(batch * heads, length, length),
                           query.reshape(batch * heads, length, width), key.reshape(batch * heads, length, width).transpose(1, 2),
                           alpha=width**-0.5)
    return torch.bmm(scores.softmax(-1), value.reshape(batch * heads, length, width)).view(batch, heads, length, width)


class _Encoder(nn.Module):
    def __init__(self, config: dict):
        super().__init__()
        self.layer = nn.ModuleList(_Layer(config) for _ in range(config["num_hidden_layers"]))


class _Pooler(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)


class BertEncoder(nn.Module):
    """``forward(input_ids, attention_mask)`` → (last_hidden_state ``Tensor[B, L, H]``, pooler_output ``Tensor[B, H]``)."""

    def __init__(self, config: dict):
        super().__init__()
        self.embeddings = _Embeddings(config)
        self.encoder = _Encoder(config)
        self.pooler = _Pooler(config["hidden_size"])

    def forward(self, input_ids, attention_mask):
        states = self.embeddings(input_ids)
        # boolean mask: True where a query may attend (padding keys are excluded)
        mask = attention_mask[:, None, None, :].bool()
        for layer in self.encoder.layer:
            states = layer(states, mask)
        pooled = torch.tanh(self.pooler.dense(states[:, 0]))
        return states, pooled


def fuse_projections(model: BertEncoder) -> BertEncoder:
    """Fuse every layer's query/key/value projections (after its weights are loaded and cast)."""
    for module in model.modules():
        if isinstance(module, _SelfAttention):
            module.fuse()
    return model


def build_encoder(config: dict) -> BertEncoder:
    """An (uninitialised) BERT module for ``config`` (the dict of ``config.json``)."""
    return BertEncoder(config)
