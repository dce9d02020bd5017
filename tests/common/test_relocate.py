import pytest

from vizcli.common.errors import BadInput
from vizcli.common.relocate import find_again


def test_a_moved_file_is_found_by_its_trailing_parts_under_the_root(tmp_path):
    (tmp_path / "new" / "texts").mkdir(parents=True)
    (tmp_path / "new" / "texts" / "corpus.txt").write_text("a\n")
    assert find_again("/old/place/texts/corpus.txt", str(tmp_path / "new"), "the input") == str(tmp_path / "new" / "texts" / "corpus.txt")


def test_a_root_that_is_not_a_folder_is_named_with_the_fix(tmp_path):
    (tmp_path / "corpus.txt").write_text("a\n")
    with pytest.raises(BadInput) as missing:
        find_again("/old/corpus.txt", str(tmp_path / "nowhere"), "the input")
    assert missing.value.for_command_line({"root": "--root"}) == f"--root {tmp_path / 'nowhere'}: not a folder; give the folder the inputs moved to"
    with pytest.raises(BadInput) as a_file:
        find_again("/old/corpus.txt", str(tmp_path / "corpus.txt"), "the input")
    assert a_file.value.detail.endswith("(the folder that holds this file)")
