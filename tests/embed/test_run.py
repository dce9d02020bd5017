"""vizcli.embed.run: run_embed refuses what a dataset output and a single file do not take, before any model loads."""

import pytest

from vizcli.common.errors import BadInput
from vizcli.datasets.options import DatasetFlags
from vizcli.embed.request import EmbedOutput, EmbedSettings, TextSource
from vizcli.embed.run import run_embed


def test_storage_settings_apply_to_dataset_outputs_only():
    with pytest.raises(BadInput, match="dataset outputs only") as raised:
        run_embed(TextSource(("a",)), EmbedSettings(truncate_dim=8), EmbedOutput())
    assert raised.value.parameter == "truncate_dim"


@pytest.mark.parametrize("output, fragment", [
    (EmbedOutput(similarity=True), "similarity prints a matrix"), (EmbedOutput(file_format="npz"), "not npz"),
])
def test_a_dataset_output_takes_no_similarity_or_file_format(tmp_path, output, fragment):
    dataset = DatasetFlags().settings(str(tmp_path / "v.parquet"), quiet=True)
    with pytest.raises(BadInput, match=fragment):
        run_embed(TextSource(("a",)), EmbedSettings(), output, dataset)
    assert list(tmp_path.iterdir()) == []
