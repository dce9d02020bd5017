"""Small embed outputs written by the real ``vizcli embed`` (the bundled all-MiniLM-L6-v2, offline), synthetic
outputs that carry a real output's metadata, and the brute-force reference every search is checked against."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

SENTENCES = [
    "a cat sits on the mat", "a kitten sleeps on the rug", "the dog barks at the mailman", "puppies love to play fetch",
    "stocks fell sharply today", "the market crashed after the report", "investors sold their shares",
    "interest rates rose again", "I love pizza with extra cheese", "pasta is best with fresh basil",
    "the soup was too salty", "she baked bread this morning", "the train leaves at noon", "our flight was delayed",
    "he missed the last bus home", "the ship sailed at dawn", "rain is expected tomorrow", "a storm hit the coast",
    "the sun will shine all week", "snow covered the mountains", "python is a programming language",
    "the compiler reported an error", "unit tests catch regressions", "the server ran out of memory",
]


def reference_top_k(queries, stored, k, exclude=None):
    """The brute-force answer: cosine of every query with every stored row, sorted (ties by row)."""
    queries = np.asarray(queries, dtype=np.float64)
    stored = np.asarray(stored, dtype=np.float64)
    queries = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    stored = stored / np.maximum(np.linalg.norm(stored, axis=1, keepdims=True), 1e-12)
    answers = []
    for number, query in enumerate(queries):
        scores = [(float(query @ row), index) for index, row in enumerate(stored)
                  if exclude is None or index != exclude[number]]
        scores.sort(key=lambda pair: (-pair[0], pair[1]))
        answers.append(scores[:k])
    return answers


def stored_vectors(path, column):
    """A Parquet output's vectors read with pyarrow alone, ``float64 [N, D]``."""
    table = pq.read_table(path)
    return np.array(table.column(column).to_pylist(), dtype=np.float64), [str(key) for key in table.column("id").to_pylist()]


def _embed(tmp_path_factory, name, *args):
    from typer.testing import CliRunner

    from vizcli.cli import app

    folder = tmp_path_factory.mktemp(name)
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    output = folder / args[0]
    target = str(output) + ("/" if args[0].endswith("/") else "")  # DIR/ asks for a shard folder
    result = CliRunner().invoke(app, ["embed", "--file", str(corpus), "-o", target, "--quiet", *args[1:]],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return output


@pytest.fixture(scope="session")
def parquet_output(tmp_path_factory):
    """Mean pooling, normalised, texts kept: one Parquet file."""
    return _embed(tmp_path_factory, "parquet", "vectors.parquet", "-p", "mean", "--normalize", "--keep-text")


@pytest.fixture(scope="session")
def folder_output(tmp_path_factory):
    """Mean and cls pooling, not normalised, no texts, float16: a shard folder of several shards."""
    return _embed(tmp_path_factory, "folder", "shards/", "-p", "mean,cls", "--precision", "float16", "--shard-size", "0.01")


def write_synthetic(path, vectors, like, ids=None, texts=None, **settings):
    """An embed output holding ``vectors`` (``[N, D]`` float32) with the metadata of the real output ``like``."""
    metadata = json.loads(pq.read_schema(like).metadata[b"vizcli"])
    metadata.update({"pooling": ["mean"], "dimensions": int(vectors.shape[1]), "normalize": False, **settings})
    count, width = vectors.shape
    fields = [pa.field("id", pa.string()), pa.field("index", pa.int64()), pa.field("tokens", pa.int32()), pa.field("truncated", pa.bool_())]
    columns = [pa.array(ids or [f"v{row}" for row in range(count)]), pa.array(np.arange(count)), pa.array(np.ones(count, np.int32)),
               pa.array(np.zeros(count, bool))]
    if texts is not None:
        fields.append(pa.field("text", pa.string()))
        columns.append(pa.array(texts))
    fields.append(pa.field("mean", pa.list_(pa.float32(), width)))
    columns.append(pa.FixedSizeListArray.from_arrays(pa.array(vectors.astype(np.float32).reshape(-1)), width))
    schema = pa.schema(fields, metadata={b"vizcli": json.dumps(metadata).encode()})
    pq.write_table(pa.Table.from_arrays(columns, schema=schema), path, row_group_size=97)
    return path


def clustered(count, dimensions=48, clusters=12, seed=0, spread=0.35):
    """Vectors around a few centres (as sentence vectors are), with a seeded generator."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dimensions))
    vectors = centres[rng.integers(0, clusters, count)] + spread * rng.standard_normal((count, dimensions))
    return vectors.astype(np.float32)
