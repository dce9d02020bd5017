"""Files from elsewhere, vetted before any deserializer reads them: no file vizcli opens runs code.

vizcli treats every file it is given, and every file an output points back to, as untrusted
(the threat model and the table of every path are in ``docs/security.md``). Most formats cannot
carry code (safetensors, JSON, Parquet, ``.npy`` read with ``allow_pickle=False``). Three can, and
each is vetted here from its own listing and JSON before the library that would run it sees it:

* a ``torch.export`` archive (``.pt2``): only the serialized graph (JSON), raw tensor payloads and
  their JSON configs, and the example inputs (a torch pickle of tensors) are allowed. Opaque
  objects, custom objects, pickled weights or constants, legacy pickled state dicts and
  AOTInductor's compiled libraries are refused, naming the entry;
* a pickle that must hold tensors only (the example inputs inside a ``.pt2``): every global it
  would import is checked against the tensor-rebuilding names ``torch.save`` writes;
* a Hugging Face model folder: ``auto_map`` in ``config.json`` or ``tokenizer_config.json`` names
  Python files that transformers would import with ``trust_remote_code``, so it is refused.

The one place where vizcli runs code is ``vizcli shapes --model file.py:factory`` (or
``package.module:factory``), which the user writes to ask for exactly that.
"""

from __future__ import annotations

import io
import pickletools
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from vizcli.common.errors import BadInput, error_text

MAX_CONFIG_BYTES = 64 * 1024 * 1024  # a JSON config larger than this is no torch.export config
MAX_SAMPLE_INPUTS_BYTES = 1024 * 1024 * 1024

# What a torch.export archive may hold, relative to its one top folder. Anything else is refused.
_PT2_ALLOWED = tuple(
    re.compile(pattern)
    for pattern in (
        r"archive_format", r"archive_version", r"byteorder", r"\.data/version", r"\.data/serialization_id",
        r"models/[\w.-]+\.json",  # the serialized graph
        r"data/weights/[\w.-]+_weights_config\.json", r"data/weights/weight_\d+",
        r"data/constants/[\w.-]+_constants_config\.json", r"data/constants/tensor_\d+",
        r"data/sample_inputs/[\w.-]+\.pt",  # a torch pickle of tensors, checked by check_tensor_pickle
        r"extra/[^/]+",  # extra files: read as text
    )
)
_PT2_REFUSED_WHY = (
    ("opaque_obj_", "an opaque object, which torch unpickles with plain pickle.loads"),
    ("custom_obj_", "a TorchScript custom object, which torch unpickles"),
    ("aotinductor/", "AOTInductor's compiled code, which torch would load and run"),
    ("data/weights/", "pickled weights (the legacy layout), which torch unpickles"),
    ("data/constants/", "pickled constants (the legacy layout), which torch unpickles"),
    ("serialized_", "the pre-2.7 layout of pickled state dicts, which torch unpickles"),
)

# The globals ``torch.save`` writes for tensors, parameters and the containers of example inputs.
_TENSOR_PICKLE_GLOBALS = frozenset(
    {
        "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
        "torch._utils._rebuild_tensor", "collections.OrderedDict", "torch.Size", "torch.device", "builtins.set",
        "builtins.frozenset", "builtins.slice", "builtins.complex",
    }
    | {f"torch.{kind}Storage" for kind in ("Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte",
                                           "Bool", "ComplexFloat", "ComplexDouble", "Untyped")}
    | {f"torch.{dtype}" for dtype in ("float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8",
                                      "uint8", "bool", "complex64", "complex128")}
)
_STRING_PUSHES = frozenset({"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING", "STRING"})
_MEMO_OPS = frozenset({"MEMOIZE", "BINPUT", "LONG_BINPUT", "PUT"})


def check_pt2_archive(path: Path, value: str, parameter: str = "model") -> None:
    """Refuse a ``.pt2`` whose archive holds anything torch would unpickle or run.

    Decided from the zip's own listing, its JSON payload configs and a static scan of the example
    inputs' pickle, before ``torch.export.load`` opens the file.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            names = [name for name in archive.namelist() if not name.endswith("/")]
            root = _one_root(names, parameter, value)
            relative = {name[len(root):]: name for name in names}
            for inside in relative:
                if not any(pattern.fullmatch(inside) for pattern in _PT2_ALLOWED):
                    raise BadInput(f"refused: its entry {inside!r} holds {_why_refused(inside)}; loading it could run code. "
                                   "Export the model again with torch.export.save, without custom or opaque objects",
                                   parameter=parameter, value=value)
            for inside, name in relative.items():
                if inside.endswith(("_weights_config.json", "_constants_config.json")):
                    _check_payload_config(archive, name, inside, set(relative), parameter, value)
                elif inside.startswith("data/sample_inputs/"):
                    data = _read_entry(archive, name, MAX_SAMPLE_INPUTS_BYTES, parameter, value)
                    check_tensor_pickle(data, f"its example inputs ({inside})", parameter, value)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as error:
        raise BadInput(f"cannot be read as a torch.export archive ({error_text(error)})", parameter=parameter, value=value) from None


def check_tensor_pickle(data: bytes, what: str, parameter: str, value: str) -> None:
    """Refuse a torch pickle (a ``torch.save`` zip, or a bare pickle) that would import anything but tensor rebuilders."""
    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as inner:
            pickles = [name for name in inner.namelist() if name.endswith(".pkl")]
            if not pickles:
                raise BadInput(f"{what}: not a torch.save file (no .pkl entry)", parameter=parameter, value=value)
            for name in pickles:
                _check_globals(inner.read(name), what, parameter, value)
    else:
        _check_globals(data, what, parameter, value)


def check_model_folder(folder: Path, name: str, parameter: str = "model") -> None:
    """Refuse a Hugging Face folder that asks transformers to import its own Python files (``auto_map``)."""
    from vizcli.common.parsing import parse_json

    for file_name in ("config.json", "tokenizer_config.json", "processor_config.json", "preprocessor_config.json"):
        file = folder / file_name
        if not file.is_file():
            continue
        if file.stat().st_size > MAX_CONFIG_BYTES:
            raise BadInput(f"{file_name} is {file.stat().st_size:,} bytes; a model config is far smaller", parameter=parameter, value=name)
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise BadInput(f"{file_name} cannot be read ({error_text(error)})", parameter=parameter, value=name) from None
        config = parse_json(text, parameter, name, where=f"{file_name}: ")
        if isinstance(config, dict) and config.get("auto_map"):
            modules = sorted({str(entry).split(".")[0].split("--")[-1] for entry in _flatten(config["auto_map"])})
            raise BadInput(f"refused: its {file_name} asks to import the folder's own Python code ({', '.join(modules)[:80]}) "
                           "through auto_map (trust_remote_code); vizcli runs no code from model folders. Use a model that "
                           "transformers supports natively", parameter=parameter, value=name)


def _flatten(value: Any) -> Iterable[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _flatten(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _flatten(item)
    elif value is not None:
        yield value


def _one_root(names: list[str], parameter: str, value: str) -> str:
    if not names:
        raise BadInput("an empty archive; save a program with torch.export.save", parameter=parameter, value=value)
    roots = {name.split("/", 1)[0] + "/" if "/" in name else "" for name in names}
    if len(roots) != 1 or "" in roots:
        entry = next(name for name in names if "/" not in name) if "" in roots else sorted(roots)[1]
        raise BadInput(f"not a torch.export archive (entry {entry!r} outside the archive's one folder); save one with "
                       "torch.export.save", parameter=parameter, value=value)
    return roots.pop()


def _why_refused(inside: str) -> str:
    for marker, why in _PT2_REFUSED_WHY:
        if marker in inside:
            return why
    return "something other than the graph, tensors and example inputs"


def _read_entry(archive: zipfile.ZipFile, name: str, limit: int, parameter: str, value: str) -> bytes:
    size = archive.getinfo(name).file_size
    if size > limit:
        raise BadInput(f"its entry {name!r} declares {size:,} bytes (at most {limit:,})", parameter=parameter, value=value)
    return archive.read(name)


def _check_payload_config(archive: zipfile.ZipFile, name: str, inside: str, listed: set[str], parameter: str, value: str) -> None:
    from vizcli.common.parsing import parse_json

    text = _read_entry(archive, name, MAX_CONFIG_BYTES, parameter, value).decode("utf-8", errors="replace")
    config = parse_json(text, parameter, value, where=f"{inside}: ")
    entries = config.get("config") if isinstance(config, dict) else None
    if not isinstance(entries, dict):
        raise BadInput(f"{inside}: no 'config' mapping; not a torch.export archive", parameter=parameter, value=value)
    folder = inside.rsplit("/", 1)[0]
    prefix = "weight_" if folder.endswith("weights") else "tensor_"
    for fqn, payload in entries.items():
        if not isinstance(payload, dict):
            raise BadInput(f"{inside}: entry {str(fqn)[:60]!r} is not an object", parameter=parameter, value=value)
        if payload.get("use_pickle"):
            raise BadInput(f"refused: {inside} stores {str(fqn)[:60]!r} as a pickle, which torch would unpickle; loading it "
                           "could run code. Export again with plain tensors", parameter=parameter, value=value)
        path_name = str(payload.get("path_name", ""))
        if not re.fullmatch(re.escape(prefix) + r"\d+", path_name) or f"{folder}/{path_name}" not in listed:
            raise BadInput(f"refused: {inside} points {str(fqn)[:60]!r} at {path_name[:60]!r}, which is not one of the "
                           f"archive's {prefix}N tensor payloads", parameter=parameter, value=value)


def _check_globals(data: bytes, what: str, parameter: str, value: str) -> None:
    """Walk the pickle's opcodes without running them; every import must be a tensor rebuilder."""
    strings: list[str] = []  # the most recent string pushes (for STACK_GLOBAL's module and name)
    try:
        for opcode, argument, _position in pickletools.genops(data):
            if opcode.name in _STRING_PUSHES:
                strings = [*strings[-1:], str(argument)]
                continue
            if opcode.name in _MEMO_OPS:
                continue
            if opcode.name in ("GLOBAL", "INST"):
                imported = str(argument).replace(" ", ".", 1)
                _check_import(imported, what, parameter, value)
            elif opcode.name == "STACK_GLOBAL":
                if len(strings) < 2:
                    raise BadInput(f"refused: {what} builds the name of what it imports at load time; loading it could "
                                   "run code", parameter=parameter, value=value)
                _check_import(f"{strings[0]}.{strings[1]}", what, parameter, value)
            elif opcode.name in ("EXT1", "EXT2", "EXT4"):
                raise BadInput(f"refused: {what} imports through the copyreg extension registry", parameter=parameter, value=value)
            strings = []
    except ValueError as error:  # pickletools: a truncated or malformed stream
        raise BadInput(f"{what} is not a valid pickle ({error_text(error, 80)})", parameter=parameter, value=value) from None


def _check_import(imported: str, what: str, parameter: str, value: str) -> None:
    if imported not in _TENSOR_PICKLE_GLOBALS:
        raise BadInput(f"refused: {what} would import {imported[:80]!r}, which is not a tensor; loading it could run code",
                       parameter=parameter, value=value)
