"""vizcli.text_models.folders: which --model values name a model, and what a folder must hold (no CLI, no torch)."""

import json

import pytest

from vizcli.common.errors import BadInput, RunFailure
from vizcli.text_models.folders import (
    BUNDLED_DISTRIBUTION,
    bundled_model_path,
    load_tokenizer,
    locate_model,
    model_max_length,
    read_json,
    weights_file,
)


def test_none_is_the_bundled_model_with_its_tokenizer_and_weights():
    folder, name, bundled = locate_model(None)
    assert folder == bundled_model_path() and name == BUNDLED_DISTRIBUTION and bundled
    assert weights_file(folder, name).name == "model.safetensors"
    assert load_tokenizer(folder, name).encode("a cat").tokens == ["[CLS]", "a", "cat", "[SEP]"]
    assert model_max_length(folder, read_json(folder / "config.json", name), name) == 512


@pytest.mark.parametrize("spec, fragment", [
    ("a b", "neither a model folder nor a Hugging Face repo id"), ("bad//name", "no such folder"),
    ("./missing", "no such folder"), ("org/na me", "neither a model folder nor a Hugging Face repo id"),
])
def test_names_that_are_neither_a_folder_nor_a_repo_id(tmp_path, monkeypatch, spec, fragment):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BadInput, match=fragment) as raised:
        locate_model(spec)
    assert raised.value.parameter == "model"


def test_a_folder_must_be_a_model_folder(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(BadInput, match="is a file"):
        locate_model(str(tmp_path / "file.txt"))
    with pytest.raises(BadInput, match="no config.json"):
        locate_model(str(tmp_path))
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(BadInput, match="not valid JSON"):
        read_json(tmp_path / "config.json", "m")
    with pytest.raises(BadInput, match="no weights"):
        weights_file(tmp_path, "m")
    with pytest.raises(BadInput, match="no tokenizer"):
        load_tokenizer(tmp_path, "m")


def test_a_hub_name_missing_from_the_cache_is_a_run_failure(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(RunFailure, match="not in the Hugging Face cache"):
        locate_model("no-such-org/no-such-bert-model")


@pytest.mark.parametrize("model_type, positions, tokenizer_limit, expected", [
    ("bert", 512, None, 512), ("roberta", 514, None, 512), ("bert", 512, 128, 128), ("bert", 512, 10**30, 512),
])
def test_the_token_limit_is_the_smaller_of_positions_and_the_tokenizers(tmp_path, model_type, positions, tokenizer_limit, expected):
    if tokenizer_limit is not None:
        (tmp_path / "tokenizer_config.json").write_text(json.dumps({"model_max_length": tokenizer_limit}))
    config = {"model_type": model_type, "max_position_embeddings": positions}
    assert model_max_length(tmp_path, config, "m") == expected
