"""``vizcli merge A B … -o OUT``: finished outputs of one kind joined into one.

Dataset outputs go through ``vizcli.datasets.merge`` (whole inputs only, settings that agree, no
repeated row key). Single-input files of one kind become rows first, so several ``.npz`` results
can be gathered into one Parquet file or shard folder.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from vizcli.common.errors import BadInput
from vizcli.datasets.kinds import OutputKind
from vizcli.datasets.stored import StoredOutput
from vizcli.outputs.reading import RowsOf


def merge_outputs(inputs: list[str], output: str, shard_format: str = "safetensors") -> tuple[str, int, str]:
    """Join ``inputs`` into ``output``; returns (path, rows, kind)."""
    from vizcli.common.files import check_not_an_input
    from vizcli.datasets import merge
    from vizcli.datasets.sink import check_output, is_table_output
    from vizcli.outputs.reading import about_stored, open_with_kind

    if not inputs:
        raise BadInput("give the finished outputs to join: vizcli merge A B … -o out.parquet")
    if not is_table_output(output):
        raise BadInput("merged rows go to a Parquet file or a shard folder: give -o out.parquet or -o DIR/", parameter="output",
                       value=output)
    check_not_an_input(output, inputs)
    check_output(output)
    with about_stored():
        opened = [open_with_kind(path) for path in inputs]
    kinds = {kind.command for _, kind, _ in opened}
    if len(kinds) > 1:
        raise BadInput(f"these outputs are of different kinds ({', '.join(sorted(kinds))}); merge outputs of one command")
    kind = opened[0][1]
    with tempfile.TemporaryDirectory(prefix=".vizcli-merge-", dir=Path(output).resolve().parent) as scratch, about_stored():
        paths = [path if stored.form != "file" else as_dataset_output(stored, kind, rows_of, scratch)
                 for (stored, kind, rows_of), path in zip(opened, inputs)]
        try:
            written, rows = merge.merge_outputs(paths, output, kind.merge_keys, shard_format,
                                                ignore=("shard", "versions", "input", "inputs", "rows", "merged_from", "model_path"),
                                                schema_name=kind.schema)
        except BadInput as error:  # name the files the user gave, not their rows' scratch copies
            for path, original in zip(paths, inputs):
                error.detail = error.detail.replace(str(Path(path).resolve()), original).replace(path, original)
                if error.value == path:
                    error.value = original
            error.args = (error._subject_python() + error.detail,)
            raise
    return written, rows, kind.command


def as_dataset_output(stored: StoredOutput, kind: OutputKind, rows_of: RowsOf, scratch: str) -> str:
    """A single-input file written as a Parquet file of its rows (in ``scratch``), with the dataset schema id."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from vizcli.common.formats import to_json
    from vizcli.datasets.units import METADATA_KEY

    table = pa.concat_tables(list(rows_of(None)))
    metadata = {name: value for name, value in stored.metadata.items() if name not in ("images", "boxes", "detections")}
    metadata.update(schema=kind.schema, merged_from=stored.path)
    target = Path(scratch) / f"{len(list(Path(scratch).iterdir())):05d}.parquet"
    recorded = json.loads(to_json(metadata, indent=None))
    pq.write_table(table.replace_schema_metadata({METADATA_KEY: json.dumps(recorded).encode()}), target)
    return str(target)
