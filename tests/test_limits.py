"""Hostile inputs, round two: sizes checked before memory is spent, parser limits, one OS-error
mapping for every path, odd terminals, signals, validation before the model runs.

Each class is table-driven and generates its own inputs; the memory cases run in a child under
``RLIMIT_AS``, the signal cases in subprocesses.
"""

import json
import os
import resource
import signal
import subprocess
import sys
import zipfile

import pytest
from PIL import Image

from tests.conftest import EXAMPLES, ROOT, bytes_read, has_loaded, is_reading, wait_for

CHELSEA = EXAMPLES / "chelsea.png"
LONG_NAME = "x" * 300  # past the 255-byte limit of a file name


def _one_error_line(result, code=2):
    assert result.exit_code == code, (result.exit_code, result.stdout[-300:], result.stderr)
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


# ---------------------------------------------------------------- 1. sizes before memory


@pytest.mark.parametrize("size, fragment", [((60000, 1), "resizing its shorter side to 256 gives"), ((20000, 10), "resizing")])
def test_every_image_size_the_pipeline_makes_is_checked(invoke, tmp_path, size, fragment):
    path = tmp_path / "thin.png"
    Image.new("RGB", size, (200, 10, 10)).save(path)
    message = _one_error_line(invoke("shapes", path, "--depth", "1"))
    assert fragment in message and "--max-pixels" in message


@pytest.mark.parametrize("value", ["0", "-5"])
def test_max_pixels_must_be_positive(invoke, value):
    message = _one_error_line(invoke("shapes", CHELSEA, "--max-pixels", value))
    assert f"--max-pixels {value}" in message


def test_boxes_count_limit_from_the_command_line_and_from_files(invoke, tmp_path):
    many = ["--boxes", "1,1,9,9"] * 3
    assert "--max-boxes 2" in _one_error_line(invoke("roi", CHELSEA, *many, "--max-boxes", "2"))
    big = tmp_path / "boxes.json"
    big.write_text(json.dumps([[1, 1, 9, 9]] * 50))
    message = _one_error_line(invoke("roi", CHELSEA, "--boxes-file", big, "--max-boxes", "2"))
    assert "bytes is more than 2 boxes can take" in message and "--max-boxes" in message
    rows = tmp_path / "boxes.csv"
    rows.write_text("x1,y1,x2,y2\n" + "1,1,9,9\n" * 4)
    assert "more than --max-boxes 3 boxes" in _one_error_line(invoke("roi", CHELSEA, "--boxes-file", rows, "--max-boxes", "3"))


def test_a_line_without_newline_is_refused_at_the_limit(invoke, tmp_path):
    endless = tmp_path / "endless.txt"
    endless.write_bytes(b"a" * 5000)
    message = _one_error_line(invoke("embed", "--file", endless, "--max-line-bytes", "1000"))
    assert "line 1: longer than 1,000 bytes" in message and "--max-line-bytes" in message
    csv_file = tmp_path / "t.csv"
    csv_file.write_text("text\n" + "b" * 5000 + "\n")
    assert "line 2" in _one_error_line(invoke("embed", "--file", csv_file, "--column", "text", "--max-line-bytes", "1000"))


@pytest.mark.process
def test_dev_zero_stops_at_the_line_limit_with_little_memory():
    result = subprocess.run([sys.executable, "-m", "vizcli", "embed", "--file", "/dev/zero", "--quiet"],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 2 and "longer than 1,048,576 bytes" in result.stderr, result.stderr


@pytest.mark.parametrize("value", ["0", "100000"])
def test_batch_size_has_bounds(invoke, value):
    assert f"--batch-size {value}" in _one_error_line(invoke("embed", "--batch-size", value, "a"))


def test_checkpoint_that_declares_gigabytes_is_refused_before_loading(invoke, tmp_path):
    bomb = tmp_path / "bomb.pth"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data/0", b"\0" * (64 << 20))
    assert bomb.stat().st_size < 1 << 20
    message = _one_error_line(invoke("shapes", "--weights", bomb))
    assert "zip bomb" in message and "67,108,864 bytes" in message


def _limited():
    resource.setrlimit(resource.RLIMIT_AS, (4_000_000_000, 4_000_000_000))


@pytest.mark.process
@pytest.mark.parametrize("make, args, fragment", [
    (lambda d: Image.new("RGB", (60000, 1)).save(d / "thin.png"), ["shapes", "{d}/thin.png"], "above the limit of 89,478,485"),
    (lambda d: (d / "deep.json").write_text("[" * 100_000), ["roi", str(CHELSEA), "--boxes-file", "{d}/deep.json"],
     "JSON nested too deeply"),
    (lambda d: (d / "long.txt").write_bytes(b"z" * (3 << 20)), ["embed", "--file", "{d}/long.txt"],
     "line 1: longer than 1,048,576 bytes; split it, or raise --max-line-bytes N"),
    (lambda d: (d / "huge.csv").write_text("x1,y1,x2,y2\n" + "9" * 5000 + ",1,2,3\n"), ["roi", str(CHELSEA), "--boxes-file", "{d}/huge.csv"],
     "coordinates must be finite numbers; got [inf, 1.0, 2.0, 3.0]"),
])
def test_under_a_4_gb_address_space_bad_input_is_one_line(tmp_path, make, args, fragment):
    make(tmp_path)
    argv = [arg.replace("{d}", str(tmp_path)) for arg in args]
    result = subprocess.run([sys.executable, "-m", "vizcli", *argv], capture_output=True, text=True, cwd=ROOT,
                            preexec_fn=_limited, timeout=300)
    assert result.returncode == 2, result.stderr[-500:]  # bad input, found from declared sizes before memory is spent
    assert "Traceback" not in result.stderr and result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert fragment in result.stderr


# ---------------------------------------------------------------- 2. parser limits


@pytest.mark.parametrize("content, fragment", [
    ("[" * 100_000, "nested too deeply at line 1 column 65"),
    ("[[1,1,9," + "9" * 500 + "]]", "a number of 500 characters"),
    ("[[1,1,9," + "9" * 5000 + "]]", "a number of 5000 characters"),
    ("[[1,1,9,1" + "0" * 400 + ".5]]", "a number of"),
    ("x1,y1,x2,y2\n1,1," + "9" * 400 + ",9\n", "finite"),
    ("x1,y1,x2,y2\n1,1," + "9" * 5000 + ",9\n", "finite"),
])
def test_boxes_files_with_absurd_nesting_or_numbers(invoke, tmp_path, content, fragment):
    path = tmp_path / ("boxes.json" if content[0] == "[" else "boxes.csv")
    path.write_text(content)
    assert fragment in _one_error_line(invoke("roi", CHELSEA, "--boxes-file", path))


def test_jsonl_with_a_huge_integer_names_the_line(invoke, tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"text": "ok"}\n{"text": "x", "n": ' + "7" * 5000 + "}\n")
    assert "line 2: a number of 5000 characters" in _one_error_line(invoke("embed", "--file", path, "--field", "text"))


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


# ---------------------------------------------------------------- 3. one OS-error mapping for paths


@pytest.mark.parametrize("args", [
    ["shapes", LONG_NAME], ["roi", LONG_NAME, "--boxes", "1,1,9,9"], ["roi", str(CHELSEA), "--boxes-file", LONG_NAME],
    ["embed", "--file", LONG_NAME], ["shapes", "--weights", LONG_NAME + ".pth"], ["embed", "--model", "./" + LONG_NAME, "a"],
    ["shapes", "-o", LONG_NAME], ["embed", "a", "-o", LONG_NAME + ".npy"], ["roi", str(CHELSEA), "--boxes", "1,1,9,9", "-o", LONG_NAME + ".npz"],
])
def test_too_long_names_are_one_line_exit_2(invoke, tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    message = _one_error_line(invoke(*args))
    long_arg = next(arg for arg in args if LONG_NAME in arg)
    named = args[args.index(long_arg) - 1]
    shown = "image" if named in ("shapes", "roi") else named  # a positional image, or the flag that took the name
    assert message.startswith(f"Error: {shown} {long_arg[:40]}")
    assert message.endswith(": a name in the path is too long (at most 255 bytes a name); shorten it\n")


def test_side_file_blocked_by_a_folder_is_refused_before_work(invoke, tmp_path):
    (tmp_path / "x.npy.json").mkdir()
    message = _one_error_line(invoke("embed", "a", "-p", "mean", "-o", tmp_path / "x.npy"))
    assert "x.npy.json is a folder" in message
    assert not (tmp_path / "x.npy").exists()


def test_a_legal_long_output_name_works(invoke, tmp_path):
    target = tmp_path / ("v" * 248 + ".csv")
    result = invoke("embed", "a", "-p", "mean", "-o", target)
    assert result.exit_code == 0, result.stderr
    assert target.exists() and os.listdir(tmp_path) == [target.name]


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv", "tsv", "npy", "npz", "safetensors"])
def test_dev_null_takes_every_format(invoke, fmt):
    result = invoke("embed", "a cat", "-p", "mean", "-o", "/dev/null", "--format", fmt)
    assert result.exit_code == 0, result.stderr
    assert not os.path.exists("/dev/null.json")


@pytest.mark.process
def test_fifo_output_gets_a_readable_npz(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    process = subprocess.Popen([sys.executable, "-m", "vizcli", "embed", "a cat", "-p", "mean", "-o", str(fifo), "--format", "npz"],
                               cwd=ROOT, stderr=subprocess.PIPE)
    with open(fifo, "rb") as reader:
        data = reader.read()
    assert process.wait(timeout=300) == 0, process.stderr.read()
    import io

    import numpy as np

    assert np.load(io.BytesIO(data))["mean"].shape == (1, 384)


def test_output_through_a_symlink_writes_the_target(invoke, tmp_path):
    real = tmp_path / "real.csv"
    real.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    result = invoke("embed", "a", "-p", "mean", "-o", link)
    assert result.exit_code == 0, result.stderr
    assert link.is_symlink() and real.read_text().startswith("index,text")


@pytest.mark.parametrize("make_args", [
    lambda d: ["shapes", d / "x.png", "-o", d / "x.png"],
    lambda d: ["roi", d / "x.png", "--boxes", "1,1,9,9", "--plot", d / "x.png"],
    lambda d: ["embed", "--file", d / "in.csv", "--column", "text", "-o", d / "in.csv"],
])
def test_an_output_that_is_an_input_is_refused_before_work(invoke, tmp_path, make_args):
    Image.new("RGB", (64, 64)).save(tmp_path / "x.png")
    (tmp_path / "in.csv").write_text("text\nhello\n")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert "is also an input" in _one_error_line(invoke(*make_args(tmp_path)))
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


@pytest.mark.parametrize("args", [
    ["shapes", "--format", "json", "-o", "{d}/x.csv"], ["approx", "--format", "csv", "-o", "{d}/x.json"],
    ["embed", "a", "--format", "json", "-o", "{d}/x.csv"],
])
def test_format_contradicting_the_extension_is_an_error(invoke, tmp_path, args):
    argv = [arg.replace("{d}", str(tmp_path)) for arg in args]
    assert "the extension says" in _one_error_line(invoke(*argv))
    assert os.listdir(tmp_path) == []


def test_the_extension_chooses_the_format_when_none_is_given(invoke, tmp_path):
    result = invoke("shapes", "--depth", "1", "-o", tmp_path / "s.json")
    assert result.exit_code == 0, result.stderr
    assert json.loads((tmp_path / "s.json").read_text())["schema"] == "vizcli.shapes/1"


# ---------------------------------------------------------------- 4. terminals of every kind


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


# ---------------------------------------------------------------- 5. signals and pipes


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


# ---------------------------------------------------------------- 6. validation before the model runs


def test_explain_channel_is_checked_before_anything_prints(invoke):
    result = invoke("roi", CHELSEA, "--boxes", "140,80,210,150", "--explain", "1", "--channel", "999")
    assert "--channel 999" in _one_error_line(result) and result.stdout == ""


def test_input_size_with_channels_the_model_cannot_take(invoke):
    assert "3-channel" in _one_error_line(invoke("shapes", "--input-size", "1x224x224"))


def test_threads_above_the_cores_warn_and_are_capped(invoke):
    result = invoke("approx", "--width", "2", "--restarts", "1", "--threads", "10000")
    assert result.exit_code == 0, result.stderr
    assert "Warning: --threads 10000 is more than the" in result.stderr  # warnings name flags, as errors do


@pytest.mark.parametrize("name, fragment", [
    ("a b", "neither a model folder nor a Hugging Face repo id"), ("bad//name", "no such folder"),
    ("x" * 200, "neither a model folder nor a Hugging Face repo id"), ("org/na me", "neither a model folder nor a Hugging Face repo id"),
    ("über", "neither a model folder nor a Hugging Face repo id"),
])
def test_model_names_that_are_no_folder_or_repo_id(invoke, tmp_path, monkeypatch, name, fragment):
    monkeypatch.chdir(tmp_path)
    message = _one_error_line(invoke("embed", "--model", name, "a"))
    assert fragment in message  # each name has the one answer it must get


# ---------------------------------------------------------------- 7. what a user cannot see


def test_boxes_keyed_by_an_ambiguous_file_name(invoke, tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        Image.new("RGB", (64, 64)).save(tmp_path / folder / "x.png")
    first, second = tmp_path / "a" / "x.png", tmp_path / "b" / "x.png"
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"x.png": [[1, 1, 9, 9]]}))
    assert "matches 2 images" in _one_error_line(invoke("roi", first, second, "--boxes-file", boxes))
    boxes.write_text(json.dumps({str(first): [[1, 1, 9, 9]], str(second): [[2, 2, 9, 9]]}))
    result = invoke("roi", first, second, "--boxes-file", boxes, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert [row["box"][0] for row in json.loads(result.stdout)["rows"]] == [1, 2]


def test_nan_weights_are_flagged_not_printed_as_percentages(invoke, tmp_path):
    import torch
    import torchvision

    state = {key: torch.full_like(value, float("nan")) if value.is_floating_point() else value
             for key, value in torchvision.models.resnet18().state_dict().items()}
    torch.save(state, tmp_path / "nan.pth")
    result = invoke("shapes", CHELSEA, "--weights", tmp_path / "nan.pth", "--depth", "1")
    assert result.exit_code == 0, result.stderr
    assert "NaN or infinite" in result.stdout and "nan%" not in result.stdout


def test_a_pole_in_the_target_is_warned_about(invoke):
    result = invoke("approx", "--target", "1/(x-0.00001)", "--width", "1", "--restarts", "1")
    assert "a pole?" in result.stderr


def test_fx_internals_never_reach_a_message():
    from vizcli.shapes.trace import trace_error_text

    assert trace_error_text(RuntimeError("size mismatch for Proxy(getitem_2) While executing %x")) == "size mismatch for getitem_2"


def test_roi_metadata_records_the_exif_orientation(invoke, tmp_path):
    image = Image.new("RGB", (80, 40), (10, 200, 10))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise when shown
    image.save(tmp_path / "rotated.jpg", exif=exif)
    result = invoke("roi", tmp_path / "rotated.jpg", "--boxes", "1,1,30,60", "--format", "json", "--quiet")
    assert result.exit_code == 0, result.stderr
    meta = json.loads(result.stdout)["metadata"]["images"][0]
    assert meta["exif_orientation"] == 6 and meta["size"] == [40, 80]


@pytest.mark.process
@pytest.mark.parametrize("fmt", ["pt", "npy", "npz", "safetensors"])
def test_roi_features_go_to_a_pipe_in_every_format(fmt):
    result = subprocess.run([sys.executable, "-m", "vizcli", "roi", str(CHELSEA), "--boxes", "1,1,50,50", "-o", "/dev/stdout",
                             "--save-format", fmt, "--quiet"], capture_output=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-500:]
    assert len(result.stdout) > 256 * 7 * 7 * 4  # one box of [256, 7, 7] float32, plus headers
