import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.search.conftest import SENTENCES, stored_vectors, write_synthetic
from vizcli.common.errors import BadInput
from vizcli.embed.precision import quantize, ranges_of
from vizcli.search.source import EmbedOutput, decode_vectors


def test_blocks_give_every_stored_row_in_order(parquet_output):
    expected, ids = stored_vectors(parquet_output, "mean")
    output = EmbedOutput(str(parquet_output), block_rows=5)
    blocks = list(output.blocks())
    assert [len(block.ids) for block in blocks] == [5, 5, 5, 5, 4]
    assert [block.start for block in blocks] == [0, 5, 10, 15, 20]
    assert sum((block.ids for block in blocks), []) == ids
    assert sum((block.texts for block in blocks), []) == SENTENCES
    np.testing.assert_array_equal(np.concatenate([block.vectors for block in blocks]), expected.astype(np.float32))
    assert output.rows == len(SENTENCES) and output.unit_normalized and output.pooling == "mean"


def test_a_shard_folder_reads_as_its_shards_joined(folder_output):
    import json

    manifest = json.loads((folder_output / "manifest.json").read_text())
    assert len(manifest["shards"]) > 1  # the point of the fixture: several units
    output = EmbedOutput(str(folder_output), pooling="cls", block_rows=4)
    vectors = np.concatenate([block.vectors for block in output.blocks()])
    from vizcli.datasets.units import read_unit

    tables = [read_unit(folder_output / shard["file"]) for shard in manifest["shards"]]
    expected = np.concatenate([np.array(table.column("cls").to_pylist(), dtype=np.float32) for table in tables])
    np.testing.assert_array_equal(vectors, expected)  # float16 widened exactly
    assert output.precision == "float16" and not output.has_text and not output.unit_normalized


@pytest.mark.parametrize("precision", ["float16", "bfloat16", "int8", "uint8"])
def test_decoding_undoes_embeds_quantization_within_one_step(precision):
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((50, 16)).astype(np.float32)
    ranges = ranges_of(vectors)
    decoded = decode_vectors(quantize(vectors, precision, ranges), precision, ranges.tolist(), 16)
    step = (ranges[1] - ranges[0]) / 255 if precision.endswith("int8") else np.abs(vectors) * 2.0 ** -7
    assert decoded.dtype == np.float32
    assert np.all(np.abs(decoded - vectors) <= step * 0.5 + 1e-6)


@pytest.mark.parametrize("precision", ["binary", "ubinary"])
def test_binary_decodes_to_the_sign_of_each_dimension(precision):
    vectors = np.random.default_rng(2).standard_normal((9, 20)).astype(np.float32)
    decoded = decode_vectors(quantize(vectors, precision), precision, None, 20)
    np.testing.assert_array_equal(decoded, np.where(vectors > 0, 1.0, -1.0))


def test_outputs_of_other_kinds_are_refused_naming_the_input(tmp_path, parquet_output):
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), plain)
    with pytest.raises(BadInput, match="not written by a vizcli"):
        EmbedOutput(str(plain))
    other = write_synthetic(tmp_path / "roi.parquet", np.ones((3, 4), np.float32), parquet_output, schema="vizcli.roi/2")
    with pytest.raises(BadInput, match=r"holds vizcli.roi/2, not vizcli.embed/2") as error:
        EmbedOutput(str(other))
    assert error.value.parameter == "dataset"
    with pytest.raises(BadInput, match="no such output"):
        EmbedOutput(str(tmp_path / "missing.parquet"))
    with pytest.raises(BadInput, match="it holds mean"):
        EmbedOutput(str(parquet_output), pooling="cls")
