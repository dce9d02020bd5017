"""What a command's outputs are, declared in one place per command: an ``OutputKind``.

A kind names the schema ids its outputs carry (the dataset schema, and any single-input file
schemas), its key and merge-key columns, the recorded settings it accepts (with their version),
how ``verify`` recomputes rows and how close they must be, and its export layouts. ``vizcli info``,
``verify``, ``merge`` and ``export`` read the kind from the output itself (its recorded ``schema``)
and do the rest through it (``vizcli.outputs``); a new dataset command is one new kind module.

Standard library only at import.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vizcli.common.errors import BadInput

SETTINGS_VERSION_KEY = "settings_version"


@dataclass(frozen=True)
class SettingSpec:
    """One recorded setting: the JSON types it may hold (``type(None)`` when it may be null)."""

    types: tuple[type, ...]
    required: bool = False


@dataclass(frozen=True)
class OutputKind:
    """A command's outputs (see the module docstring). Functions are named ``"module:function"`` and imported when used,
    so reading a kind imports nothing heavy."""

    command: str  # the command that writes these outputs ("roi", "embed")
    schema: str  # the dataset schema id (Parquet files and shard folders)
    key: str  # one value per input item (an image, a text): what verify samples and resume skips
    merge_keys: tuple[str, ...]  # unique per row: merge refuses repeats
    settings_version: int  # bumped when the recorded settings change meaning
    settings: Mapping[str, SettingSpec]  # every setting a worker may be rebuilt from
    recompute: str  # "module:function"(stored_rows, metadata, options) -> (rows, problems): verify's worker
    tolerance: str  # "module:function"(metadata) -> float: the largest difference accepted, by the compute dtype
    derived_columns: tuple[str, ...] = ()  # columns verify recomputes but compares only as stored values (exactly)
    single_schemas: tuple[str, ...] = ()  # schema ids of files written for single inputs (npz, safetensors, pt, npy+json)
    single_rows: str = ""  # "module:function"(arrays, metadata) -> rows table: a single-input file as dataset rows
    export_layouts: Mapping[str, str] = field(default_factory=dict)  # layout name -> "module:function"(output, target, options)
    describe: str = ""  # what one row is, for ``info``

    def function(self, name: str) -> Callable[..., Any]:
        """The function ``name`` (one of the fields above holding ``module:function``), imported now."""
        if not getattr(self, name):
            raise BadInput(f"{self.command} outputs have no {name.replace('_', ' ')}", parameter="output")
        return self.function_named(str(getattr(self, name)))

    @staticmethod
    def function_named(spec: str) -> Callable[..., Any]:
        """The function ``spec`` (``module:function``) names, imported now."""
        module_name, _, attribute = spec.partition(":")
        function: Callable[..., Any] = getattr(importlib.import_module(module_name), attribute)
        return function

    def check_settings(self, metadata: Mapping[str, Any], output: str) -> dict[str, Any]:
        """The recorded worker settings, validated before any worker is rebuilt from them: a version this
        vizcli knows, known names only, and values of the recorded types."""
        settings = metadata.get("settings")
        if not isinstance(settings, dict):
            raise BadInput("records no worker settings (written before vizcli recorded them); rerun it to verify it",
                           parameter="output", value=output)
        version = metadata.get(SETTINGS_VERSION_KEY, 1)
        if not isinstance(version, int) or version > self.settings_version:
            raise BadInput(f"records settings of version {version!r}, newer than this vizcli knows ({self.settings_version}); "
                           "upgrade vizcli to verify it", parameter="output", value=output)
        unknown = sorted(name for name in settings if name not in self.settings)
        if unknown:
            raise BadInput(f"records settings this vizcli does not know ({', '.join(unknown)[:120]}); it was written by "
                           "another version: verify it with that version, or rerun it", parameter="output", value=output)
        for name, spec in self.settings.items():
            if name not in settings:
                if spec.required:
                    raise BadInput(f"records no {name!r} setting; rerun it to verify it", parameter="output", value=output)
                continue
            value = settings[name]
            if not isinstance(value, spec.types) or (isinstance(value, bool) and bool not in spec.types):
                raise BadInput(f"records {name}={str(value)[:60]!r}, which is not a valid setting (expected "
                               f"{' or '.join(sorted(t.__name__ for t in spec.types))}); the output was edited or damaged",
                               parameter="output", value=output)
        return dict(settings)


def setting(*types: type, required: bool = False) -> SettingSpec:
    """A ``SettingSpec`` (``setting(str, type(None))``)."""
    return SettingSpec(types, required)
