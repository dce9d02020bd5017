"""vizcli.datasets.ray_connect.ray_session: joining a cluster fails fast, within --ray-timeout, or stops on SIGTERM.

A loopback socket stands in for a cluster head: one that refuses connections, and one that accepts
them and never answers (a port that is open but is not Ray's).
"""

import signal
import socket
import subprocess
import sys
import threading

import pytest

from tests.conftest import ROOT
from vizcli.common.errors import RunFailure

pytest.importorskip("ray")
pytestmark = [pytest.mark.ray]


@pytest.fixture
def silent_port():
    """A listening port that accepts connections and never says anything; yields (port, wait), where
    ``wait(n, seconds)`` returns once n connections have come."""
    server = socket.socket()
    server.bind(("", 0))  # every interface: Ray resolves 127.0.0.1 to this node's own address before it connects
    server.listen(16)
    arrived = threading.Condition()
    held = []

    def serve():
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            with arrived:
                held.append(connection)
                arrived.notify_all()

    def wait(count, seconds):
        with arrived:
            return arrived.wait_for(lambda: len(held) >= count, seconds)

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1], wait
    server.close()
    for connection in held:
        connection.close()


def _join(tmp_path, port, timeout):
    """``vizcli embed`` of one line, joining Ray at the loopback ``port`` within ``timeout`` seconds."""
    (tmp_path / "c.txt").write_text("a\n")
    return [sys.executable, "-m", "vizcli", "embed", "--file", str(tmp_path / "c.txt"), "-p", "mean", "-o",
            str(tmp_path / "o.parquet"), "--engine", "ray", "--ray-address", f"127.0.0.1:{port}", "--ray-timeout", str(timeout),
            "--quiet"]


def _closed_port():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    return port


def test_an_address_where_nothing_listens_fails_at_once_naming_it():
    from vizcli.datasets.ray_connect import ray_session

    address = f"127.0.0.1:{_closed_port()}"
    with pytest.raises(RunFailure) as failed, ray_session(address, 1, quiet=True, timeout=30):
        pass
    assert address in str(failed.value) and "nothing listens there" in str(failed.value)


def test_a_port_that_never_answers_fails_within_the_timeout(silent_port):
    from vizcli.datasets.ray_connect import ray_session

    port, _ = silent_port
    with pytest.raises(RunFailure) as failed, ray_session(f"127.0.0.1:{port}", 1, quiet=True, timeout=3):
        pass
    assert "within 3 s" in str(failed.value)


@pytest.mark.process
def test_the_cli_names_the_timeout_flag_and_exits_1(silent_port, tmp_path):
    port, _ = silent_port
    done = subprocess.run(_join(tmp_path, port, 3), cwd=ROOT, capture_output=True, text=True, timeout=300)
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert done.returncode == 1 and len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "within 3 s (raise --ray-timeout SECONDS)" in errors[0]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["c.txt"]


@pytest.mark.process
def test_sigterm_while_joining_exits_143_with_the_interrupted_line(silent_port, tmp_path):
    port, wait = silent_port
    process = subprocess.Popen(_join(tmp_path, port, 120), cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        # the event: vizcli's own probe was the first connection; Ray's client is the second, so ray.init is running
        assert wait(2, 240), "Ray never tried to connect"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert process.returncode == 143 and len(errors) == 1 and "Traceback" not in stderr, stderr
    assert errors[0].startswith("Error: interrupted by SIGTERM")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["c.txt"]
