import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ["COLUMNS"] = "160"  # golden tables are rendered at a fixed width

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture
def runner():
    from typer.testing import CliRunner

    from vizcli.common import console

    console.reset_consoles()
    yield CliRunner()
    console.reset_consoles()


@pytest.fixture
def invoke(runner):
    """Run the CLI in-process; returns the click Result with separate stdout/stderr."""
    from vizcli.cli import app

    def _invoke(*args, input=None):
        from vizcli.common import console

        console.reset_consoles()
        return runner.invoke(app, [str(a) for a in args], input=input, catch_exceptions=False)

    return _invoke


def run_vizcli(*args, input=None, env=None, timeout=300):
    """Run vizcli as a real process (for signals, pipes and import checks)."""
    import subprocess

    full_env = dict(os.environ, **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "vizcli", *map(str, args)],
        input=input,
        capture_output=True,
        env=full_env,
        timeout=timeout,
        cwd=ROOT,
    )


def pytest_addoption(parser):
    parser.addoption("--overwrite-golden", action="store_true", help="Regenerate tests/golden/* from the current output.")


@pytest.fixture
def golden(request):
    """Compare text with tests/golden/NAME, or rewrite it under --overwrite-golden."""
    overwrite = request.config.getoption("--overwrite-golden")

    def _check(name: str, text: str):
        path = ROOT / "tests" / "golden" / name
        if overwrite:
            path.parent.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
        assert path.exists(), f"golden {name} is missing; create it with --overwrite-golden"
        assert text == path.read_text(encoding="utf-8"), f"golden {name} differs; rerun with --overwrite-golden if intended"

    return _check
