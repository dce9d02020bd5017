"""The BERT encoder of ``vizcli.embed.bert`` in numpy: a handful of texts with no torch at all.

Importing torch takes most of a one-sentence ``vizcli embed`` (about 1.5 s of 2 s here); numpy,
``tokenizers`` and ``safetensors.numpy`` load in a tenth of that. For a few texts the matmuls are
the same BLAS calls either way, so this path gives the same vectors (equal to the torch path
within 1e-5, tested for every pooling) sooner. Only models ``vizcli.embed.bert`` computes itself
(BERT with absolute positions, erf or tanh GELU, ReLU or SiLU) in float32 on the CPU run here.

GELU's erf has no numpy function: it is computed with W. J. Cody's rational approximations (as
in most libm's erf; within 1e-11 of ``math.erf``, tested), then rounded to float32.
"""

from __future__ import annotations

from typing import Any

import numpy as np

SMALL_INPUT_TOKENS = 2048  # up to about this many tokens the numpy path wins (import time saved > slower GEMMs)


def erf(x: np.ndarray) -> np.ndarray:
    """erf in float64 (Cody's rational approximations on |x| < 0.5, < 4, ≥ 4)."""
    x = x.astype(np.float64)
    sign = np.sign(x)
    a = np.abs(x)
    result = np.empty_like(a)
    small = a < 0.5
    if small.any():
        t = a[small] ** 2
        p = ((((1.857777061846031526730e-1 * t + 3.161123743870565596947e0) * t + 1.138641541510501556495e2) * t
              + 3.774852376853020208137e2) * t + 3.209377589138469472562e3)
        q = ((((t + 2.360129095234412093499e1) * t + 2.440246379344441733056e2) * t + 1.282616526077372275645e3) * t
             + 2.844236833439170622273e3)
        result[small] = a[small] * p / q
    middle = (a >= 0.5) & (a < 4.0)
    if middle.any():
        y = a[middle]
        p = (((((((2.15311535474403846343e-8 * y + 5.64188496988670089180e-1) * y + 8.88314979438837594118e0) * y
                 + 6.61191906371416294775e1) * y + 2.98635138197400131132e2) * y + 8.81952221241769090411e2) * y
              + 1.71204761263407058314e3) * y + 2.05107837782607146532e3) * y + 1.23033935479799725272e3
        q = (((((((y + 1.57449261107098347253e1) * y + 1.17693950891312499305e2) * y + 5.37181101862009857509e2) * y
                + 1.62138957456669018874e3) * y + 3.29079923573345962678e3) * y + 4.36261909014324715820e3) * y
             + 3.43936767414372163696e3) * y + 1.23033935480374942043e3
        result[middle] = 1.0 - np.exp(-y * y) * p / q
    large = a >= 4.0
    if large.any():  # erfc's asymptotic series: erfc(4) is 1.5e-8, so three terms leave an absolute error below 1e-15
        y = a[large]
        z = 1.0 / (y * y)
        result[large] = 1.0 - np.exp(-y * y) / (y * np.sqrt(np.pi)) * (1.0 - 0.5 * z + 0.75 * z * z)
    return sign * result


def _gelu(x: np.ndarray) -> np.ndarray:
    return (0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))).astype(np.float32)


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    return (0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))).astype(np.float32)


ACTIVATIONS = {
    "gelu": _gelu,
    "gelu_new": _gelu_tanh,
    "gelu_pytorch_tanh": _gelu_tanh,
    "relu": lambda x: np.maximum(x, 0),
    "silu": lambda x: (x / (1.0 + np.exp(-x))).astype(np.float32),
}


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    variance = (centred * centred).mean(axis=-1, keepdims=True)
    return (centred / np.sqrt(variance + eps) * weight + bias).astype(np.float32)


def expected_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """Every tensor a BERT of ``config`` needs (``transformers.BertModel``'s names), with its shape;
    the pooler's are optional."""
    hidden, inner = int(config["hidden_size"]), int(config.get("intermediate_size", 4 * int(config["hidden_size"])))
    shapes: dict[str, tuple[int, ...]] = {
        "embeddings.word_embeddings.weight": (int(config["vocab_size"]), hidden),
        "embeddings.position_embeddings.weight": (int(config.get("max_position_embeddings", 512)), hidden),
        "embeddings.token_type_embeddings.weight": (int(config.get("type_vocab_size", 2)), hidden),
        "embeddings.LayerNorm.weight": (hidden,), "embeddings.LayerNorm.bias": (hidden,),
    }
    for layer in range(int(config["num_hidden_layers"])):
        prefix = f"encoder.layer.{layer}."
        for name, (rows, columns) in (("attention.self.query", (hidden, hidden)), ("attention.self.key", (hidden, hidden)),
                                      ("attention.self.value", (hidden, hidden)), ("attention.output.dense", (hidden, hidden)),
                                      ("intermediate.dense", (inner, hidden)), ("output.dense", (hidden, inner))):
            shapes[f"{prefix}{name}.weight"], shapes[f"{prefix}{name}.bias"] = (rows, columns), (rows,)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[f"{prefix}{norm}.weight"] = shapes[f"{prefix}{norm}.bias"] = (hidden,)
    return shapes


def check_weights(config: dict, weights: dict[str, Any], name: str | None = None) -> None:
    """``BadInput`` (as the torch path's ``check_state_dict_fits`` words it) when ``weights`` lack a tensor
    the encoder needs or hold one of another shape; a pooler is optional, but whole or absent."""
    from vizcli.common.errors import BadInput

    expected = expected_shapes(config)
    if "pooler.dense.weight" in weights or "pooler.dense.bias" in weights:
        hidden = int(config["hidden_size"])
        expected.update({"pooler.dense.weight": (hidden, hidden), "pooler.dense.bias": (hidden,)})
    missing = [key for key in expected if key not in weights]
    wrong = [f"{key} {tuple(weights[key].shape)} vs {expected[key]}" for key in expected
             if key in weights and tuple(weights[key].shape) != expected[key]]
    subject = {"parameter": "model", **({"value": name} if name is not None else {})}
    if missing:
        raise BadInput(f"does not fit the model: {len(missing)} missing (first: {', '.join(missing[:3])}) keys", **subject)
    if wrong:
        raise BadInput(f"{len(wrong)} tensors have the wrong shape (first: {wrong[0]})", **subject)


class NumpyBert:
    """``forward(input_ids, attention_mask)`` (numpy ``[B, L]``) → (``float32 [B, L, H]``, ``[B, H]`` or None),
    from a BERT state_dict of numpy arrays (the names of ``transformers.BertModel``), checked first:
    a missing or misshapen tensor is ``BadInput`` naming it (``name``: the model, for the message)."""

    def __init__(self, config: dict, weights: dict[str, Any], name: str | None = None) -> None:
        check_weights(config, weights, name)
        self.config = config
        self.w = {key: np.ascontiguousarray(value, dtype=np.float32) for key, value in weights.items()}
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.activation = ACTIVATIONS[config.get("hidden_act", "gelu")]
        self.layers = int(config["num_hidden_layers"])
        self.has_pooler = "pooler.dense.weight" in self.w
        for layer in range(self.layers):  # one QKV GEMM a layer, as the torch path fuses them
            prefix = f"encoder.layer.{layer}.attention.self."
            self.w[prefix + "qkv.weight"] = np.concatenate([self.w[prefix + name + ".weight"] for name in ("query", "key", "value")]).T.copy()
            self.w[prefix + "qkv.bias"] = np.concatenate([self.w[prefix + name + ".bias"] for name in ("query", "key", "value")])
        for key in [key for key in self.w if key.endswith(".weight") and key.startswith(("encoder.", "pooler.")) and "LayerNorm" not in key
                    and ".qkv." not in key]:
            self.w[key + ".T"] = self.w[key].T.copy()

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.w[name + ".weight.T"] + self.w[name + ".bias"]

    def forward(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        w = self.w
        batch, length = input_ids.shape
        states = (w["embeddings.word_embeddings.weight"][input_ids] + w["embeddings.position_embeddings.weight"][:length][None]
                  + w["embeddings.token_type_embeddings.weight"][0][None, None])
        states = _layer_norm(states, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        hidden = states.shape[-1]
        width = hidden // self.heads
        bias = np.where(attention_mask.astype(bool)[:, None, None, :], 0.0, -np.inf).astype(np.float32)
        for layer in range(self.layers):
            prefix = f"encoder.layer.{layer}."
            qkv = states @ w[prefix + "attention.self.qkv.weight"] + w[prefix + "attention.self.qkv.bias"]
            query, key, value = (part.reshape(batch, length, self.heads, width).transpose(0, 2, 1, 3)
                                 for part in np.split(qkv, 3, axis=-1))
            scores = query @ key.transpose(0, 1, 3, 2) * np.float32(width**-0.5) + bias
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ value).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
            attended = _layer_norm(self._linear(context, prefix + "attention.output.dense") + states,
                                   w[prefix + "attention.output.LayerNorm.weight"], w[prefix + "attention.output.LayerNorm.bias"], self.eps)
            inner = self.activation(self._linear(attended, prefix + "intermediate.dense"))
            states = _layer_norm(self._linear(inner, prefix + "output.dense") + attended,
                                 w[prefix + "output.LayerNorm.weight"], w[prefix + "output.LayerNorm.bias"], self.eps)
        pooled = np.tanh(self._linear(states[:, 0], "pooler.dense")).astype(np.float32) if self.has_pooler else None
        return states.astype(np.float32), pooled


def pool(name: str, hidden: np.ndarray, pooled: np.ndarray | None, mask: np.ndarray) -> np.ndarray:
    """The poolings of ``vizcli.embed.encode`` on numpy arrays."""
    if name == "pooler":
        if pooled is None:
            from vizcli.common.errors import BadInput

            raise BadInput("this model has no pooler weights; use mean or cls", parameter="pooling", value=name)
        return pooled
    if name == "cls":
        return hidden[:, 0]
    if name == "mean":
        weights = mask[..., None].astype(hidden.dtype)
        return ((hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)).astype(np.float32)
    return np.where(mask[..., None].astype(bool), hidden, np.float32(-1e9)).max(axis=1)


def normalized(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (``F.normalize``: divided by max(norm, 1e-12))."""
    norms = np.sqrt((vectors.astype(np.float32) ** 2).sum(axis=-1, keepdims=True))
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
