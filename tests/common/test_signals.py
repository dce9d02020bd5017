"""vizcli.common.signals: a handled signal raises ``Interrupted``, and stays pending if that raise is lost."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import EXAMPLES, ROOT, bytes_read, has_loaded, is_reading, wait_for
from vizcli.common import signals
from vizcli.common.errors import Interrupted


@pytest.fixture
def handlers():
    previous = signals.install()
    yield
    signals.restore(previous)


def test_a_handled_signal_raises_interrupted_with_the_shell_exit_code(handlers):
    with pytest.raises(Interrupted) as caught:
        os.kill(os.getpid(), signal.SIGTERM)
    assert caught.value.exit_code == 128 + signal.SIGTERM


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the swallowed raise, on purpose
def test_a_signal_whose_raise_was_swallowed_is_raised_again_at_the_next_step(handlers):
    class Swallows:
        def __del__(self):  # exceptions raised here are only printed ("Exception ignored in ...")
            os.kill(os.getpid(), signal.SIGTERM)

    Swallows()
    with pytest.raises(Interrupted) as caught:
        signals.raise_if_interrupted()
    assert caught.value.exit_code == 128 + signal.SIGTERM


def test_install_forgets_a_signal_of_an_earlier_run(handlers):
    with pytest.raises(Interrupted):
        os.kill(os.getpid(), signal.SIGHUP)
    signals.restore(signals.install())
    signals.raise_if_interrupted()  # nothing pending: returns


def test_restore_puts_back_the_previous_handlers():
    before = signal.getsignal(signal.SIGTERM)
    signals.restore(signals.install())
    assert signal.getsignal(signal.SIGTERM) is before


def _wait_for_temp(folder, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if any(name.endswith(".tmp") for name in os.listdir(folder)):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
@pytest.mark.parametrize("signal_number, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_during_embed_leaves_no_file(tmp_path, signal_number, code):
    corpus = tmp_path / "in" / "lines.txt"
    corpus.parent.mkdir()
    corpus.write_text("\n".join(f"line number {i} of a long input" for i in range(200_000)) + "\n")
    out = tmp_path / "out"
    out.mkdir()
    process = subprocess.Popen([sys.executable, "-m", "vizcli", "embed", "--file", str(corpus), "-p", "mean", "-o",
                                str(out / "vectors.npy"), "--quiet"], cwd=ROOT, stderr=subprocess.PIPE)
    assert _wait_for_temp(out), "the run never started writing"  # the event: a temporary output file exists
    process.send_signal(signal_number)
    stderr = process.communicate(timeout=60)[1].decode()
    assert process.returncode == code
    name = signal.Signals(signal_number).name
    assert stderr == f"Error: interrupted by {name}; no output file was written\n"
    assert os.listdir(out) == []


@pytest.mark.slow
@pytest.mark.parametrize("signal_number, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_during_roi_leaves_no_file(tmp_path, signal_number, code):
    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 250, (200_000, 2))
    boxes = np.concatenate([corners, corners + 30], axis=1)
    (tmp_path / "boxes.json").write_text(json.dumps(boxes.round(1).tolist()))
    out = tmp_path / "out"
    out.mkdir()
    process = subprocess.Popen([sys.executable, "-m", "vizcli", "roi", str(EXAMPLES / "chelsea.png"), "--boxes-file",
                                str(tmp_path / "boxes.json"), "-o", str(out / "f.npy"), "--quiet", "--output-size", "3"],
                               cwd=ROOT, stderr=subprocess.PIPE)
    # the event: the boxes file is read and torch is loaded: the run is past its checks, into the work
    size = (tmp_path / "boxes.json").stat().st_size
    wait_for(lambda: bytes_read(process.pid) > size and has_loaded(process.pid, "libtorch"), what="the run to start")
    process.send_signal(signal_number)
    stderr = process.communicate(timeout=120)[1].decode()
    assert process.returncode == code, stderr
    assert stderr.endswith("no output file was written\n") and stderr.count("Error:") == 1
    assert os.listdir(out) == []


@pytest.mark.process
@pytest.mark.parametrize("number", [signal.SIGHUP, signal.SIGTERM, signal.SIGINT])
def test_every_signal_leaves_nothing_behind(tmp_path, number):
    target = tmp_path / "out.npy"
    process = subprocess.Popen([sys.executable, "-m", "vizcli", "embed", "-p", "mean", "-o", str(target), "--quiet"],
                               cwd=ROOT, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdin.write(b"a sentence\n" * 50)
    process.stdin.flush()
    # the event: torch is loaded (the model loads right after it) and the main thread waits on stdin again
    wait_for(lambda: has_loaded(process.pid, "libtorch") and is_reading(process.pid, 0), what="the model to load")
    process.send_signal(number)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + number, stderr
    assert stderr.decode().startswith("Error: interrupted by") and os.listdir(tmp_path) == []


@pytest.mark.process
def test_sigterm_stops_a_huge_line_read_within_seconds(tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "vizcli", "embed", "--file", "/dev/zero", "--max-line-bytes", "3000000000",
                                "--quiet"], cwd=ROOT, stderr=subprocess.PIPE)
    wait_for(lambda: bytes_read(process.pid) > 64 << 20, what="the line read to be under way")  # the event: 64 MB read
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)  # a hang guard: it stops at the next read
    assert process.returncode == 143, stderr
