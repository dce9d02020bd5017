"""The hostile-input and failure suite: vizcli keeps working, says what is wrong, never leaves damage.

Cases are listed with what vizcli does in tests/README.md.
"""

import io
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.conftest import EXAMPLES, ROOT, bytes_read, has_loaded, wait_for
from vizcli.common.errors import BadInput
from vizcli.embed.texts import read_texts
from vizcli.roi.boxes import load_boxes_file, parse_box_text
from vizcli.roi.pooling import parse_output_size
from vizcli.shapes.report import parse_input_size

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _either_value_or_bad_input(function, *args):
    try:
        function(*args)
    except BadInput as error:
        assert "\n" not in str(error), str(error)
        return str(error)
    return None


# ---------------------------------------------------------------- 1. property-based parsers

box_like = st.one_of(
    st.text(max_size=40),
    st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6)), max_size=6).map(
        lambda values: ",".join(map(str, values))),
)


@PROPERTY
@given(box_like)
def test_box_text_parses_or_is_bad_input(text):
    message = _either_value_or_bad_input(parse_box_text, text, 1)
    if message is not None:
        assert message.startswith("box 1 ")


json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.floats(), st.integers(), st.text(max_size=5)),
                           lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=5), children, max_size=4),
                           max_leaves=20)


@PROPERTY
@given(st.one_of(json_values.map(json.dumps), st.text(max_size=200)), st.sampled_from(["b.json", "b.csv"]))
def test_box_files_parse_or_are_bad_input(tmp_path_factory, content, name):
    path = tmp_path_factory.mktemp("boxes") / name
    path.write_text(content, encoding="utf-8")
    _either_value_or_bad_input(load_boxes_file, str(path), ["a.png"])


@PROPERTY
@given(st.text(max_size=30))
def test_size_options_parse_or_are_bad_input(text):
    _either_value_or_bad_input(parse_input_size, text)
    _either_value_or_bad_input(parse_output_size, text)


@PROPERTY
@given(st.binary(max_size=300), st.sampled_from([("t.jsonl", "text", None), ("t.csv", None, "text"), ("t.tsv", None, "text"), ("t.txt", None, None)]))
def test_text_files_read_or_are_bad_input(tmp_path_factory, data, spec):
    name, field, column = spec
    path = tmp_path_factory.mktemp("texts") / name
    path.write_bytes(data)
    _either_value_or_bad_input(lambda: list(read_texts([], str(path), field, column)))


expression_alphabet = st.sampled_from(list("x+-*/^().0123456789e ") + ["pi", "sin", "cos", "exp", "log", "sqrt", "abs", "**", "__", "import", "os", ",", "[", "]"])


@PROPERTY
@given(st.one_of(st.text(max_size=40), st.lists(expression_alphabet, max_size=25).map("".join)))
def test_expressions_parse_or_are_bad_input(text):
    from vizcli.approx.fitting import make_target

    message = _either_value_or_bad_input(make_target, text, "-1,1")
    if message is not None:
        assert message.startswith("target=")


# ---------------------------------------------------------------- 2. broken files


def _noise_image(fmt, size=(64, 48)):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(buffer, format=fmt)
    return buffer.getvalue()


def _png_declaring(width, height):
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


BROKEN = {
    "empty.jpg": b"",
    "random.jpg": bytes(np.random.default_rng(2).integers(0, 256, 4096, dtype=np.uint8)),
    "random.png": bytes(np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8)),
    "text.png": b"this is not a picture\n",
    "bomb.png": _png_declaring(100_000, 100_000),
    **{f"cut{int(f * 100)}.{ext.lower()}": _noise_image(ext)[: int(len(_noise_image(ext)) * f)]
       for ext in ("JPEG", "PNG", "WEBP") for f in (0.05, 0.3, 0.6, 0.95)},
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_images_exit_2_one_line(invoke, tmp_path, name):
    path = tmp_path / name
    path.write_bytes(BROKEN[name])
    result = invoke("shapes", path, "--depth", "1")
    assert result.exit_code == 2, (name, result.stdout[-300:])
    assert result.stderr.startswith(f"Error: image {path}") and result.stderr.count("\n") == 1
    _check_form(result.stderr)


@pytest.mark.parametrize(
    "name, make",
    [("many.gif", lambda p: Image.new("RGB", (8, 8)).save(p, save_all=True, append_images=[Image.new("RGB", (8, 8), (i % 255, 0, 0)) for i in range(300)])),
     ("cmyk.jpg", lambda p: Image.new("CMYK", (40, 30), (0, 255, 255, 0)).save(p)),
     ("deep.png", lambda p: Image.fromarray(np.arange(1200, dtype=np.uint16).reshape(30, 40) * 50).save(p)),
     ("one.png", lambda p: Image.new("RGB", (1, 1), (9, 9, 9)).save(p))],
)
def test_unusual_but_valid_images_work(invoke, tmp_path, name, make):
    path = tmp_path / name
    make(path)
    result = invoke("shapes", path, "--depth", "1")
    assert result.exit_code == 0, result.stderr
    assert "computations: 69" in result.stdout
    roi = invoke("roi", path, "--boxes", "0,0,1,1", "--quiet")
    assert roi.exit_code == 0, roi.stderr


def test_image_smaller_than_the_network_takes_is_a_clear_failure(invoke, tmp_path):
    path = tmp_path / "tiny.png"
    Image.new("RGB", (8, 8)).save(path)
    result = invoke("shapes", path, "--keep-size", "--model", "vgg16", "--depth", "1")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: forward pass of image {path} failed at features.") and result.stderr.count("\n") == 1
    _check_form(result.stderr)


def test_broken_checkpoints(invoke, tmp_path):
    import torchvision
    from safetensors.torch import save_file

    state = torchvision.models.resnet18().state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "w.safetensors"))
    data = (tmp_path / "w.safetensors").read_bytes()
    (tmp_path / "corrupt.safetensors").write_bytes(data[:100] + b"\xff" * 100 + data[200:1000])
    torch.save(state, tmp_path / "w.pth")
    (tmp_path / "cut.pth").write_bytes((tmp_path / "w.pth").read_bytes()[:5000])
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"conv1.weight": Payload()}, tmp_path / "evil.pth")
    for name, fragment in (("corrupt.safetensors", "not a valid safetensors file"), ("cut.pth", "cannot be read"), ("evil.pth", "refused")):
        result = invoke("shapes", "--weights", tmp_path / name)
        assert result.exit_code == 2, (name, result.stderr)
        assert fragment in result.stderr and result.stderr.count("\n") == 1
        _check_form(result.stderr)
    assert not marker.exists()


# ---------------------------------------------------------------- 3. resources


@pytest.mark.slow
def test_ten_megabyte_line_is_truncated_flagged_and_bounded(tmp_path):
    line = ("word " * 2_000_000).encode()  # 10 MB, one line
    process = subprocess.Popen([sys.executable, "-m", "vizcli", "embed", "-p", "mean", "--quiet", "--max-line-bytes", "20000000"],
                               cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout, stderr = process.communicate(line + b"\n", timeout=300)
    assert process.returncode == 0, stderr.decode()[-500:]
    row = json.loads(stdout)
    assert row["truncated"] is True and row["tokens"] > 1_000_000
    assert stderr.decode().startswith("Warning: 1 texts longer than 512 tokens were truncated")


@pytest.mark.slow
def test_hundred_thousand_boxes(invoke, tmp_path):
    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 250, (100_000, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(5, 50, (100_000, 2))], axis=1)
    (tmp_path / "many.json").write_text(json.dumps(boxes.round(2).tolist()))
    result = invoke("roi", EXAMPLES / "chelsea.png", "--boxes-file", tmp_path / "many.json", "--layer", "layer1",
                    "--output-size", "2", "-o", tmp_path / "many.npy", "--quiet", "--format", "table")
    assert result.exit_code == 0, result.stderr
    assert np.load(tmp_path / "many.npy", mmap_mode="r").shape == (100_000, 64, 2, 2)
    assert "… and 99,950 more boxes" in result.stdout


def test_writing_to_dev_full_is_exit_1(invoke):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    for args in (["embed", "a cat", "-o", "/dev/full"], ["shapes", "--format", "json", "-o", "/dev/full"]):
        result = invoke(*args)
        assert result.exit_code == 1, args
        assert result.stderr.startswith("Error: writing /dev/full failed: No space left on device")
        _check_form(result.stderr)


@pytest.mark.process
def test_stdout_to_dev_full_is_exit_1():
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "vizcli", "shapes", "--format", "csv"], cwd=ROOT, stdout=full,
                                stderr=subprocess.PIPE, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("Error: writing output failed: No space left on device")


@pytest.mark.parametrize("target", ["missing/out.npz", "/proc/vizcli-test/out.npz", "/proc/out.npz"])
def test_unwritable_output_is_exit_2_before_model_work(invoke, tmp_path, monkeypatch, target):
    monkeypatch.chdir(tmp_path)
    # a --weights file that cannot load proves the order: the -o check must fire first
    result = invoke("roi", EXAMPLES / "chelsea.png", "--boxes", "1,1,50,50", "--weights", "nope.pth", "-o", target)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: -o {target}") and result.stderr.count("\n") == 1
    _check_form(result.stderr)
    assert os.listdir(tmp_path) == []


@pytest.mark.process
def test_two_processes_writing_the_same_file(tmp_path):
    target = tmp_path / "same.jsonl"
    texts = [[f"sentence {i} from writer {w}" for i in range(300)] for w in (0, 1)]
    processes = [subprocess.Popen([sys.executable, "-m", "vizcli", "embed", "-p", "mean", "-o", str(target), "--quiet"],
                                  cwd=ROOT, stdin=subprocess.PIPE, stderr=subprocess.PIPE) for _ in texts]
    for process, lines in zip(processes, texts):
        process.stdin.write(("\n".join(lines) + "\n").encode())
        process.stdin.close()
    for process in processes:
        assert process.wait(timeout=300) == 0, process.stderr.read()
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert [row["text"] for row in rows] in texts  # exactly one writer's complete result
    assert os.listdir(tmp_path) == ["same.jsonl"]


# ---------------------------------------------------------------- 4. interruption


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
def test_pipe_closed_by_head_is_quiet():
    result = subprocess.run(f"{sys.executable} -m vizcli shapes --format csv | head -1", shell=True, cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.stdout.startswith("input,index,name")
    assert result.stderr == "Warning: random weights (seed 0) — random weights: shapes and counts are exact; predictions are meaningless\n"


# ---------------------------------------------------------------- 5. every error message has the same form

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
    _check_form(result.stderr)


NAMES_THE_INPUT = ("--", "box ", "image ", "line ", "argument ", "-o ", "writing ", "no image", "no boxes", "no input", "No such command")
SAYS_THE_FIX = ("use ", "give ", "check", "choose", "fix", "remove", "shorten", "drop", "raise", "put ", "pass ", "write ",
                "install", "save ", "create", "see '", "did you mean", "e.g.", "at least", "at most", "must be", "needs", "need ",
                "only if", "free space", "between", "required", "not in", "starts with")


def _check_form(stderr: str) -> None:
    assert stderr.startswith("Error: ") and stderr.endswith("\n") and stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr
    assert any(marker in stderr for marker in NAMES_THE_INPUT), f"does not name the input: {stderr}"
    assert any(marker in stderr.lower() for marker in SAYS_THE_FIX), f"does not say how to fix it: {stderr}"

