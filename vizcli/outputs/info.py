"""``vizcli info OUTPUT``: what an output holds, read from the output alone.

Its kind and form, rows (counted, and as recorded), columns and their types, the recorded worker
settings and their version, the model and weights (with the weights' sha256), and the problems
recorded beside it. Nothing is recomputed; only metadata, footers and the key column are read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

INFO_SCHEMA = "vizcli.info/1"


def describe_output(path: str) -> dict[str, Any]:
    """A JSON-ready description of the output at ``path`` (schema ``vizcli.info/1``)."""
    from vizcli.datasets.kinds import SETTINGS_VERSION_KEY
    from vizcli.outputs.reading import about_stored, open_with_kind

    with about_stored():
        stored, kind, rows_of = open_with_kind(path)
        counted = sum(batch.num_rows for batch in rows_of([kind.key]))
        items = len({value for batch in rows_of([kind.key]) for value in batch.column(kind.key).to_pylist()})
        schema = next(iter(rows_of(None))).schema if stored.form == "file" else stored.schema
    metadata = stored.metadata
    problems = _problems(path, stored.form)
    return {
        "schema": INFO_SCHEMA,
        "output": path,
        "kind": kind.command,
        "form": {"parquet": "Parquet file", "shards": f"shard folder ({len(stored.units)} shards)",
                 "file": f"single-input {Path(path).suffix} file"}[stored.form],
        "output_schema": stored.schema_id,
        "complete": stored.complete,
        "rows": counted,
        "recorded_rows": stored.declared_rows,
        "items": items,
        "item": kind.key,
        "row": kind.describe,
        "columns": {field.name: str(field.type) for field in schema} if schema is not None else {},
        "model": metadata.get("model") or metadata.get("detector") or (metadata.get("settings") or {}).get("model"),
        "weights": metadata.get("weights"),
        "weights_sha256": metadata.get("weights_sha256"),
        "settings_version": metadata.get(SETTINGS_VERSION_KEY, 1 if "settings" in metadata else None),
        "settings": metadata.get("settings"),
        "inputs": [str(entry.get("file")) for entry in (metadata.get("inputs") or [metadata.get("input") or {}])
                   if isinstance(entry, dict) and entry.get("file")],
        "problems": problems,
        "problems_file": str(_problems_path(path)) if problems else None,
    }


def info_lines(description: dict[str, Any]) -> list[str]:
    """``describe_output``'s description as aligned ``name: value`` lines."""
    rows, recorded = description["rows"], description["recorded_rows"]
    rows_text = f"{rows:,}" + (f" (the run recorded {recorded:,})" if isinstance(recorded, int) and recorded != rows else "")
    items = description["items"]
    lines = [
        ("output", description["output"]),
        ("kind", f"{description['kind']} ({description['row']}), schema {description['output_schema']}"),
        ("form", description["form"] + ("" if description["complete"] else ", INCOMPLETE: finish it with --resume")),
        ("rows", rows_text),
        (f"{description['item']}s", f"{items:,}"),
        ("model", description["model"] or "—"),
        ("weights", description["weights"] or "—"),
        ("weights sha256", description["weights_sha256"] or "—"),
        ("input files", ", ".join(description["inputs"]) or "— (verify recomputes from stored texts or image paths)"),
        ("problems", f"{description['problems']:,} in {description['problems_file']}" if description["problems"] else "none recorded"),
    ]
    settings = description["settings"]
    if settings:
        shown = ", ".join(f"{name}={value}" for name, value in sorted(settings.items()) if value not in (None, ""))
        lines.append((f"settings (v{description['settings_version']})", shown))
    lines.append(("columns", ", ".join(f"{name} {kind}" for name, kind in description["columns"].items())))
    width = max(len(name) for name, _ in lines)
    return [f"{name + ':':<{width + 1}} {value}" for name, value in lines]


def _problems_path(path: str) -> Path:
    from vizcli.datasets.sink import problems_path_for

    return problems_path_for(path if not Path(path).is_dir() else path.rstrip("/") + "/")


def _problems(path: str, form: str) -> int:
    if form == "file":
        return 0
    problems = _problems_path(path)
    if not problems.is_file():
        return 0
    with problems.open("rb") as handle:
        return sum(1 for line in handle if line.strip())
