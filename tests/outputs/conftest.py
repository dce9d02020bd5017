"""Small real outputs of each kind and form, made once per module by the real commands."""

import pytest

from tests.checks import random_image

LINES = "a cat sits on the mat\na dog lies on the rug\nthe sun is warm\nrain falls in spain\nbirds sing\n"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """{name: path} of outputs: roi Parquet and shards, roi single-image files, embed Parquet (from a file and with kept text)."""
    from typer.testing import CliRunner

    from vizcli.cli import app

    root = tmp_path_factory.mktemp("outputs")
    images = root / "images"
    for number, size in enumerate([(120, 90), (90, 120), (100, 100)]):
        random_image(images / f"{number}.png", size, number)
    corpus = root / "corpus.txt"
    corpus.write_text(LINES)

    def run(*args, input=None):
        result = CliRunner().invoke(app, [str(arg) for arg in args], input=input, catch_exceptions=False)
        assert result.exit_code == 0, (args, result.stderr)
        return result

    paths = {
        "roi.parquet": root / "feats.parquet", "roi-shards": root / "feats", "embed.parquet": root / "vectors.parquet",
        "embed-kept": root / "kept", "one.npz": root / "one.npz", "one.safetensors": root / "one.safetensors",
        "one.pt": root / "one.pt", "one.npy": root / "one.npy", "texts.npz": root / "texts.npz",
    }
    run("roi", images, "--boxes", "5,5,60,50", "--boxes", "10,20,80,90", "-o", paths["roi.parquet"], "--op", "both", "-q")
    run("roi", images, "--boxes", "5,5,60,50", "-o", f"{paths['roi-shards']}/", "-q")
    run("embed", "--file", corpus, "-p", "mean,pooler", "-o", paths["embed.parquet"], "-q")
    run("embed", "--file", corpus, "-o", f"{paths['embed-kept']}/", "--keep-text", "-q")
    for name in ("one.npz", "one.safetensors", "one.pt", "one.npy"):
        run("roi", images / "0.png", "--boxes", "5,5,60,50", "--boxes", "1,1,30,30", "-o", paths[name], "-q")
    run("embed", "-o", paths["texts.npz"], "-q", input=LINES)
    paths["root"] = root
    paths["images"] = images
    paths["corpus"] = corpus
    return paths
