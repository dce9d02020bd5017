"""Loading an embedding ``Encoder``: a BERT-family model (found and read by ``vizcli.text_models.folders``)
computed by ``vizcli.embed.bert`` in torch, by ``vizcli.embed.numpy_bert`` for a few texts, or by
transformers' ``AutoModel`` for the rest of the family; in float32, bfloat16 or int8.
"""

from __future__ import annotations

from typing import Any

from vizcli.common.checkpoints import check_state_dict_fits
from vizcli.common.errors import BadInput, RunFailure
from vizcli.common.files import sha256_of
from vizcli.embed.encode import DTYPES, Encoder
from vizcli.text_models.folders import (  # noqa: F401 (bundled_model_path and locate_model: re-exported, the public names)
    BUNDLED_DISTRIBUTION,
    bundled_model_path,
    check_bundled,
    load_tokenizer,
    locate_model,
    model_max_length,
    read_json,
    read_weights,
    transformers_model,
    weights_file,
)


def load_bert(spec: str | None = None, dtype: str = "float32", device: str = "cpu") -> Encoder:
    """Load ``spec`` (None = the bundled model; a folder; or a cached hub name) for embedding.

    ``dtype``: ``float32``; ``bfloat16``; ``int8`` (CPU: ``vizcli.embed.int8``); ``auto`` (the
    faster of float32 and bfloat16 on this machine, measured once: ``vizcli.embed.dtype_probe``).
    """
    import torch

    if dtype not in DTYPES:
        raise BadInput(f"use one of {', '.join(DTYPES)}", parameter="dtype", value=dtype)
    folder, name, bundled = locate_model(spec)
    config = read_json(folder / "config.json", name)
    tokenizer = load_tokenizer(folder, name)
    weights = weights_file(folder, name)
    if bundled:
        check_bundled(weights)
    state_dict = read_weights(weights, name)
    from vizcli.embed.bert import build_encoder
    from vizcli.text_models.bert_config import strip_prefix, supports_natively

    state_dict = strip_prefix(state_dict)
    native = supports_natively(config)
    if native:
        model = build_encoder(config)
    else:
        model = transformers_model(folder, name)
        prefix = getattr(model, "base_model_prefix", "")
        if prefix:
            state_dict = strip_prefix(state_dict, (prefix + ".",))
    has_pooler = any(key.startswith("pooler.") for key in state_dict)
    usable = check_state_dict_fits(
        model.state_dict(), state_dict, parameter="model", value=name,
        optional=lambda key: key.startswith("pooler.") or key.endswith("position_ids"), allow_unexpected=True,
    )
    model.load_state_dict(usable, strict=False)
    model.eval()
    model.to(device=device)
    asked, probe = dtype, None
    if dtype in ("auto", "bfloat16"):
        from vizcli.embed.dtype_probe import probe as probe_dtypes

        probe = probe_dtypes(model, config, str(device))  # measured once per CPU and model, then cached
        dtype = probe["fastest"] if dtype == "auto" else dtype
    if dtype == "int8":
        if torch.device(device).type != "cpu":
            raise BadInput("int8 runs on the CPU (torch's int8 GEMM); use device='cpu', or dtype='bfloat16' on a GPU",
                           parameter="dtype", value=asked)
    else:
        model.to(dtype=torch.bfloat16 if dtype == "bfloat16" else torch.float32)
    if native:
        from vizcli.embed.bert import fuse_projections

        fuse_projections(model)  # one QKV GEMM per layer (measured in benchmarks/RESULTS.md)
    if dtype == "int8":
        from vizcli.embed.int8 import quantize_linears

        quantize_linears(model)
    limit = model_max_length(folder, config, name)
    return Encoder(
        name=name, path=folder, model=model, tokenizer=tokenizer, config=config, max_length=limit,
        has_pooler=has_pooler and hasattr(model, "pooler") and model.pooler is not None,
        native=native, dtype=dtype, device=str(device), pad_id=int(config.get("pad_token_id") or 0),
        asked_dtype=asked, probe=probe,
    )


def numpy_path_fits(spec: str | None, dtype: str, device: str) -> bool:
    """Whether ``load_numpy_bert`` computes ``spec`` as the torch path would: a BERT that
    ``vizcli.embed.bert`` runs itself, with safetensors weights, in float32 on the CPU (read from
    files only: nothing heavy is imported)."""
    from vizcli.text_models.bert_config import supports_natively

    if dtype not in ("float32", "auto") or device not in ("auto", "cpu"):
        return False  # auto: for a handful of texts float32 in numpy starts fastest (no torch import, no probe)
    try:
        folder, name, _ = locate_model(spec)
        config = read_json(folder / "config.json", name)
    except (BadInput, RunFailure):
        return False  # the torch path reports it
    return supports_natively(config) and (folder / "model.safetensors").exists()


def load_numpy_bert(spec: str | None = None) -> Encoder:
    """``spec`` (as for ``load_bert``) as an ``Encoder`` computed in numpy (``vizcli.embed.numpy_bert``), float32, CPU."""
    from safetensors.numpy import load_file

    from vizcli.embed.numpy_bert import NumpyBert
    from vizcli.text_models.bert_config import strip_prefix

    folder, name, bundled = locate_model(spec)
    config = read_json(folder / "config.json", name)
    tokenizer = load_tokenizer(folder, name)
    weights = folder / "model.safetensors"
    if bundled:
        check_bundled(weights)
    try:
        state_dict = strip_prefix(load_file(str(weights)))
    except Exception as error:
        raise BadInput(f"{weights.name} is not a valid safetensors file ({error})", parameter="model", value=name) from None
    model = NumpyBert(config, state_dict, name)
    return Encoder(name=name, path=folder, model=model, tokenizer=tokenizer, config=config, max_length=model_max_length(folder, config, name),
                   has_pooler=model.has_pooler, native=True, dtype="float32", device="cpu",
                   pad_id=int(config.get("pad_token_id") or 0), backend="numpy")


def weights_sha256(encoder: Any) -> str:
    """The sha256 of the weights file ``encoder`` was loaded from (what a corpus output records)."""
    return sha256_of(weights_file(encoder.path, encoder.name))


def package_versions() -> dict[str, str]:
    from importlib import metadata

    versions = {}
    for name in ("vizcli", "torch", "tokenizers", "safetensors", BUNDLED_DISTRIBUTION):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions
