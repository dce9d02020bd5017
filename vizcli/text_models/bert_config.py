"""What vizcli's own BERT encoders (torch: ``vizcli.embed.bert``, numpy: ``vizcli.embed.numpy_bert``)
compute, read from a model's ``config.json`` and state_dict names alone (no torch import); ``strip_prefix``
also serves ``vizcli shapes``, which traces text models through transformers."""

from __future__ import annotations

NATIVE_ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "silu")


def supports_natively(config: dict) -> bool:
    """Whether vizcli's BERT reproduces this config exactly."""
    return (
        config.get("model_type") == "bert"
        and config.get("position_embedding_type", "absolute") == "absolute"
        and config.get("hidden_act", "gelu") in NATIVE_ACTIVATIONS
        and not config.get("is_decoder", False)
    )


def strip_prefix(state_dict: dict, prefixes=("bert.", "model.")) -> dict:
    """Drop a leading ``bert.`` (from BertFor… checkpoints) so keys match ``BertModel``."""
    for prefix in prefixes:
        if state_dict and all(key.startswith(prefix) or key.startswith("cls.") for key in state_dict):
            return {key[len(prefix):]: value for key, value in state_dict.items() if key.startswith(prefix)}
    return state_dict
