"""vizcli.embed.dataset_run: a dataset run records the settings that rebuild its Embedder, and its rows are that Embedder's."""

import json

import numpy as np
import pyarrow.parquet as pq

from vizcli.datasets.options import DatasetFlags
from vizcli.embed.embedder import Embedder
from vizcli.embed.kind import EMBED_KIND
from vizcli.embed.request import EmbedOutput, EmbedSettings, TextSource
from vizcli.embed.run import run_embed

TEXTS = ["a cat sits on the mat", "a dog lies on the rug", "rain falls", "", "birds sing at dawn"]


def test_rows_are_the_recorded_embedders_and_the_models_pooling_is_recorded_resolved(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(TEXTS) + "\n")
    out = tmp_path / "v.parquet"
    dataset = DatasetFlags().settings(str(out), quiet=True)
    assert run_embed(TextSource(file=str(corpus)), EmbedSettings(precision="uint8", calibration=4), EmbedOutput(), dataset) == 0
    table = pq.read_table(out)
    metadata = json.loads(table.schema.metadata[b"vizcli"])
    settings = metadata["settings"]
    assert set(settings) == set(EMBED_KIND.settings)  # what info/verify/merge validate
    assert settings["pooling"] == ["mean"] and settings["normalize"] is True and settings["model"] is None
    assert metadata["input"]["file"] == str(corpus) and len(settings["ranges"]["mean"][0]) == 384
    assert (tmp_path / "v.ranges.json").exists()
    again = Embedder(**settings)({"id": [str(i) for i in range(5)], "index": list(range(5)), "text": TEXTS})
    stored = np.array(table.column("mean").to_pylist(), dtype=np.uint8)
    assert table.column("id").to_pylist() == ["0", "1", "2", "3", "4"]
    assert np.array_equal(stored, again["mean"])  # the same Embedder, rebuilt from what the output records
