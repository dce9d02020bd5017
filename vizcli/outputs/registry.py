"""Every output kind, by the schema ids it writes: the one list a new command adds its kind to.

Kinds are named ``module:attribute`` and imported only when an output of theirs is read.
"""

from __future__ import annotations

import importlib
from typing import Any

from vizcli.common.errors import BadInput
from vizcli.datasets.kinds import OutputKind

KINDS = ("vizcli.roi.kind:ROI_KIND", "vizcli.embed.kind:EMBED_KIND")
# files other commands build beside an output of a kind, and the function (output path) -> problems that checks them
COMPANION_CHECKS = {"embed": ("vizcli.search.index:verify_index",)}


def all_kinds() -> list[OutputKind]:
    kinds = []
    for name in KINDS:
        module, _, attribute = name.partition(":")
        kinds.append(getattr(importlib.import_module(module), attribute))
    return kinds


def kind_of(metadata: dict[str, Any], path: str, parameter: str = "stored") -> OutputKind:
    """The kind whose schema ids include ``metadata["schema"]``; one ``BadInput`` when none does."""
    schema = str(metadata.get("schema") or "")
    for kind in all_kinds():
        if schema == kind.schema or schema in kind.single_schemas:
            return kind
    known = ", ".join(sorted({s for kind in all_kinds() for s in (kind.schema, *kind.single_schemas)}))
    raise BadInput(f"holds schema {schema or 'none'!r}, which is no output of vizcli roi, detect or embed (those are {known}); "
                   "give one of their outputs", parameter=parameter, value=path)


def companion_problems(kind: OutputKind, path: str) -> list[str]:
    """What the checks of files built beside the output (a search index) found; empty when all match or none exist."""
    problems: list[str] = []
    for spec in COMPANION_CHECKS.get(kind.command, ()):
        problems += OutputKind.function_named(spec)(path)
    return problems
