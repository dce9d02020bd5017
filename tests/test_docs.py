"""The documentation's generated blocks (docs/_cog.py, `make docs` / `make docs-check`) cannot drift unnoticed.

A real page (the CLI reference, generated from the Typer app) and a small page with a real console block are
copied to a temporary folder; a one-character edit inside a generated block must make the check fail, and
regenerating must make it pass again. The whole documentation check (every command) is `make docs-check`, run by CI.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytest.importorskip("cogapp", reason="the docs extra (make setup installs it)")


def _cog_module():
    spec = importlib.util.spec_from_file_location("_cog", ROOT / "docs" / "_cog.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["_cog"] = module  # the prologue of every block imports it by this name
    spec.loader.exec_module(module)
    return module


def _edit_inside_block(text: str, marker: str) -> str:
    """``text`` with one character changed in the first generated line after ``marker`` (a cog block's start)."""
    start = text.index(marker)
    body = text.index("]]] -->", start) + len("]]] -->\n")
    line_end = text.index("\n", body + 1)
    position = next(index for index in range(body, line_end) if text[index].isalnum())
    changed = "X" if text[position] != "X" else "Y"
    return text[:position] + changed + text[position + 1:]


@pytest.fixture
def cog(monkeypatch: pytest.MonkeyPatch):
    module = _cog_module()
    yield module
    sys.modules.pop("_cog", None)


def test_the_cli_reference_check_fails_on_an_edit_and_passes_once_regenerated(cog, tmp_path: Path) -> None:
    page = tmp_path / "cli.md"
    shutil.copy(ROOT / "docs" / "cli.md", page)
    assert cog.main([str(page)]) == 0  # regenerated first: this test checks the mechanism; `make docs-check` the pages
    original = page.read_text()
    assert cog.main([str(page), "--check"]) == 0
    page.write_text(_edit_inside_block(original, "[[[cog cli_reference()"))
    assert cog.main([str(page), "--check"]) != 0
    assert cog.main([str(page)]) == 0
    assert page.read_text() == original
    assert cog.main([str(page), "--check"]) == 0


@pytest.mark.process
def test_a_console_block_is_rerun_checked_and_masked(cog, tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text('<!-- [[[cog console("vizcli --version && sleep 0.01 && echo took 1.5 s") ]]] -->\n<!-- [[[end]]] -->\n')
    assert cog.main([str(page)]) == 0
    generated = page.read_text()
    from vizcli import __version__

    assert f"```console\n$ vizcli --version && sleep 0.01 && echo took 1.5 s\nvizcli {__version__}\ntook … s\n```\n" in generated
    assert cog.main([str(page), "--check"]) == 0
    page.write_text(generated.replace(f"vizcli {__version__}", f"vizcli {__version__}0"))
    assert cog.main([str(page), "--check"]) != 0
    assert cog.main([str(page)]) == 0
    assert page.read_text() == generated


def test_masks_and_trims_say_what_they_left_out(cog, tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    text = f"wrote {scratch}/feats.parquet in 14.7 ms (812 texts/s) to /tmp/tmpab12cd/x\nread {ROOT}/examples/a.png"
    assert cog.mask(text, scratch) == "wrote feats.parquet in … ms (… texts/s) to /tmp/…/x\nread examples/a.png"
    lines = [f"line {number}" for number in range(10)]
    assert cog._trim(lines, 2, None, [r"line 5"]) == ["line 0", "line 1", "…", "line 5", "…"]
    table = ["┏━━━┳━━━━━━━┓", "┃ # ┃ fit s ┃", "┡━━━╇━━━━━━━┩", "│ 1 │ 93.17 │", "└───┴───────┘"]
    assert cog.mask_columns(table, ["fit s"])[3] == "│ 1 │     … │"
