import json
import os
import subprocess
import sys

import pytest

from tests.checks import CHELSEA
from tests.conftest import ROOT


@pytest.mark.process
@pytest.mark.parametrize("columns", ["", "abc", "0", "-5", "20"])
def test_odd_columns_still_give_a_readable_table(columns):
    result = subprocess.run([sys.executable, "-m", "vizcli", "shapes", "--depth", "1"], capture_output=True, text=True,
                            cwd=ROOT, env=dict(os.environ, COLUMNS=columns), timeout=300)
    assert result.returncode == 0, result.stderr
    assert "layer4" in result.stdout and "conv1" in result.stdout


@pytest.mark.process
def test_ascii_stdout_gets_output_not_unicode_errors():
    env = dict(os.environ, PYTHONIOENCODING="ascii")
    for args in (["shapes", "--depth", "1"], ["roi", "--explain-notes"], ["embed", "café ☕", "-p", "mean"]):
        result = subprocess.run([sys.executable, "-m", "vizcli", *args], capture_output=True, cwd=ROOT, env=env, timeout=300)
        assert result.returncode == 0, (args, result.stderr[-500:])
        assert b"UnicodeEncodeError" not in result.stderr and result.stdout


def test_control_sequences_in_user_strings_are_escaped(invoke, tmp_path):
    boxes = tmp_path / "b.json"
    boxes.write_text(json.dumps([{"box": [140, 80, 210, 150], "label": "cat\x1b[2J\x07"}]))
    result = invoke("roi", CHELSEA, "--boxes-file", boxes, "--quiet")
    assert result.exit_code == 0 and "\x1b" not in result.stdout and "\\x1b" in result.stdout
    missing = invoke("embed", "--file", "no\x1b[31mfile")
    assert "\x1b" not in missing.stderr and "\\x1b" in missing.stderr
