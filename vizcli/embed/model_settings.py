"""The settings a sentence-transformers model folder carries: pooling, normalization and prompts.

``modules.json`` lists the pipeline (Transformer → Pooling → Normalize); ``1_Pooling/config.json``
says which pooling the model was trained with; ``config_sentence_transformers.json`` may name
prompts (``{"query": "query: ", …}``). Without ``--pooling`` vizcli uses the model's own pooling, and
normalization follows the Normalize module unless ``--normalize/--no-normalize`` says otherwise;
``--prompt NAME`` reads the prompts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vizcli.common.errors import BadInput

POOLING_MODES = {"pooling_mode_cls_token": "cls", "pooling_mode_mean_tokens": "mean", "pooling_mode_max_tokens": "max"}
UNSUPPORTED_MODES = ("pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken")


@dataclass
class ModelSettings:
    """What a model folder says about how it is meant to be used (empty for a plain BERT folder)."""

    poolings: tuple[str, ...] = ()
    normalize: bool = False
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt: str | None = None
    found: bool = False  # the folder carries sentence-transformers files


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_settings(folder: Path) -> ModelSettings:
    modules = _json(folder / "modules.json")
    if not isinstance(modules, list):
        return ModelSettings()
    settings = ModelSettings(found=True)
    for module in modules:
        kind = str(module.get("type", "")) if isinstance(module, dict) else ""
        path = folder / str(module.get("path", "")) if isinstance(module, dict) else folder
        if kind.endswith(".Pooling"):
            config = _json(path / "config.json") or {}
            unsupported = [mode for mode in UNSUPPORTED_MODES if config.get(mode)]
            modes = tuple(name for key, name in POOLING_MODES.items() if config.get(key))
            if unsupported or len(modes) != 1:
                wanted = ", ".join(unsupported) or ("several poolings concatenated" if modes else "no pooling")
                raise BadInput(f"the model's pooling ({wanted}) is not one vizcli computes; name pooling=mean|cls|max|pooler",
                               parameter="pooling", value="auto")
            settings.poolings = modes
        elif kind.endswith(".Normalize"):
            settings.normalize = True
    config = _json(folder / "config_sentence_transformers.json") or {}
    prompts = config.get("prompts") if isinstance(config, dict) else None
    if isinstance(prompts, dict):
        settings.prompts = {str(k): str(v) for k, v in prompts.items()}
    settings.default_prompt = config.get("default_prompt_name") if isinstance(config, dict) else None
    return settings


def model_pooling(pooling: str | tuple[str, ...] | list[str] | None, normalize: bool | None, prompt: str | None, prefix: str,
                  folder: Path, has_pooler: bool) -> tuple[tuple[str, ...], bool, str]:
    """(poolings, normalize, prefix): ``pooling`` parsed, or the model's own where none is named.

    The model's own (``pooling`` None or ``"auto"``): the pooling its sentence-transformers files name,
    normalised when it has a Normalize module (``normalize`` None); a plain BERT folder without them:
    ``pooler`` when it has pooler weights (what BERT trained for next-sentence prediction), else ``mean``.
    ``prompt`` names one of the model's prompts, which becomes the prefix.
    """
    from vizcli.embed.encode import parse_poolings

    settings = read_settings(folder) if pooling is None or pooling == "auto" or prompt is not None else ModelSettings()
    if pooling is None or pooling == "auto":
        if settings.poolings:
            poolings = settings.poolings
            normalize = settings.normalize if normalize is None else normalize
        else:
            poolings = ("pooler",) if has_pooler else ("mean",)
    else:
        poolings = parse_poolings(pooling if isinstance(pooling, str) else ",".join(pooling))
    if prompt is not None:
        if prefix:
            raise BadInput("give prompt=NAME or prefix=TEXT, not both", parameter="prompt", value=prompt)
        if prompt not in settings.prompts:
            known = ", ".join(sorted(settings.prompts)) or "none"
            raise BadInput(f"the model names no such prompt (its prompts: {known})", parameter="prompt", value=prompt)
        prefix = settings.prompts[prompt]
    return poolings, bool(normalize), prefix
