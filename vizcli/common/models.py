"""The registry of torchvision models (classification, segmentation, detection, video) and their weights.

Weights come from one of three places, always labelled honestly:

* ``None``      – seeded random initialisation (the default: nothing is downloaded);
* a file path   – a torchvision ``state_dict`` in ``.pth``/``.pt`` or ``.safetensors``
  (``vizcli.common.checkpoints``: ``weights_only=True``, never arbitrary pickle);
* ``"DEFAULT"`` or an enum name (``IMAGENET1K_V1``) – torchvision's pretrained weights,
  downloaded once into the torch hub cache (progress on stderr, torchvision's hash check).
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vizcli.common.errors import BadInput, RunFailure, error_text

DEFAULT_CROP = 224
WEIGHTS_URL_VARIABLE = "VIZCLI_WEIGHTS_URL"  # a mirror for torchvision's download address
RANDOM_WEIGHTS_NOTE = "random weights: shapes and counts are exact; predictions are meaningless"


@dataclass
class LoadedModel:
    """A model in eval mode, what its weights are, and its class names (if known)."""

    name: str
    model: Any  # torch.nn.Module
    weights: str  # "random (seed 0)", a file path, or "DEFAULT (IMAGENET1K_V1)"
    pretrained: bool
    categories: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict[str, Any])

    @property
    def weights_note(self) -> str:
        if self.pretrained:
            return f"weights: {self.weights}"
        return f"{self.weights}: {RANDOM_WEIGHTS_NOTE.removeprefix('random weights: ')}"


# torchvision's model namespaces, and the task each serves
TASK_MODULES = {
    "classification": "torchvision.models",
    "segmentation": "torchvision.models.segmentation",
    "detection": "torchvision.models.detection",
    "video": "torchvision.models.video",
}
SEGMENTATION_INPUT = 520  # the resize size of the segmentation weights' transforms (their _ops are at 520×520)
DETECTION_INPUT = 800  # the detectors resize inside the model (min_size 800 for most); their _ops are at 800×800
VIDEO_FRAMES = 16  # the clip length torchvision's video figures are for


def classification_models() -> list[str]:
    """Names torchvision registers as classification models (``resnet18``, ``vgg16``, …)."""
    return models_for_task("classification")


@functools.cache
def _names_for_task(task: str) -> tuple[str, ...]:
    import importlib

    import torchvision.models

    module = importlib.import_module(TASK_MODULES[task])
    return tuple(sorted(torchvision.models.list_models(module=module)))


def models_for_task(task: str) -> list[str]:
    """Names torchvision registers under ``task`` (a key of ``TASK_MODULES``)."""
    return list(_names_for_task(task))


# The files a Hugging Face / sentence-transformers model folder is read from (vizcli.text_models reads
# some of them, transformers and tokenizers the rest): what an output may never overwrite.
MODEL_FOLDER_FILES = (
    "config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.txt",
    "merges.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model", "model.safetensors", "model.safetensors.index.json",
    "pytorch_model.bin", "pytorch_model.bin.index.json", "generation_config.json", "modules.json", "sentence_bert_config.json",
    "config_sentence_transformers.json",
)


def model_folder_files(folder: str | os.PathLike[str]) -> list[str]:
    """The files of a model ``folder`` that loading it reads (``MODEL_FOLDER_FILES``, weight shards,
    a module's own ``config.json`` one level down such as ``1_Pooling/config.json``), for
    ``refuse_overwriting_inputs``; other files there (an earlier run's output) are not inputs."""
    base = Path(folder)
    found = [base / name for name in MODEL_FOLDER_FILES]
    try:
        found += sorted(base.glob("model-*-of-*.safetensors")) + sorted(base.glob("pytorch_model-*-of-*.bin"))
        found += sorted(base.glob("*/config.json"))
    except OSError:
        pass
    return [str(path) for path in found if path.is_file()]


def model_input_files(model: str | None) -> list[str]:
    """The files ``--model`` is read from: a model folder's (``model_folder_files``), or the file itself;
    none for a name (a library's model, the bundled one, a Hugging Face cache name)."""
    if not model:
        return []
    if os.path.isdir(model):
        return model_folder_files(model)
    return [model] if os.path.isfile(model) else []


def known_models() -> dict[str, str]:
    """Every model ``shapes`` runs, name → task."""
    return {name: task for task in TASK_MODULES for name in models_for_task(task)}


def model_task(name: str) -> str:
    """``"classification"``, ``"segmentation"``, ``"detection"`` or ``"video"`` for a known ``name``."""
    return known_models()[check_model_name(name, any_task=True)]


def check_model_name(name: str, any_task: bool = False) -> str:
    """``name`` if torchvision knows it (a classification model unless ``any_task``), else ``BadInput``
    with the closest names."""
    known = list(known_models()) if any_task else classification_models()
    if name in known:
        return name
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else "see torchvision.models.list_models()"
    if "/" not in name and not name.startswith((".", "~")) and Path(name).is_dir():
        hint += f" (a bare name is a library's model; a folder is named by a path: ./{name})"
    if name.endswith(".py"):
        hint = f"a Python file is read as FILE.py:FACTORY, the function that builds the model: give {name}:build (its name)"
    what = "torchvision model" if any_task else "torchvision classification model"
    raise BadInput(f"not a {what}; {hint}", parameter="model", value=name)


# How torchvision builds these models for their DEFAULT weights: googlenet's pretrained model has
# no auxiliary classifiers (inception_v3's keeps AuxLogits); init_weights=True is their default,
# given so torchvision does not warn about a future change.
_BUILD_AS_PRETRAINED: dict[str, dict[str, Any]] = {
    "googlenet": {"aux_logits": False, "init_weights": True},
    "inception_v3": {"init_weights": True},
}
# Detectors whose pretrained backbone torchvision builds with FrozenBatchNorm2d (the *_v2 ones and
# SSD keep BatchNorm2d): a randomly initialised build must match, or parameter counts and
# state_dict keys differ from the weights'.
_FROZEN_NORM_DETECTORS = (
    "fasterrcnn_resnet50_fpn", "fasterrcnn_mobilenet_v3_large_fpn", "fasterrcnn_mobilenet_v3_large_320_fpn",
    "maskrcnn_resnet50_fpn", "keypointrcnn_resnet50_fpn", "retinanet_resnet50_fpn", "fcos_resnet50_fpn",
)


def build_model(name: str, num_classes: int | None = None) -> Any:
    """``name`` with random weights, built the way torchvision builds it for its DEFAULT weights.

    Nothing is downloaded: segmentation and detection backbones start random too
    (``weights_backbone=None``); segmentation models keep the auxiliary head their weights carry.
    ``num_classes``: a head of another size (a fine-tuned detector's), else torchvision's.
    """
    import torchvision.models

    task = model_task(name)
    options = dict(_BUILD_AS_PRETRAINED.get(name, {}))
    if num_classes is not None:
        options["num_classes"] = num_classes
    if name.startswith("vit_"):  # torchvision sizes the position embedding for its weights (vit_h_14: 518)
        options["image_size"] = _default_meta(name).get("min_size", (DEFAULT_CROP,))[0]
    if task in ("segmentation", "detection"):
        options["weights_backbone"] = None
    if task == "segmentation" and not name.startswith("lraspp"):
        options["aux_loss"] = True
    model = torchvision.models.get_model(name, weights=None, **options)
    if name in _FROZEN_NORM_DETECTORS:
        _freeze_batch_norms(model.backbone.body)
    return model


def _freeze_batch_norms(module: Any) -> None:
    """Replace every ``BatchNorm2d`` under ``module`` with torchvision's ``FrozenBatchNorm2d`` (buffers only)."""
    import torch.nn as nn
    from torchvision.ops.misc import FrozenBatchNorm2d

    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            setattr(module, name, frozen)
        else:
            _freeze_batch_norms(child)


def load_model(name: str = "resnet18", weights: str | None = None, seed: int = 0) -> LoadedModel:
    """Build ``name`` with the requested weights, in eval mode.

    ``weights``: None (seeded random), a path to a state_dict file, or ``"DEFAULT"``.
    """
    import torch

    check_model_name(name, any_task=True)
    named = weights_enum_for(name, weights) if weights is not None else None
    if named is not None:
        return _load_pretrained(name, named)
    if weights is not None and weights.upper() == "DEFAULT":
        raise BadInput(f"{name} has no pretrained weights in torchvision; pass weights=PATH", parameter="weights", value=weights)
    torch.manual_seed(seed)
    if weights is None:
        model = build_model(name).eval()
        return LoadedModel(name=name, model=model, weights=f"random weights (seed {seed})", pretrained=False)
    from vizcli.common.checkpoints import load_state_dict_file

    state_dict = load_state_dict_file(weights)
    classes = detector_class_count(name, state_dict)
    model = build_model(name, num_classes=classes)
    _apply_state_dict(model, state_dict, weights)
    model.eval()
    categories = _imagenet_categories(name)
    if classes is not None and categories is not None and classes != len(categories):
        categories = None  # a fine-tuned head: its classes are not torchvision's
    return LoadedModel(
        name=name, model=model, weights=str(weights), pretrained=True, categories=categories,
        meta={} if classes is None else {"num_classes": classes},
    )


# Where a detector's class count shows in its state_dict: the key, and that tensor's rows a class
# (RetinaNet's classification head has 9 anchors a position, one row each per class).
_CLASS_ROWS = {
    "roi_heads.box_predictor.cls_score.weight": 1,  # Faster/Mask/Keypoint R-CNN
    "head.classification_head.cls_logits.weight": 0,  # RetinaNet (anchors) and FCOS (1)
}


def detector_class_count(name: str, state_dict: dict[str, Any]) -> int | None:
    """The class count a detector's checkpoint was trained with (its classifier's rows), else None
    (not a detector, or no classifier key): a fine-tuned detector is built with its own head."""
    if model_task(name) != "detection":
        return None
    for key, rows in _CLASS_ROWS.items():
        tensor = state_dict.get(key)
        if tensor is None or not getattr(tensor, "shape", None):
            continue
        per_class = rows or (9 if name.startswith("retinanet") else 1)
        count = int(tensor.shape[0])
        if count % per_class or count // per_class < 1:
            return None  # let the shape check name the tensor
        return count // per_class
    return None


def _imagenet_categories(name: str) -> list[str] | None:
    import torchvision.models

    try:
        return list(torchvision.models.get_model_weights(name).DEFAULT.meta["categories"])
    except (KeyError, AttributeError, ValueError):
        return None


def _apply_state_dict(model: Any, state_dict: dict[str, Any], path: str) -> None:
    """Load ``state_dict`` into ``model`` after checking it fits. A BatchNorm's step counter
    (``num_batches_tracked``) where the model has a frozen norm (torchvision builds its detectors'
    backbones with ``FrozenBatchNorm2d``, a model built with ``weights=None`` has ``BatchNorm2d``) is
    left out: an eval-mode BatchNorm computes what the frozen one does, from the same four tensors."""
    from vizcli.common.checkpoints import check_state_dict_fits

    expected = model.state_dict()
    usable = {key: tensor for key, tensor in state_dict.items()
              if key in expected or not key.endswith(".num_batches_tracked")}
    model.load_state_dict(check_state_dict_fits(expected, usable, parameter="weights", value=path))


def weights_enum_for(name: str, spec: str) -> Any | None:
    """torchvision's weights enum member ``spec`` names for ``name`` (``DEFAULT``, ``IMAGENET1K_V1``, …), else None."""
    import torchvision.models

    try:
        enum = torchvision.models.get_model_weights(name)
    except (KeyError, ValueError):
        return None
    if spec.upper() == "DEFAULT":
        return enum.DEFAULT
    return enum.__members__.get(spec)


def _load_pretrained(name: str, weights_enum: Any) -> LoadedModel:
    """Download (once, into the torch hub cache, with torchvision's hash check) and load ``weights_enum``.

    ``VIZCLI_WEIGHTS_URL`` replaces the download address (a mirror); the file name must still carry
    the first hex digits of its sha256, as torchvision's do, for the hash check.
    """
    import sys
    import urllib.error

    import torch

    url = os.environ.get(WEIGHTS_URL_VARIABLE) or weights_enum.url
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    label = f"{type(weights_enum).__name__}.{weights_enum.name}"
    try:
        with contextlib.redirect_stdout(sys.stderr):  # torch.hub prints its "Downloading: …" line on stdout
            state_dict = torch.hub.load_state_dict_from_url(
                url, map_location="cpu", progress=sys.stderr.isatty(), check_hash=True, weights_only=True
            )
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", None) or getattr(error, "strerror", None) or error
        raise RunFailure(
            f"downloading {url} into {folder} failed ({error_text(reason)}); check the network, put the file "
            "there yourself, or pass weights=PATH", parameter="weights", value=label,
        ) from None
    except RuntimeError as error:  # torch.hub's hash check, or a file that is no checkpoint
        raise RunFailure(
            f"{url}: {error_text(error)}; nothing was kept in {folder}", parameter="weights", value=label,
        ) from None
    model = build_model(name)
    _apply_state_dict(model, state_dict, url)
    model.eval()
    return LoadedModel(
        name=name,
        model=model,
        weights=f"{weights_enum.name} (torchvision, {url.rsplit('/', 1)[-1]})",
        pretrained=True,
        categories=list(weights_enum.meta.get("categories", [])) or None,
        meta=dict(weights_enum.meta),
    )


def _default_meta(name: str) -> dict[str, Any]:
    import torchvision.models

    try:
        return dict(torchvision.models.get_model_weights(name).DEFAULT.meta)
    except (KeyError, ValueError, AttributeError):
        return {}


def documented_macs(name: str) -> float | None:
    """torchvision's documented GMACs for ``name`` (its ``_ops`` figure), when it has one."""
    import torchvision.models

    try:
        return float(torchvision.models.get_model_weights(name).DEFAULT.meta["_ops"])
    except (KeyError, ValueError, AttributeError):
        return None


def documented_crop_size(name: str) -> int:
    """The crop size of ``name``'s DEFAULT weights' transforms (224 for most, 299 for inception_v3)."""
    import torchvision.models

    try:
        crop = torchvision.models.get_model_weights(name).DEFAULT.transforms().crop_size
    except (KeyError, ValueError, AttributeError, TypeError):
        return DEFAULT_CROP
    return int(crop[0] if isinstance(crop, (list, tuple)) else crop)


def classification_preprocessing(name: str) -> tuple[int, int]:
    """(resize, crop) of ``name``'s DEFAULT weights' transforms: (256, 224) for most, (342, 299) for inception_v3."""
    import torchvision.models

    crop = documented_crop_size(name)
    try:
        resize = torchvision.models.get_model_weights(name).DEFAULT.transforms().resize_size
    except (KeyError, ValueError, AttributeError, TypeError):
        return round(crop * 256 / 224), crop
    return int(resize[0] if isinstance(resize, (list, tuple)) else resize), crop


def documented_input(name: str) -> tuple[int, ...]:
    """The per-sample input torchvision's figures for ``name`` are at: ``(3, crop, crop)`` for
    classification, ``(3, 520, 520)`` segmentation, ``(3, 800, 800)`` detection, ``(3, 16, crop, crop)`` video."""
    task = model_task(name)
    if task == "segmentation":
        return (3, SEGMENTATION_INPUT, SEGMENTATION_INPUT)
    if task == "detection":
        return (3, DETECTION_INPUT, DETECTION_INPUT)
    crop = documented_crop_size(name)
    return (3, VIDEO_FRAMES, crop, crop) if task == "video" else (3, crop, crop)
