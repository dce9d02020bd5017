"""vizcli.embed.numpy_bert: the torch-free encoder gives the torch path's vectors, for every pooling."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT
from vizcli.embed.numpy_bert import erf

TEXTS = ["a cat sits on the mat", "rain", "the valley was full of fog when the train came through at dawn", ""]


def test_erf_matches_the_standard_library_everywhere():
    x = np.linspace(-9, 9, 40001)
    assert np.abs(erf(x) - np.array([math.erf(v) for v in x])).max() < 1e-11


@pytest.fixture(scope="module")
def encoders():
    from vizcli.embed.loading import load_bert, load_numpy_bert

    return load_numpy_bert(None), load_bert(None, device="cpu")


@pytest.mark.parametrize("normalize", [False, True])
def test_every_pooling_equals_the_torch_path_within_1e_5(encoders, normalize):
    numpy_encoder, torch_encoder = encoders
    poolings = ("pooler", "cls", "mean", "max")
    got = numpy_encoder.encode(TEXTS, poolings, normalize=normalize, batch_size=2)  # padded batches of unequal texts
    expected = torch_encoder.encode(TEXTS, poolings, normalize=normalize)
    for name in poolings:
        np.testing.assert_allclose(got.vectors[name], expected.vectors[name], rtol=0, atol=1e-5, err_msg=name)
    assert got.tokens == expected.tokens


def test_truncation_is_the_same_on_both_paths(encoders):
    numpy_encoder, torch_encoder = encoders
    long = ["word " * 40]
    got = numpy_encoder.encode(long, ("mean",), max_length=8)
    expected = torch_encoder.encode(long, ("mean",), max_length=8)
    np.testing.assert_allclose(got.vectors["mean"], expected.vectors["mean"], atol=1e-5)
    assert got.truncated == expected.truncated == [True]


@pytest.mark.process
def test_one_sentence_from_the_shell_never_imports_torch():
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "vizcli", "embed", "a cat sits on the mat", "-p", "mean",
                           "--format", "json"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")]
    assert "numpy" in imported and not [name for name in imported if name.split(".")[0] == "torch"]
    assert len(json.loads(done.stdout)["rows"][0]["mean"]) == 384


def test_models_the_numpy_path_cannot_compute_go_to_torch(tmp_path):
    from vizcli.embed.loading import numpy_path_fits

    assert numpy_path_fits(None, "float32", "auto") and numpy_path_fits(None, "float32", "cpu")
    assert not numpy_path_fits(None, "bfloat16", "cpu") and not numpy_path_fits(None, "float32", "cuda")
    folder = tmp_path / "roberta"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "roberta"}))
    (folder / "model.safetensors").write_bytes(b"")
    assert not numpy_path_fits(str(folder), "float32", "cpu")


def test_a_safetensors_file_missing_tensors_is_refused_naming_them_as_the_torch_path_does(tmp_path):
    import shutil

    from safetensors.numpy import load_file, save_file

    from vizcli.common.errors import BadInput
    from vizcli.embed.loading import load_bert, load_numpy_bert
    from vizcli.text_models.folders import bundled_model_path

    for case in ("missing", "misshapen"):
        folder = tmp_path / case
        shutil.copytree(bundled_model_path(), folder)
        tensors = load_file(folder / "model.safetensors")
        key = next(name for name in tensors if name.endswith("layer.3.intermediate.dense.weight"))
        if case == "missing":
            del tensors[key]
        else:
            tensors[key] = tensors[key][:-1]
        save_file(tensors, folder / "model.safetensors")
        with pytest.raises(BadInput) as numpy_error:
            load_numpy_bert(str(folder))
        with pytest.raises(BadInput) as torch_error:
            load_bert(str(folder))
        assert "encoder.layer.3.intermediate.dense.weight" in str(numpy_error.value)
        assert ("1 missing" if case == "missing" else "wrong shape") in str(numpy_error.value)
        assert ("1 missing" if case == "missing" else "wrong shape") in str(torch_error.value)
