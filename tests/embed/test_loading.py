import pytest

from tests.checks import one_error_line


@pytest.mark.parametrize("name, fragment", [
    ("a b", "neither a model folder nor a Hugging Face repo id"), ("bad//name", "no such folder"),
    ("x" * 200, "neither a model folder nor a Hugging Face repo id"), ("org/na me", "neither a model folder nor a Hugging Face repo id"),
    ("über", "neither a model folder nor a Hugging Face repo id"),
])
def test_model_names_that_are_no_folder_or_repo_id(invoke, tmp_path, monkeypatch, name, fragment):
    monkeypatch.chdir(tmp_path)
    message = one_error_line(invoke("embed", "--model", name, "a"))
    assert fragment in message  # each name has the one answer it must get
