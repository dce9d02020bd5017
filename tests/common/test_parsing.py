import pytest

from tests.checks import CHELSEA


def test_byte_order_marks_are_accepted(invoke, tmp_path, tiny_bom_inputs):
    for args in tiny_bom_inputs(tmp_path):
        result = invoke(*args)
        assert result.exit_code == 0, (args, result.stderr)


@pytest.fixture
def tiny_bom_inputs():
    def _make(folder):
        (folder / "b.json").write_bytes(b"\xef\xbb\xbf[[140, 80, 210, 150]]")
        (folder / "b.csv").write_bytes(b"\xef\xbb\xbfx1,y1,x2,y2\n140,80,210,150\n")
        (folder / "t.csv").write_bytes(b"\xef\xbb\xbftext\nhello\n")
        (folder / "t.txt").write_bytes(b"\xef\xbb\xbfhello\n")
        return [["roi", CHELSEA, "--boxes-file", folder / "b.json", "--quiet"],
                ["roi", CHELSEA, "--boxes-file", folder / "b.csv", "--quiet"],
                ["embed", "--file", folder / "t.csv", "--column", "text", "-p", "mean"],
                ["embed", "--file", folder / "t.txt", "-p", "mean"]]
    return _make
