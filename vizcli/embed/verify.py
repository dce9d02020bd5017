"""``vizcli embed verify OUTPUT``: recompute sampled texts' vectors with the recorded settings and
weights, from the stored text (``--keep-text``) or the recorded input file, and compare."""

from __future__ import annotations

from typing import Any

from vizcli.common.errors import BadInput
from vizcli.common.formats import EMBED_DATASET_SCHEMA
from vizcli.datasets.verify import DEFAULT_SAMPLE, Verification, verify_output

# by the stored precision: float noise, one quantization step for int8/uint8, packed sign bits exactly
TOLERANCES = {"float32": 1e-4, "float16": 2e-3, "bfloat16": 2e-2, "int8": 1.0, "uint8": 1.0, "binary": 0.0, "ubinary": 0.0}


def verify_embed(output: str, sample: int = DEFAULT_SAMPLE, tolerance: float | None = None, device: str = "auto",
                 seed: int = 0) -> Verification:
    """Recompute ``sample`` texts of the embed output at ``output`` and compare them with what it stores."""

    def recompute(stored: Any, metadata: dict[str, Any]) -> tuple[Any, list[str]]:
        return recompute_rows(stored, metadata, device)

    def columns(schema: Any) -> list[str]:
        return [name for name in schema.names if name not in ("id", "index", "tokens", "truncated", "text")]

    return verify_output(output, EMBED_DATASET_SCHEMA, "id", ("id",), columns, recompute, sample, seed, tolerance,
                         lambda metadata: TOLERANCES.get(str(metadata.get("precision", "float32")), 1e-4))


def recompute_rows(stored: Any, metadata: dict[str, Any], device: str = "auto") -> tuple[Any, list[str]]:
    """``stored``'s texts embedded again with ``metadata["settings"]``, as rows of ``stored``'s schema."""
    from vizcli.embed.embedder import Embedder
    from vizcli.embed.loading import weights_sha256
    from vizcli.embed.rows import columns_table

    settings = metadata.get("settings")
    if not isinstance(settings, dict):
        raise BadInput("records no settings (written before vizcli recorded them); rerun it to verify it", parameter="output")
    pooling = settings.get("pooling")
    embedder = Embedder(**{**settings, "device": device, "pooling": tuple(pooling) if isinstance(pooling, list) else pooling})
    found = []
    if metadata.get("weights_sha256") and weights_sha256(embedder.encoder) != metadata["weights_sha256"]:
        found.append("the model's weights are not the recorded ones (weights_sha256 differs)")
    ids = [str(value) for value in stored.column("id").to_pylist()]
    indices = [int(value) for value in stored.column("index").to_pylist()]
    texts = stored.column("text").to_pylist() if "text" in stored.schema.names else _texts_from_input(metadata, indices)
    result = embedder({"text": texts, "id": ids, "index": indices})
    return columns_table(result, stored.schema), found


def _texts_from_input(metadata: dict[str, Any], indices: list[int]) -> list[str]:
    """The texts at ``indices`` of the recorded input file, read again."""
    from vizcli.embed.texts import read_texts

    read = metadata.get("input") or {}
    if not read.get("file"):
        raise BadInput("keeps no text (keep_text=False) and its input was not a file (stdin or arguments): there is "
                       "nothing to recompute from; write with --keep-text to verify such outputs", parameter="output")
    wanted = set(indices)
    found: dict[int, str] = {}
    try:
        for text in read_texts([], **read):
            if text.index in wanted:
                found[text.index] = text.text
                if len(found) == len(wanted):
                    break
    except BadInput as error:
        raise BadInput(f"its recorded input {read['file']} cannot be read again ({error.detail}); verify where the run ran",
                       parameter="output") from None
    missing = [index for index in indices if index not in found]
    if missing:
        raise BadInput(f"its recorded input {read['file']} has no row {missing[0] + 1} any more: it changed since the run",
                       parameter="output")
    return [found[index] for index in indices]
