"""vizcli.embed.request: every choice of a run checked once, before a model loads (no CLI, no model)."""

import pytest

from vizcli.common.errors import BadInput
from vizcli.embed.request import EmbedOutput, EmbedSettings, TextSource


@pytest.mark.parametrize("pooling, expected", [(None, None), ("auto", None), ("mean", ("mean",)), ("cls, mean,cls", ("cls", "mean"))])
def test_pooling_is_parsed_once(pooling, expected):
    assert EmbedSettings(pooling=pooling).poolings == expected


@pytest.mark.parametrize("changes, parameter", [
    ({"pooling": "median"}, "pooling"), ({"batch_size": 0}, "batch_size"), ({"batch_tokens": 8}, "batch_tokens"),
    ({"dtype": "int4"}, "dtype"), ({"on_overflow": "drop"}, "on_overflow"), ({"max_length": 1}, "max_length"),
    ({"precision": "int4"}, "precision"), ({"calibration": 1}, "calibration"), ({"truncate_dim": 0}, "truncate_dim"),
])
def test_bad_settings_name_their_parameter(changes, parameter):
    with pytest.raises(BadInput) as raised:
        EmbedSettings(**changes)
    assert raised.value.parameter == parameter


def test_storage_settings_are_listed_when_given():
    assert EmbedSettings().storage_choices() == []
    assert EmbedSettings(precision="int8", keep_text=True).storage_choices() == ["precision", "keep_text"]


@pytest.mark.parametrize("output, expected", [
    (EmbedOutput(), "jsonl"), (EmbedOutput(similarity=True), "table"), (EmbedOutput(stdout_format="csv"), "csv"),
    (EmbedOutput("-", stdout_format="tsv"), "tsv"), (EmbedOutput("v.npz"), "npz"), (EmbedOutput("v.SAFETENSORS"), "safetensors"),
    (EmbedOutput("/dev/null", file_format="npy"), "npy"), (EmbedOutput("/dev/null", stdout_format="json"), "json"),
    (EmbedOutput("v.csv", file_format="csv"), "csv"),
])
def test_the_format_written(output, expected):
    assert output.format() == expected


@pytest.mark.parametrize("output, fragment", [
    (dict(stdout_format="npy"), "file_format=npy"), (dict(stdout_format="xml"), "use one of jsonl, json, csv, tsv"),
    (dict(stdout_format="table"), "use one of"), (dict(path="v.csv", stdout_format="csv"), "leaves stdout empty"),
    (dict(stdout_format="csv", similarity=True), "use one of table, json"),
    (dict(file_format="xml"), "use one of"),
])
def test_stdout_and_file_formats_are_not_confused(output, fragment):
    with pytest.raises(BadInput, match=fragment):
        EmbedOutput(**output)


def test_a_file_suffix_must_name_a_format_and_agree_with_file_format():
    with pytest.raises(BadInput, match="cannot tell the format"):
        EmbedOutput("v.txt").format()
    with pytest.raises(BadInput, match="the extension says csv"):
        EmbedOutput("v.csv", file_format="json").format()
    with pytest.raises(BadInput, match="similarity matrix is written as JSON"):
        EmbedOutput("s.csv", similarity=True).format()
    assert EmbedOutput("s.json", similarity=True).format() == "json"


def test_texts_come_from_arguments_or_a_file_not_both(tmp_path):
    with pytest.raises(BadInput, match="not both"):
        TextSource(("a",), file="t.txt")
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(BadInput, match="no input text"):
        TextSource(file=str(tmp_path / "empty.txt")).items()
    assert [item.text for item in TextSource(("a", "b")).items()] == ["a", "b"]
    assert TextSource(("a",)).is_small and not TextSource(("-",)).is_small
