import http.server
import os
import sys
import threading
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("VIZCLI_CACHE_DIR", os.path.join(__import__("tempfile").mkdtemp(prefix="vizcli-cache-"), "vizcli"))
os.environ["COLUMNS"] = "160"  # golden tables are rendered at a fixed width

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture
def runner():
    from typer.testing import CliRunner

    return CliRunner()


@pytest.fixture
def invoke(runner):
    """Run the CLI in-process; returns the click Result with separate stdout/stderr."""
    from vizcli.cli import app

    def _invoke(*args, input=None):
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

    def _check(name: str, text: str, rtol: float | None = None):
        """``rtol``: numbers in e-notation (``1.23e-02``) may differ by this relative amount (CPUs
        round differently); everything else, and every other number, must be equal."""
        path = ROOT / "tests" / "golden" / name
        if overwrite:
            path.parent.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
        assert path.exists(), f"golden {name} is missing; create it with --overwrite-golden"
        expected = path.read_text(encoding="utf-8")
        if rtol is None:
            assert text == expected, f"golden {name} differs; rerun with --overwrite-golden if intended"
            return
        import re

        number = re.compile(r"-?\d\.\d+e[-+]\d+")
        assert number.sub("N", text) == number.sub("N", expected), f"golden {name} differs beyond its numbers"
        for got, want in zip(number.findall(text), number.findall(expected)):
            a, b = float(got), float(want)
            assert abs(a - b) <= rtol * max(abs(a), abs(b)) + 1e-12, f"golden {name}: {got} against {want} (rtol {rtol})"

    return _check


def wait_for(condition, timeout=240, what="the process to reach its phase"):
    """Poll ``condition()`` until it holds (the event a signal test waits for); fail after ``timeout`` s."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def has_loaded(pid, library):
    """Whether process ``pid`` has mapped a shared library whose path contains ``library`` (e.g. libtorch)."""
    try:
        with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as handle:
            return any(library in line for line in handle)
    except OSError:
        return False


def is_reading(pid, fd=0):
    """Whether the main thread of ``pid`` sits in ``read(fd, …)`` now (Linux's /proc/PID/syscall)."""
    try:
        with open(f"/proc/{pid}/syscall", encoding="ascii") as handle:
            fields = handle.read().split()
    except OSError:
        return False
    return len(fields) > 1 and fields[0] == "0" and int(fields[1], 16) == fd


def bytes_read(pid):
    """Bytes process ``pid`` has read so far (``rchar`` of /proc/PID/io)."""
    try:
        with open(f"/proc/{pid}/io", encoding="ascii") as handle:
            return next(int(line.split()[1]) for line in handle if line.startswith("rchar:"))
    except (OSError, StopIteration):
        return 0


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """A loopback HTTP server (weights downloads are tested against it, never a mock): serves ``tmp_path/served`` on a free loopback port; yields (folder, base URL)."""
    folder = tmp_path / "served"
    folder.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a, **k: _Quiet(*a, directory=str(folder), **k))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
