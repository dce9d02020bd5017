"""What ``vizcli embed`` writes, in one place: the embed output kind.

Corpus outputs (schema ``vizcli.embed/2``) hold one row per text (``vizcli.embed.rows``); small
outputs written as arrays (``vizcli.embed/1``: npz, safetensors, pt, npy with its ``.json``) hold
one array per pooling. ``verify`` rebuilds the ``Embedder`` from the validated settings and
recomputes the sampled texts, found by id in the recorded input file (or, when the input was stdin
or arguments, in the stored ``text`` column); every stored column is compared.
"""

from __future__ import annotations

from typing import Any

from vizcli.common.errors import BadInput
from vizcli.common.formats import EMBED_DATASET_SCHEMA, EMBED_SCHEMA
from vizcli.datasets.kinds import OutputKind, setting

# float noise of the compute dtype; a quantized precision adds one step (int8/uint8) or compares sign bits exactly
COMPUTE_TOLERANCES = {"float32": 1e-4, "bfloat16": 2e-2, "int8": 2e-2}
STORAGE_TOLERANCES = {"float16": 2e-3, "bfloat16": 2e-2, "int8": 1.0, "uint8": 1.0, "binary": 0.0, "ubinary": 0.0}

EMBED_KIND = OutputKind(
    command="embed",
    schema=EMBED_DATASET_SCHEMA,
    key="id",
    merge_keys=("id",),
    settings_version=2,
    settings={
        "model": setting(str, type(None)), "pooling": setting(str, list), "dtype": setting(str), "precision": setting(str),
        "prefix": setting(str), "normalize": setting(bool), "truncate_dim": setting(int, type(None)),
        "batch_size": setting(int), "batch_tokens": setting(int), "max_length": setting(int, type(None)),
        "on_overflow": setting(str), "ranges": setting(dict, type(None)),
    },
    recompute="vizcli.embed.kind:recompute_rows",
    tolerance="vizcli.embed.kind:tolerance",
    single_schemas=(EMBED_SCHEMA,),
    single_rows="vizcli.embed.kind:single_file_rows",
    export_layouts={"jsonl": "vizcli.embed.kind:export_layout", "npy": "vizcli.embed.kind:export_layout",
                    "tsv": "vizcli.embed.kind:export_layout"},
    describe="one row per text",
)


def tolerance(metadata: dict[str, Any]) -> float:
    """The largest difference ``verify`` accepts: the compute dtype's noise, or the stored precision's step when larger."""
    settings = metadata.get("settings") or {}
    compute = COMPUTE_TOLERANCES.get(str(settings.get("dtype") or metadata.get("dtype") or "float32"), 1e-4)
    precision = str(settings.get("precision") or metadata.get("precision") or "float32")
    if precision in ("binary", "ubinary") and compute > COMPUTE_TOLERANCES["float32"]:
        return 255.0  # sign bits of values near 0 may flip under bfloat16/int8 compute: packed bytes are not compared
    return max(compute, STORAGE_TOLERANCES.get(precision, 0.0)) if precision not in ("binary", "ubinary") else 0.0


def recompute_rows(stored: Any, metadata: dict[str, Any], settings: dict[str, Any], options: dict[str, Any]) -> tuple[Any, list[str]]:
    """``stored``'s texts embedded again with ``settings``, as rows of ``stored``'s schema, found by id."""
    from vizcli.embed.embedder import Embedder
    from vizcli.embed.loading import weights_sha256
    from vizcli.embed.rows import columns_table

    pooling = settings.get("pooling")
    embedder = Embedder(**{**settings, "device": options.get("device", "auto"),
                           "pooling": tuple(pooling) if isinstance(pooling, list) else pooling})
    found = []
    if metadata.get("weights_sha256") and weights_sha256(embedder.encoder) != metadata["weights_sha256"]:
        found.append("the model's weights are not the recorded ones (weights_sha256 differs)")
    ids = [str(value) for value in stored.column("id").to_pylist()]
    texts, indices, source_note = _texts_by_id(stored, metadata, ids, options.get("root"))
    if source_note:
        found.append(source_note)
    result = embedder({"text": texts, "id": ids, "index": indices})
    return columns_table(result, stored.schema), found


def recorded_texts(metadata: dict[str, Any], ids: list[str], root: str | None = None) -> dict[str, Any] | None:
    """The texts of ``ids`` read again from the input file(s) the run recorded (one, or one per part of a merged
    output), by id (``InputText``: ``.text`` and ``.index``); ids not found are left out. None when the run
    recorded no input file (its texts came from stdin or arguments). Raises ``BadInput`` when a recorded file
    cannot be read again."""
    reads = [read for read in (metadata.get("inputs") or [metadata.get("input") or {}]) if read and read.get("file")]
    if not reads:
        return None
    from pathlib import Path

    from vizcli.common.relocate import find_again
    from vizcli.embed.texts import read_texts

    wanted, found = set(ids), {}
    for read in reads:
        file = read["file"] if Path(read["file"]).is_dir() else find_again(read["file"], root, "the recorded input")
        try:
            for text in read_texts([], **{**read, "file": file}):
                if text.key in wanted:
                    found[text.key] = text
                    if len(found) == len(wanted):
                        return found
        except BadInput as error:
            raise BadInput(f"its recorded input {file} cannot be read again ({error.detail}); give the folder it moved to "
                           "with root=FOLDER", parameter="output") from None
    return found


def _texts_by_id(stored: Any, metadata: dict[str, Any], ids: list[str], root: str | None) -> tuple[list[str], list[int], str]:
    """The texts and input positions of ``ids``: from the recorded input file when there is one (independent of the
    stored columns, so a changed id, index or text is noticed), else from the stored ``text`` column."""
    found = recorded_texts(metadata, ids, root)
    if found is not None:
        missing = [key for key in ids if key not in found]
        if missing:
            reads = metadata.get("inputs") or [metadata.get("input") or {}]
            files = ", ".join(str(read["file"]) for read in reads if read and read.get("file"))
            return [found[key].text if key in found else "" for key in ids], [found[key].index if key in found else -1 for key in ids], \
                f"id {missing[0]} is stored but not in the recorded input ({files}): changed since the run, or the id was edited"
        return [found[key].text for key in ids], [found[key].index for key in ids], ""
    if "text" not in stored.schema.names:
        raise BadInput("keeps no text and records no input file to read its texts from (they came from stdin or "
                       "arguments): there is nothing to recompute its vectors from; to verify such outputs write .npz (which keeps the texts), or a "
                       "dataset output with keep_text=True", parameter="output")
    indices = [int(value) for value in stored.column("index").to_pylist()]
    return [str(value) for value in stored.column("text").to_pylist()], indices, ""


def single_file_rows(arrays: dict[str, Any], metadata: dict[str, Any], path: str) -> Any:
    """A small embed output (``vizcli.embed/1`` arrays) as rows of the corpus schema: one per text."""
    import numpy as np
    import pyarrow as pa

    poolings = [str(name) for name in metadata.get("pooling") or []]
    vectors = {name: np.asarray(arrays[name]) for name in poolings if name in arrays}
    if not vectors:
        matrices = {str(name): np.asarray(value) for name, value in arrays.items() if getattr(value, "ndim", 0) == 2}
        if not matrices:
            raise BadInput("holds no [N, D] vectors; not a vizcli embed file", parameter="output", value=path)
        vectors = dict(list(matrices.items())[:1])
    count = next(iter(vectors.values())).shape[0]
    index = np.asarray(arrays.get("index", np.arange(count)))
    columns: dict[str, Any] = {"id": pa.array([str(int(value)) for value in index]), "index": pa.array(index.astype("int64"))}
    for name in ("tokens", "truncated"):
        if name in arrays:
            columns[name] = pa.array(np.asarray(arrays[name]))
    if "texts" in arrays:
        columns["text"] = pa.array([str(value) for value in np.asarray(arrays["texts"]).tolist()])
    for name, value in vectors.items():
        flat = value.reshape(count, -1).astype("float32")
        columns[name] = pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), flat.shape[1])
    return pa.table(columns)


def export_layout(output: str, layout: str, destination: str, options: dict[str, Any]) -> tuple[str, int]:
    """Write an embed output's vectors as ``jsonl``, ``tsv`` or ``npy`` (``vizcli.embed.export``)."""
    from vizcli.embed.export import export_vectors

    return export_vectors(output, layout, destination, options.get("feature"))
