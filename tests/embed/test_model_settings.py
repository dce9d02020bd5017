"""vizcli.embed.model_settings: the model's own pooling (sentence-transformers files, else pooler or mean) and prompts."""

import json

import pytest

from vizcli.common.errors import BadInput
from vizcli.embed.loading import bundled_model_path
from vizcli.embed.model_settings import model_pooling


def _sentence_transformers_folder(folder, mode, normalize, prompts=None):
    modules = [{"type": "sentence_transformers.models.Transformer", "path": ""},
               {"type": "sentence_transformers.models.Pooling", "path": "1_Pooling"}]
    if normalize:
        modules.append({"type": "sentence_transformers.models.Normalize", "path": "2_Normalize"})
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({mode: True}))
    if prompts:
        (folder / "config_sentence_transformers.json").write_text(json.dumps({"prompts": prompts}))
    return folder


def test_the_bundled_minilm_is_mean_pooled_and_normalised():
    assert model_pooling(None, None, None, "", bundled_model_path(), True) == (("mean",), True, "")


@pytest.mark.parametrize("pooling", [None, "auto"])
def test_the_models_own_pooling_comes_from_its_pooling_module(tmp_path, pooling):
    folder = _sentence_transformers_folder(tmp_path, "pooling_mode_cls_token", normalize=True)
    assert model_pooling(pooling, None, None, "", folder, True) == (("cls",), True, "")
    assert model_pooling(pooling, False, None, "", folder, True) == (("cls",), False, "")  # --no-normalize wins


@pytest.mark.parametrize("has_pooler, expected", [(True, ("pooler",)), (False, ("mean",))])
def test_a_plain_bert_folder_uses_its_pooler_else_mean(tmp_path, has_pooler, expected):
    assert model_pooling(None, None, None, "", tmp_path, has_pooler) == (expected, False, "")


def test_a_named_pooling_is_parsed_and_not_normalised_unless_asked(tmp_path):
    folder = _sentence_transformers_folder(tmp_path, "pooling_mode_mean_tokens", normalize=True)
    assert model_pooling("max, mean,max", None, None, "", folder, True) == (("max", "mean"), False, "")
    assert model_pooling(("cls",), True, None, "", folder, True) == (("cls",), True, "")
    with pytest.raises(BadInput, match="unknown pooling 'median'"):
        model_pooling("median", None, None, "", folder, True)


def test_prompts_become_the_prefix(tmp_path):
    folder = _sentence_transformers_folder(tmp_path, "pooling_mode_mean_tokens", normalize=False, prompts={"query": "query: "})
    assert model_pooling("mean", None, "query", "", folder, True) == (("mean",), False, "query: ")
    with pytest.raises(BadInput, match="its prompts: query"):
        model_pooling("mean", None, "passage", "", folder, True)
    with pytest.raises(BadInput, match="not both"):
        model_pooling("mean", None, "query", "q: ", folder, True)


def test_a_pooling_vizcli_does_not_compute_is_refused(tmp_path):
    folder = _sentence_transformers_folder(tmp_path, "pooling_mode_weightedmean_tokens", normalize=False)
    with pytest.raises(BadInput, match="not one vizcli computes"):
        model_pooling(None, None, None, "", folder, True)
