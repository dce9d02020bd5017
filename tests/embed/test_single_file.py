"""vizcli.embed.single_file: a few texts go through the same Embedder as a dataset run, and the writers read its rows."""

import numpy as np

from vizcli.embed.embedder import Embedder
from vizcli.embed.loading import load_numpy_bert
from vizcli.embed.request import EmbedOutput, EmbedSettings, TextSource
from vizcli.embed.single_file import embed_to_file

TEXTS = ["a cat sits on the mat", "a dog lies on the rug", "rain"]


def test_the_written_arrays_are_the_embedders_batch_result(tmp_path):
    target = tmp_path / "v.npz"
    embed_to_file(TextSource(tuple(TEXTS)), EmbedSettings(pooling="mean,cls", prefix="q: "), EmbedOutput(str(target), quiet=True))
    batch = Embedder(pooling="mean,cls", prefix="q: ", encoder=load_numpy_bert(None))({"text": TEXTS})
    with np.load(target) as written:
        assert list(written["texts"]) == TEXTS and list(written["index"]) == [0, 1, 2]
        for name in ("mean", "cls", "tokens"):
            assert np.array_equal(written[name], batch[name]), name  # bit for bit: one pipeline


def test_the_similarity_matrix_reads_the_same_rows(tmp_path):
    import json

    target = tmp_path / "s.json"
    embed_to_file(TextSource(tuple(TEXTS)), EmbedSettings(), EmbedOutput(str(target), similarity=True, quiet=True))
    matrix = np.array(json.loads(target.read_text())["similarity"]["mean"])
    vectors = Embedder(encoder=load_numpy_bert(None))({"text": TEXTS})["mean"].astype(np.float64)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    np.testing.assert_allclose(matrix, unit @ unit.T, atol=1e-12)
