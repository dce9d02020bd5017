"""The shapes command as a whole: stdout is the result only, files are confirmed, help is grouped."""

import subprocess
import sys

import pytest

from tests.checks import CHELSEA


def test_head_1_prints_the_tables_first_line(tmp_path):
    # a real pipe: the preprocessing line goes to stderr, so the table's title is stdout's first line
    command = f"{sys.executable} -m vizcli shapes {CHELSEA} --depth 1 | head -1"
    done = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "COLUMNS": "120", "PYTHONPATH": str(CHELSEA.parents[1])})
    assert done.stdout.startswith("resnet18 · input 1×3×224×224 · depth 1"), done.stdout + done.stderr
    assert done.stdout.count("\n") == 1
    lines = done.stderr.splitlines()
    preprocessing = [line for line in lines if line.startswith(f"{CHELSEA}:")]
    assert len(preprocessing) == 1 and preprocessing[0].endswith("tensor 3×224×224 float32")  # one line, not wrapped
    assert "Traceback" not in done.stderr


def test_every_written_file_is_confirmed_on_stderr(invoke, tmp_path):
    table = tmp_path / "rows.json"
    result = invoke("shapes", "--depth", "1", "--input-size", "3x32x32", "-o", table)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "" and result.stderr.splitlines()[-1] == f"wrote {table}"
    assert table.read_text().startswith("{")


@pytest.mark.parametrize("panel", ["Input", "Model", "Output", "Memory/Training", "Comparison", "Activations"])
def test_help_groups_the_options_in_panels(invoke, panel):
    result = invoke("shapes", "--help")
    assert result.exit_code == 0
    assert f"─ {panel} " in result.stdout


def test_the_command_body_stays_short():
    import inspect

    from vizcli.shapes import cli

    source = inspect.getsource(cli.shapes)
    body = source[source.index(') -> None:'):].splitlines()[1:]
    assert len(body) <= 40, len(body)


def test_pictures_must_not_collide(invoke, tmp_path):
    same = tmp_path / "same.png"
    result = invoke("shapes", "--stage-strip", same, "--channel-grid", f"layer1.0.conv1={same}")
    assert result.exit_code == 2 and "written twice" in result.stderr and result.stderr.count("\n") == 1
    assert invoke("shapes", "--stage-strip", tmp_path / "strip.svg").stderr.startswith("Error: --stage-strip")
    assert "LAYER=FILE.png" in invoke("shapes", "--channel-grid", "layer1").stderr
