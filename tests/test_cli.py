"""The CLI frame: help, version, the error boundary, pipes."""

import os
import subprocess
import sys

import pytest

from tests.checks import check_form
from tests.conftest import EXAMPLES, ROOT, run_vizcli
from vizcli.common.errors import BadInput

HEAVY = ("torch", "torchvision", "transformers", "PIL", "numpy", "ray", "pyarrow")


@pytest.mark.process
@pytest.mark.parametrize("command", [[], ["shapes"], ["roi"], ["embed"], ["approx"]])
def test_help_does_not_import_heavy_modules(command):
    code = (
        "import sys\n"
        "from vizcli.cli import app\n"
        "try:\n"
        f"    app({[*command, '--help']!r}, prog_name='vizcli')\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout + result.stderr
    assert "Usage" in result.stdout


def test_version(invoke):
    from vizcli import __version__

    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"vizcli {__version__}"


@pytest.mark.parametrize("command", ["shapes", "roi", "embed", "approx"])
def test_each_command_has_an_example_in_help(invoke, command):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert f"vizcli {command}" in result.stdout
    assert "Examples" in result.stdout


def test_unknown_option_is_one_line_exit_2(invoke):
    result = invoke("shapes", "--no-such-option")
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert "--no-such-option" in lines[0]


def test_unknown_command_is_one_line_exit_2(invoke):
    result = invoke("frobnicate")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1


@pytest.mark.process
def test_python_dash_m_works():
    result = run_vizcli("--version")
    assert result.returncode == 0
    assert result.stdout.decode().startswith("vizcli ")


@pytest.mark.process
def test_error_boundary_maps_exit_codes_and_debug():
    from vizcli.common.errors import RunFailure

    code = (
        "import sys\n"
        "from vizcli import cli\n"
        "from vizcli.common.errors import {cls}\n"
        "@cli.app.command('boom')\n"
        "def boom():\n"
        "    raise {cls}('box 3: x2 (20) must be greater than x1 (40)')\n"
        "cli.app(sys.argv[1:], prog_name='vizcli')\n"
    )
    for cls, expected in ((BadInput, 2), (RunFailure, 1)):
        source = code.format(cls=cls.__name__)
        result = subprocess.run([sys.executable, "-c", source, "boom"], capture_output=True, text=True, cwd=ROOT)
        assert result.returncode == expected
        assert result.stderr == "Error: box 3: x2 (20) must be greater than x1 (40)\n"
        debug = subprocess.run(
            [sys.executable, "-c", source, "--debug", "boom"], capture_output=True, text=True, cwd=ROOT
        )
        assert "Traceback" in debug.stderr


@pytest.mark.process
def test_unknown_exception_keeps_traceback():
    source = (
        "import sys\nfrom vizcli import cli\n"
        "@cli.app.command('bug')\ndef bug():\n    raise ZeroDivisionError('a bug')\n"
        "cli.app(sys.argv[1:], prog_name='vizcli')\n"
    )
    result = subprocess.run([sys.executable, "-c", source, "bug"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "ZeroDivisionError" in result.stderr


@pytest.mark.process
def test_closed_pipe_ends_quietly():
    source = (
        "import sys\nfrom vizcli import cli\n"
        "@cli.app.command('many')\ndef many():\n"
        "    for i in range(200000):\n        print('line', i)\n"
        "cli.app(sys.argv[1:], prog_name='vizcli')\n"
    )
    process = subprocess.Popen(
        f"{sys.executable} -c \"$SRC\" many | head -1",
        shell=True, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**__import__('os').environ, "SRC": source},
    )
    stdout, stderr = process.communicate(timeout=60)
    assert stdout.decode() == "line 0\n"
    assert stderr.decode() == ""


@pytest.mark.process
def test_shell_completion_offers_commands_choices_and_models():
    import subprocess

    def complete(words: str, cword: int) -> list[str]:
        env = dict(os.environ, _VIZCLI_COMPLETE="complete_bash", COMP_WORDS=words, COMP_CWORD=str(cword))
        result = subprocess.run([sys.executable, "-m", "vizcli"], env=env, capture_output=True, text=True, cwd=ROOT)
        return result.stdout.split()

    assert {"shapes", "roi", "embed", "approx"} <= set(complete("vizcli ", 1))
    assert complete("vizcli roi --layer ", 3) == ["layer1", "layer2", "layer3", "layer4", "fpn"]
    assert "resnet18" in complete("vizcli shapes --model resn", 3)


def test_core_errors_speak_python_and_the_cli_speaks_flags():

    error = BadInput("must be at least 1; or use on_overflow='skip'", parameter="batch_size", value=0)
    assert str(error) == "batch_size=0: must be at least 1; or use on_overflow='skip'"
    flags = {"batch_size": "--batch-size", "on_overflow": "--on-overflow"}
    assert error.for_command_line(flags) == "--batch-size 0: must be at least 1; or use --on-overflow skip"
    spaced = BadInput("no such file", parameter="file", value="my notes.txt")
    assert spaced.for_command_line({"file": "--file"}) == "--file 'my notes.txt': no such file"


@pytest.mark.process
def test_a_real_command_into_head_exits_0():
    """click turns a closed pipe into exit 1; vizcli's boundary makes it the success it is."""
    done = subprocess.run(["bash", "-c", f"{sys.executable} -m vizcli shapes examples/chelsea.png | head -1; "
                                         "exit ${PIPESTATUS[0]}"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    # stdout carries only the result: the table's first line; how the image was read goes to stderr
    assert done.returncode == 0 and done.stdout.startswith("resnet18 · input 1×3×224×224") and "Error" not in done.stderr, done.stderr
    assert "examples/chelsea.png: read PNG 451×300 RGB" in done.stderr


def test_writing_to_dev_full_is_exit_1(invoke):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    for args in (["embed", "a cat", "-o", "/dev/full"], ["shapes", "--output-format", "json", "-o", "/dev/full"]):
        result = invoke(*args)
        assert result.exit_code == 1, args
        last = result.stderr.splitlines()[-1] + "\n"  # informational lines (what input ran) may precede it
        assert last.startswith("Error: writing /dev/full failed: No space left on device")
        assert result.stderr.count("Error:") == 1
        check_form(last)


@pytest.mark.process
def test_stdout_to_dev_full_is_exit_1():
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "vizcli", "shapes", "--format", "csv"], cwd=ROOT, stdout=full,
                                stderr=subprocess.PIPE, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("Error: writing output failed: No space left on device")


@pytest.mark.process
def test_pipe_closed_by_head_is_quiet():
    result = subprocess.run(f"{sys.executable} -m vizcli shapes --format csv | head -1", shell=True, cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.stdout.startswith("input,index,name")
    assert result.stderr.endswith("predictions are meaningless\n") and "Error" not in result.stderr and "Traceback" not in result.stderr


BAD_INVOCATIONS = [
    ["shapes", "--depth", "7"], ["shapes", "--format", "yaml"], ["shapes", "--input-size", "3x"], ["shapes", "--model", "resnet"],
    ["shapes", "--device", "cuda:9"], ["shapes", "--threads", "0"], ["shapes", "--weights", "missing.pth"],
    ["shapes", "--check", "--model", "vgg11"], ["roi"], ["roi", str(EXAMPLES / "chelsea.png")],
    ["roi", str(EXAMPLES / "chelsea.png"), "--boxes", "5,5,1,1"], ["roi", str(EXAMPLES / "chelsea.png"), "--boxes", "1,1,9,9", "--layer", "fc"],
    ["roi", str(EXAMPLES / "chelsea.png"), "--boxes", "1,1,9,9", "--explain", "x"], ["roi", str(EXAMPLES / "chelsea.png"), "--boxes-file", "nope.json"],
    ["roi", "missing.png", "--boxes", "1,1,9,9"], ["embed", "--pooling", ""], ["embed", "--dtype", "int4", "a"],
    ["embed", "--file", "missing.jsonl"], ["embed", "--model", "./no/such/dir", "a"], ["embed", "--max-length", "1", "a"],
    ["approx", "--target", "sin("], ["approx", "--domain", "a,b"], ["approx", "--width", "1,,x"], ["frobnicate"],
]


@pytest.mark.parametrize("args", BAD_INVOCATIONS, ids=lambda args: " ".join(args)[:40])
def test_bad_invocations_are_one_line_exit_2(invoke, tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    result = invoke(*args)
    assert result.exit_code == 2, (args, result.stderr)
    check_form(result.stderr)
