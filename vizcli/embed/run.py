"""``vizcli embed`` as one Python call: ``run_embed(source, settings, output, dataset)``.

With ``dataset`` (``DatasetSettings``, for ``-o out.parquet`` or ``-o DIR/``) every text becomes one row of a
resumable, shardable dataset output (``vizcli.embed.dataset_run``); otherwise the vectors stream to stdout or
one file (``vizcli.embed.single_file``). Both call the same ``Embedder``. The request values are in
``vizcli.embed.request``.
"""

from __future__ import annotations

from typing import Any

from vizcli.common.errors import BadInput
from vizcli.embed.request import EmbedOutput, EmbedSettings, TextSource

__all__ = ["EmbedOutput", "EmbedSettings", "TextSource", "run_embed"]


def run_embed(source: TextSource, settings: EmbedSettings, output: EmbedOutput, dataset: Any = None) -> int:
    """Embed ``source``'s texts: into the dataset output ``dataset`` (``DatasetSettings``) describes, or to
    ``output`` (stdout or one file). Returns the exit status (3 when a dataset run skipped rows)."""
    if dataset is not None:
        if output.similarity:
            raise BadInput("similarity prints a matrix; drop it to write a dataset output")
        if output.stdout_format is not None or output.file_format is not None:
            given = output.stdout_format or output.file_format
            raise BadInput(f"a dataset output is Parquet (output=out.parquet) or shards (output=DIR/, their files set by "
                           f"shard_format=NAME), not {given}; drop the format, or name a .jsonl/.csv/.npz file",
                           parameter="output", value=dataset.output)
        from vizcli.common.runtime import flat_heap
        from vizcli.embed.dataset_run import embed_dataset  # lazy: pyarrow and the dataset engine only for dataset runs

        with flat_heap(uncached_kernels=True):  # a dataset run is long: keep peak memory flat (see keep_heap_flat)
            return embed_dataset(source, settings, dataset)
    storage = settings.storage_choices()
    if storage:
        raise BadInput("applies to dataset outputs only: write output=vectors.parquet or output=DIR/", parameter=storage[0],
                       value=getattr(settings, storage[0]))
    from vizcli.embed.single_file import embed_to_file

    embed_to_file(source, settings, output)
    return 0
