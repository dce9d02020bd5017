"""``vizcli shapes --model`` beyond torchvision: your own ``nn.Module``, and BERT-family text models.

* ``path/to/file.py:factory`` or ``package.module:factory``: a callable that returns an
  ``nn.Module``, called with ``--model-arg key=value`` (values read as Python literals, else as
  strings). **This runs your code**, as ``torchinfo.summary(my_model, ...)`` does inside your
  script: it happens only when ``--model`` names a file or module this way.
* a ``torch.export`` program (``model.pt2``, from ``torch.export.save``): its graph and weights,
  with the example input it was exported with (or ``--input-size``). The archive is vetted from
  its own listing and JSON first (``vizcli.common.untrusted``): one that holds anything torch would
  unpickle or run (opaque or custom objects, pickled weights, compiled code) is refused before
  torch opens it, and every ``torch.load`` the loader makes is also forced to ``weights_only=True``.
* a Hugging Face model folder (``config.json``, weights, tokenizer), a name already in the
  Hugging Face cache (``ORG/NAME``: nothing is downloaded), or ``minilm``: the bundled
  all-MiniLM-L6-v2. Built with transformers' ``AutoModel`` and loaded from safetensors or a
  weights-only checkpoint (never an arbitrary pickle). The input is ``--text "…"`` tokenized
  with the model's own tokenizer, or ``--seq-len N`` seeded random token ids.

Every operator is counted by ``vizcli.shapes.count`` (the attention matmuls of
``scaled_dot_product_attention`` and of eager attention included), so a BERT layer counts
``L·(4H² + 2HI) + 2L²H`` MACs at sequence length L, hidden size H and intermediate size I.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vizcli.common.errors import BadInput, RunFailure, error_text
from vizcli.common.sizes import MAX_INPUT_VALUES

TEXT_SHORT_NAMES = {"minilm": None, "all-minilm-l6-v2": None}  # → the bundled model (vizcli.text_models.folders)
FACTORY = re.compile(r"^(?P<target>[^:]+\.py|[A-Za-z_][\w.]*):(?P<factory>[A-Za-z_]\w*)$")
MAX_SEQ_LEN = 8192


@dataclass
class AnyModel:
    """A model ``vizcli shapes`` did not find in torchvision: the module, its example input, and how it was made."""

    module: Any
    name: str
    kind: str  # "factory", "exported" or "text"
    example: Any = None  # the input tensor (text: token ids [1, L])
    steps: tuple[str, ...] = ()
    note: str = ""


def is_any_model(spec: str) -> bool:
    """Whether ``--model spec`` names a factory, an exported program, a text model folder, a Hugging Face
    ``ORG/NAME`` or a short text-model name (torchvision's names have no ``/``).

    A bare name (``resnet18``) always means the library's model, even where a folder of that name
    holds a ``config.json``: a folder is named by a path (``./resnet18``, ``models/bert``)."""
    if spec.lower() in TEXT_SHORT_NAMES or FACTORY.match(spec) or is_exported_program(spec):
        return True
    path = Path(spec).expanduser()
    if is_path_spelling(spec) and path.is_dir() and (path / "config.json").exists():
        return True
    from vizcli.text_models.folders import HUB_REPO_ID

    return spec.count("/") == 1 and not spec.startswith((".", "/", "~")) and HUB_REPO_ID.fullmatch(spec) is not None


def is_path_spelling(spec: str) -> bool:
    """Whether ``spec`` is written as a path (``./x``, ``~/x``, ``/x``, ``a/b``), not a bare name."""
    import os

    return spec.startswith((".", "~")) or "/" in spec or (os.sep != "/" and os.sep in spec)


def is_exported_program(spec: str) -> bool:
    return spec.lower().endswith(".pt2")


def model_files(spec: str) -> list[str]:
    """The files ``--model spec`` reads, for ``refuse_overwriting_inputs``: a factory's ``.py``, a
    ``.pt2``, or a model folder's own files (``model_folder_files``); none for a library model's name."""
    match = FACTORY.match(spec)
    if match is not None:
        target = match.group("target")
        return [str(Path(target).expanduser())] if target.endswith(".py") else []
    if is_exported_program(spec):
        return [str(Path(spec).expanduser())]
    path = Path(spec).expanduser()
    if is_path_spelling(spec) and path.is_dir():
        from vizcli.common.models import model_folder_files

        return model_folder_files(path)
    return []


def _with_modes(module: Any) -> Any:
    """``module`` (a ``torch.export`` program's, whose ``train()``/``eval()`` raise NotImplementedError)
    with ``nn.Module``'s own: they set the ``training`` flags, and the graph runs as it was exported
    (dropout and batch norm as at export). ``--train`` and ``--compare`` switch modes; they then run."""
    import types

    import torch.nn as nn

    module.train = types.MethodType(nn.Module.train, module)
    module.eval = types.MethodType(nn.Module.eval, module)
    return module


def load_exported(spec: str) -> AnyModel:
    """A ``torch.export`` program saved with ``torch.export.save``: its module and example input."""
    import pickle
    import zipfile

    from vizcli.common.files import require_file

    path = require_file(spec, "model", "a .pt2 file saved by torch.export.save")
    if not zipfile.is_zipfile(path):
        raise BadInput("not a torch.export program (a .pt2 is a zip archive); save one with torch.export.save",
                       parameter="model", value=spec)
    from vizcli.common.checkpoints import check_declared_sizes
    from vizcli.common.untrusted import check_pt2_archive

    check_declared_sizes(path, spec, parameter="model")
    check_pt2_archive(path, spec)  # from the listing and JSON, before torch reads anything
    import torch

    try:
        with _weights_only_loads():  # defence in depth: the archive was vetted above
            program = torch.export.load(str(path))
    except pickle.UnpicklingError as error:
        raise BadInput(f"refused: it holds pickled objects beyond tensors ({error_text(error, 100)}); loading them could "
                       "run code", parameter="model", value=spec) from None
    except Exception as error:  # the archive's own checks: version, missing entries, bad JSON
        raise BadInput(f"cannot be loaded as a torch.export program ({type(error).__name__}: {error_text(error, 120)})",
                       parameter="model", value=spec) from None
    example = None
    inputs = getattr(program, "example_inputs", None)
    if inputs:
        args, kwargs = inputs
        if len(args) == 1 and not kwargs and isinstance(args[0], torch.Tensor):
            example = args[0]
    return AnyModel(_with_modes(program.module()), path.name, "exported", example=example,
                    steps=(f"the program's example input {'×'.join(map(str, example.shape))}",) if example is not None else (),
                    note="a torch.export program: its own graph and weights (loaded with weights_only=True), run as exported")


@contextlib.contextmanager
def _weights_only_loads() -> Iterator[None]:
    """``torch.load`` with ``weights_only=True`` whatever its caller asks (``torch.export.load`` falls back to
    ``weights_only=False`` for the example inputs and for pickled payloads)."""
    import torch

    original = torch.load

    def load(*args: Any, **kwargs: Any) -> Any:
        kwargs["weights_only"] = True
        return original(*args, **kwargs)

    torch.load = load
    try:
        yield
    finally:
        torch.load = original


def parse_model_args(pairs: list[str]) -> dict[str, Any]:
    """``["num_classes=10", "name=tiny"]`` → ``{"num_classes": 10, "name": "tiny"}`` (literals where they parse)."""
    values: dict[str, Any] = {}
    for pair in pairs:
        key, equals, text = pair.partition("=")
        key = key.strip()
        if not equals or not key.isidentifier():
            raise BadInput("give key=value (a Python identifier, '=', a value)", parameter="model_arg", value=pair)
        try:
            values[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError, RecursionError, MemoryError):
            values[key] = text
    return values


def load_factory(spec: str, model_args: dict[str, Any]) -> AnyModel:
    """Import ``file.py:factory`` or ``package.module:factory`` and call it (the user's own code)."""
    import torch.nn as nn

    match = FACTORY.match(spec)
    if match is None:
        raise BadInput("give path/to/file.py:factory or package.module:factory", parameter="model", value=spec)
    target, name = match.group("target"), match.group("factory")
    if target.endswith(".py"):
        module = _import_file(Path(target).expanduser(), spec)
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as error:
            raise BadInput(f"cannot import {target} ({error_text(error, 120)}); check the module name or give a .py file",
                           parameter="model", value=spec) from None
    factory = getattr(module, name, None)
    if not callable(factory):
        raise BadInput(f"{target} has no callable {name!r}; name the function that builds the model", parameter="model", value=spec)
    _check_arguments(factory, name, model_args, spec)
    try:
        built = factory(**model_args)
    except Exception as error:  # the arguments fit its signature: whatever it raises is the factory's own failure
        raise RunFailure(f"{name}() raised {type(error).__name__}: {error_text(error, 160)}", parameter="model", value=spec) from None
    if not isinstance(built, nn.Module):
        raise BadInput(f"{name}() returned {type(built).__name__}, not a torch.nn.Module", parameter="model", value=spec)
    arguments = ", ".join(f"{key}={value!r}" for key, value in model_args.items())
    return AnyModel(built.eval(), spec, "factory", note=f"built by {name}({arguments}): your code, its own weights")


def _check_arguments(factory: Any, name: str, model_args: dict[str, Any], spec: str) -> None:
    """``BadInput`` when ``model_args`` do not fit ``factory``'s signature (checked before the call, so a
    ``TypeError`` raised inside the factory is its own failure, not a wrong argument)."""
    import inspect

    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # a builtin without a signature: the call itself will tell
        return
    try:
        signature.bind(**model_args)
    except TypeError as error:
        wanted = ", ".join(parameter for parameter in signature.parameters) or "no arguments"
        raise BadInput(f"{name}({wanted}) does not take these arguments ({error_text(error, 120)}); check model_arg=KEY=VALUE",
                       parameter="model", value=spec) from None


def _import_file(path: Path, spec: str) -> Any:
    import importlib.util
    import sys

    if not path.is_file():
        raise BadInput("no such file; give path/to/file.py:factory", parameter="model", value=spec)
    module_spec = importlib.util.spec_from_file_location(f"vizcli_user_model_{abs(hash(str(path.resolve())))}", path)
    if module_spec is None or module_spec.loader is None:
        raise BadInput("cannot be imported as Python", parameter="model", value=spec)
    module = importlib.util.module_from_spec(module_spec)
    sys.path.insert(0, str(path.resolve().parent))  # the file's own imports of its neighbours work, as `python file.py`
    try:
        module_spec.loader.exec_module(module)
    except SyntaxError as error:
        raise BadInput(f"{path.name} line {error.lineno}: {error.msg}", parameter="model", value=spec) from None
    except Exception as error:
        raise RunFailure(f"importing {path.name} raised {type(error).__name__}: {error_text(error, 160)}", parameter="model",
                         value=spec) from None
    finally:
        sys.path.remove(str(path.resolve().parent))
    return module


def load_text_model(spec: str, text: str | None, seq_len: int | None, seed: int = 0) -> AnyModel:
    """A BERT-family folder (or ``minilm``) with its example: ``text`` tokenized, or ``seq_len`` seeded ids."""
    import torch

    from vizcli.common.checkpoints import check_state_dict_fits
    from vizcli.text_models.bert_config import strip_prefix
    from vizcli.text_models.folders import (
        load_tokenizer,
        locate_model,
        model_max_length,
        read_json,
        read_weights,
        transformers_model,
        weights_file,
    )

    folder, name, bundled = locate_model(None if spec.lower() in TEXT_SHORT_NAMES else spec)
    config = read_json(folder / "config.json", name)
    weights = weights_file(folder, name)
    check_declared_size(config, weights, name)  # before transformers allocates what config.json declares
    tokenizer = load_tokenizer(folder, name)
    model = transformers_model(folder, name)
    state_dict = strip_prefix(read_weights(weights, name))
    prefix = getattr(model, "base_model_prefix", "")
    if prefix:
        state_dict = strip_prefix(state_dict, (prefix + ".",))
    usable = check_state_dict_fits(model.state_dict(), state_dict, parameter="model", value=name,
                                   optional=lambda key: key.startswith("pooler.") or key.endswith("position_ids"), allow_unexpected=True)
    model.load_state_dict(usable, strict=False)
    limit = model_max_length(folder, config, name)
    if text is not None and seq_len is not None:
        raise BadInput("give text=… or seq_len=N, not both", parameter="seq_len", value=seq_len)
    if text is not None:
        ids = tokenizer.encode(text).ids
        if len(ids) > limit:
            raise BadInput(f"{len(ids)} tokens, more than the model's {limit}; shorten it", parameter="text", value=text[:40])
        steps = (f"tokenized by the model's tokenizer: {len(ids)} tokens",)
    else:
        length = 16 if seq_len is None else seq_len
        if not 2 <= length <= min(limit, MAX_SEQ_LEN):
            raise BadInput(f"use 2..{min(limit, MAX_SEQ_LEN)} (the model's position limit)", parameter="seq_len", value=length)
        generator = torch.Generator().manual_seed(seed)
        vocabulary = int(config.get("vocab_size", 30522))
        ids = torch.randint(1000 if vocabulary > 2000 else 0, vocabulary, (length,), generator=generator).tolist()
        steps = (f"seq_len {length}: seeded random token ids",)
    shown = "all-MiniLM-L6-v2 (bundled)" if bundled else name
    # called with the ids alone: transformers' encoders then attend to every token (an all-ones mask)
    return AnyModel(model.eval(), shown, "text", example=torch.tensor([ids], dtype=torch.long), steps=steps,
                    note=f"{config.get('model_type', 'text')} model from {'the bundled package' if bundled else folder}, its trained weights")


_DECLARED_SIZES = ("vocab_size", "hidden_size", "num_hidden_layers", "intermediate_size", "max_position_embeddings",
                   "type_vocab_size", "num_attention_heads")
MAX_DECLARED_SIZE = 1 << 31  # no real dimension comes near it; beyond it is a mistake (or an attack)
WEIGHTS_SLACK = 4  # declared float32 bytes per byte of the weights file beyond which config.json is not believed


def declared_parameters(config: dict[str, Any]) -> int:
    """The parameters a BERT-family ``config.json`` declares (embeddings, layers, pooler), about:
    ``(V + P + T)·H + L·(4H² + 2HI + 9H + I) + H²`` for vocabulary V, positions P, token types T,
    hidden size H, L layers and intermediate size I."""
    hidden = int(config.get("hidden_size", 0))
    inner = int(config.get("intermediate_size", 4 * hidden))
    layers = int(config.get("num_hidden_layers", 0))
    rows = int(config.get("vocab_size", 0)) + int(config.get("max_position_embeddings", 0)) + int(config.get("type_vocab_size", 0))
    return rows * hidden + layers * (4 * hidden * hidden + 2 * hidden * inner + 9 * hidden + inner) + hidden * hidden


def check_declared_size(config: dict[str, Any], weights: Path, name: str) -> None:
    """Refuse, before anything is allocated, a ``config.json`` whose sizes are not positive integers, or
    that declares a model far larger than its weights file holds or than this process may use (a
    77 GB embedding in a folder of a few MB would otherwise be allocated first and fail after)."""
    from vizcli.common.runtime import memory_budget

    for key in _DECLARED_SIZES:
        value = config.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_DECLARED_SIZE):
            raise BadInput(f"config.json: {key} is {value!r}; it must be a whole number from 1 to {MAX_DECLARED_SIZE:,}",
                           parameter="model", value=name)
    declared = 4 * declared_parameters(config)  # float32 bytes, as transformers builds it
    held = weights.stat().st_size
    if declared > WEIGHTS_SLACK * held + (64 << 20):
        shown = f"{held / 1e6:,.1f} MB" if held >= 1e6 else f"{held:,} bytes"
        raise BadInput(f"config.json declares about {declared / 1e9:,.1f} GB of float32 parameters, but {weights.name} holds "
                       f"{shown}; the config does not describe these weights: check config.json",
                       parameter="model", value=name)
    budget = memory_budget()
    if budget is not None and declared > budget:
        raise BadInput(f"config.json declares about {declared / 1e9:,.1f} GB of float32 parameters, and this process may use "
                       f"{budget / 1e9:,.1f} GB more (ulimit -v, free memory); run where more memory is free",
                       parameter="model", value=name)


def any_input_size(text: str) -> tuple[int, ...]:
    """``"16"`` or ``"4x10"``: the per-sample input shape of your own model (no channel rule)."""
    try:
        size = tuple(int(part) for part in text.lower().split("x"))
    except ValueError:
        raise BadInput("give sizes like 3x224x224 or 64 (the shape of one sample, batch excluded)", parameter="input_size", value=text) from None
    if not size or min(size) < 1 or math.prod(size) > MAX_INPUT_VALUES:
        raise BadInput("each size at least 1, and at most 3x4096x4096 values in all", parameter="input_size", value=text)
    return size
