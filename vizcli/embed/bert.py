"""A BERT encoder in plain torch, loaded from safetensors (or a weights-only ``.bin``).

Importing ``transformers.BertModel`` costs seconds; this module computes the same
``last_hidden_state`` and ``pooler_output`` (the tests check it against
``transformers.BertModel`` within 1e-5) with nothing but torch, so a one-sentence call stays
fast. Other architectures of the family (RoBERTa, DistilBERT, …) are run through
``transformers.AutoModel`` instead; see ``load_encoder``.
"""

from __future__ import annotations

ACTIVATIONS = {
    "gelu": lambda x, F: F.gelu(x),
    "gelu_new": lambda x, F: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x, F: F.gelu(x, approximate="tanh"),
    "relu": lambda x, F: F.relu(x),
    "silu": lambda x, F: F.silu(x),
}


def supports_natively(config: dict) -> bool:
    """Whether ``BertEncoder`` reproduces this config exactly."""
    return (
        config.get("model_type") == "bert"
        and config.get("position_embedding_type", "absolute") == "absolute"
        and config.get("hidden_act", "gelu") in ACTIVATIONS
        and not config.get("is_decoder", False)
    )


def build_encoder(config: dict):
    """An (uninitialised) BERT module for ``config`` (the dict of ``config.json``)."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    hidden = config["hidden_size"]
    heads = config["num_attention_heads"]
    eps = config.get("layer_norm_eps", 1e-12)
    activation = ACTIVATIONS[config.get("hidden_act", "gelu")]

    class Embeddings(nn.Module):
        def __init__(self):
            super().__init__()
            self.word_embeddings = nn.Embedding(config["vocab_size"], hidden)
            self.position_embeddings = nn.Embedding(config["max_position_embeddings"], hidden)
            self.token_type_embeddings = nn.Embedding(config.get("type_vocab_size", 2), hidden)
            self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

        def forward(self, input_ids):
            length = input_ids.shape[1]
            positions = torch.arange(length, device=input_ids.device)
            embedded = (
                self.word_embeddings(input_ids)
                + self.position_embeddings(positions)[None]
                + self.token_type_embeddings.weight[0][None, None]
            )
            return self.LayerNorm(embedded)

    class SelfAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.query = nn.Linear(hidden, hidden)
            self.key = nn.Linear(hidden, hidden)
            self.value = nn.Linear(hidden, hidden)

    class DenseNorm(nn.Module):
        def __init__(self, width_in):
            super().__init__()
            self.dense = nn.Linear(width_in, hidden)
            self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.self = SelfAttention()
            self.output = DenseNorm(hidden)

    class Intermediate(nn.Module):
        def __init__(self):
            super().__init__()
            self.dense = nn.Linear(hidden, config["intermediate_size"])

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.attention = Attention()
            self.intermediate = Intermediate()
            self.output = DenseNorm(config["intermediate_size"])

        def forward(self, states, mask):
            batch, length, _ = states.shape
            projections = self.attention.self

            def split(x):
                return x.view(batch, length, heads, hidden // heads).transpose(1, 2)

            context = F.scaled_dot_product_attention(
                split(projections.query(states)), split(projections.key(states)), split(projections.value(states)),
                attn_mask=mask,
            )
            context = context.transpose(1, 2).reshape(batch, length, hidden)
            attended = self.attention.output.LayerNorm(self.attention.output.dense(context) + states)
            inner = activation(self.intermediate.dense(attended), F)
            return self.output.LayerNorm(self.output.dense(inner) + attended)

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = nn.ModuleList(Layer() for _ in range(config["num_hidden_layers"]))

    class Pooler(nn.Module):
        def __init__(self):
            super().__init__()
            self.dense = nn.Linear(hidden, hidden)

    class BertEncoder(nn.Module):
        """``forward(input_ids, attention_mask)`` → (last_hidden_state, pooler_output)."""

        def __init__(self):
            super().__init__()
            self.embeddings = Embeddings()
            self.encoder = Encoder()
            self.pooler = Pooler()

        def forward(self, input_ids, attention_mask):
            states = self.embeddings(input_ids)
            # boolean mask: True where a query may attend (padding keys are excluded)
            mask = attention_mask[:, None, None, :].bool()
            for layer in self.encoder.layer:
                states = layer(states, mask)
            pooled = torch.tanh(self.pooler.dense(states[:, 0]))
            return states, pooled

    return BertEncoder()


def strip_prefix(state_dict: dict, prefixes=("bert.", "model.")) -> dict:
    """Drop a leading ``bert.`` (from BertFor… checkpoints) so keys match ``BertModel``."""
    for prefix in prefixes:
        if state_dict and all(key.startswith(prefix) or key.startswith("cls.") for key in state_dict):
            return {key[len(prefix):]: value for key, value in state_dict.items() if key.startswith(prefix)}
    return state_dict
