"""vizcli.common.files: atomic output (nothing half-written), writability probes, formats from extensions."""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.checks import CHELSEA, check_form, one_error_line
from tests.conftest import EXAMPLES, ROOT
from vizcli.common.errors import BadInput
from vizcli.common.files import atomic_output, check_writable, format_for_path


def test_failed_write_leaves_no_file(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(ZeroDivisionError), atomic_output(str(target)) as handle:
        handle.write(b"partial")
        1 / 0
    assert os.listdir(tmp_path) == []


def test_interrupted_write_leaves_no_file(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old complete result")
    with pytest.raises(KeyboardInterrupt), atomic_output(str(target)) as handle:
        handle.write(b"partial")
        raise KeyboardInterrupt
    assert os.listdir(tmp_path) == ["out.json"]
    assert target.read_text() == "old complete result"


def test_check_writable(tmp_path):
    with pytest.raises(BadInput, match="does not exist"):
        check_writable(str(tmp_path / "nope" / "out.npz"))
    with pytest.raises(BadInput, match="is a folder"):
        check_writable(str(tmp_path))
    check_writable(str(tmp_path / "ok.npz"))
    check_writable("-")


def test_format_for_path():
    assert format_for_path("a.NPZ", ["npz", "pt"]) == "npz"
    assert format_for_path("a.pth", ["npz", "pt"]) == "pt"
    with pytest.raises(BadInput, match=r"\.xyz"):
        format_for_path("a.xyz", ["npz", "pt"])


@pytest.mark.parametrize("target", ["missing/out.npz", "/proc/vizcli-test/out.npz", "/proc/out.npz"])
def test_unwritable_output_is_exit_2_before_model_work(invoke, tmp_path, monkeypatch, target):
    monkeypatch.chdir(tmp_path)
    # a --weights file that cannot load proves the order: the -o check must fire first
    result = invoke("roi", EXAMPLES / "chelsea.png", "--boxes", "1,1,50,50", "--weights", "nope.pth", "-o", target)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: -o {target}") and result.stderr.count("\n") == 1
    check_form(result.stderr)
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


LONG_NAME = "x" * 300  # past the 255-byte limit of a file name


@pytest.mark.parametrize("args", [
    ["shapes", LONG_NAME], ["roi", LONG_NAME, "--boxes", "1,1,9,9"], ["roi", str(CHELSEA), "--boxes-file", LONG_NAME],
    ["embed", "--file", LONG_NAME], ["shapes", "--weights", LONG_NAME + ".pth"], ["embed", "--model", "./" + LONG_NAME, "a"],
    ["shapes", "-o", LONG_NAME], ["embed", "a", "-o", LONG_NAME + ".npy"], ["roi", str(CHELSEA), "--boxes", "1,1,9,9", "-o", LONG_NAME + ".npz"],
])
def test_too_long_names_are_one_line_exit_2(invoke, tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    message = one_error_line(invoke(*args))
    long_arg = next(arg for arg in args if LONG_NAME in arg)
    named = args[args.index(long_arg) - 1]
    shown = "image" if named in ("shapes", "roi") else named  # a positional image, or the flag that took the name
    assert message.startswith(f"Error: {shown} {long_arg[:40]}")
    assert message.endswith(": a name in the path is too long (at most 255 bytes a name); shorten it\n")


def test_side_file_blocked_by_a_folder_is_refused_before_work(invoke, tmp_path):
    (tmp_path / "x.npy.json").mkdir()
    message = one_error_line(invoke("embed", "a", "-p", "mean", "-o", tmp_path / "x.npy"))
    assert "x.npy.json is a folder" in message
    assert not (tmp_path / "x.npy").exists()


def test_a_legal_long_output_name_works(invoke, tmp_path):
    target = tmp_path / ("v" * 248 + ".csv")
    result = invoke("embed", "a", "-p", "mean", "-o", target)
    assert result.exit_code == 0, result.stderr
    assert target.exists() and os.listdir(tmp_path) == [target.name]


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv", "tsv", "npy", "npz", "safetensors"])
def test_dev_null_takes_every_format(invoke, fmt):
    result = invoke("embed", "a cat", "-p", "mean", "-o", "/dev/null", "--output-format", fmt)
    assert result.exit_code == 0, result.stderr
    assert not os.path.exists("/dev/null.json")


@pytest.mark.process
def test_fifo_output_gets_a_readable_npz(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    process = subprocess.Popen([sys.executable, "-m", "vizcli", "embed", "a cat", "-p", "mean", "-o", str(fifo), "--output-format", "npz"],
                               cwd=ROOT, stderr=subprocess.PIPE)
    with open(fifo, "rb") as reader:
        data = reader.read()
    assert process.wait(timeout=300) == 0, process.stderr.read()


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
    assert "is also an input" in one_error_line(invoke(*make_args(tmp_path)))
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


@pytest.mark.parametrize("args", [
    ["shapes", "--output-format", "json", "-o", "{d}/x.csv"], ["approx", "--output-format", "csv", "-o", "{d}/x.json"],
    ["embed", "a", "--output-format", "json", "-o", "{d}/x.csv"],
])
def test_format_contradicting_the_extension_is_an_error(invoke, tmp_path, args):
    argv = [arg.replace("{d}", str(tmp_path)) for arg in args]
    assert "the extension says" in one_error_line(invoke(*argv))
    assert os.listdir(tmp_path) == []


def test_the_extension_chooses_the_format_when_none_is_given(invoke, tmp_path):
    result = invoke("shapes", "--depth", "1", "-o", tmp_path / "s.json")
    assert result.exit_code == 0, result.stderr
    assert json.loads((tmp_path / "s.json").read_text())["schema"] == "vizcli.shapes/1"


def test_an_output_that_is_a_read_file_is_refused_however_it_is_named(tmp_path):
    from vizcli.common.errors import BadInput
    from vizcli.common.files import refuse_overwriting_inputs

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    source = tmp_path / "m.py"
    source.write_text("x = 1\n")
    (tmp_path / "link.py").symlink_to(source)
    os.link(source, tmp_path / "hard.py")
    for output, inputs in ((source, [source]), (tmp_path / "link.py", [source]), (tmp_path / "hard.py", [source]),
                           (tmp_path / "." / "m.py", [tmp_path / "link.py"]), (model / "config.json", [model]),
                           ([tmp_path / "new.npy", source], [source])):
        with pytest.raises(BadInput, match="is also an input"):
            refuse_overwriting_inputs(output, inputs)
    refuse_overwriting_inputs(tmp_path / "new.txt", [source, model])  # nothing there yet
    refuse_overwriting_inputs("-", [source])
    refuse_overwriting_inputs(os.devnull, [os.devnull])
    refuse_overwriting_inputs(model / "config.json", [model], whole_folders=False)  # a dataset folder: only itself
    assert source.read_text() == "x = 1\n"


def test_no_command_writes_over_a_file_it_reads(invoke, tmp_path):
    """The one check (``refuse_overwriting_inputs``) as each writing command meets it, before any work."""
    from vizcli.common.files import refuse_overwriting_inputs
    from vizcli.common.models import model_input_files

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "bert"}')
    (tmp_path / "net.py").write_text("import torch.nn as nn\n\ndef build():\n    return nn.Linear(4, 2)\n")
    (tmp_path / "texts.txt").write_text("a cat\na dog\n")
    made = invoke("embed", "--file", tmp_path / "texts.txt", "--pooling", "mean", "-o", tmp_path / "X.parquet")
    assert made.exit_code == 0, made.stderr
    before = (tmp_path / "X.parquet").read_bytes()
    os.symlink(tmp_path / "X.parquet", tmp_path / "link.jsonl")
    cases = [
        ("shapes", "--model", f"{tmp_path}/net.py:build", "--input-size", "4", "-o", tmp_path / "net.py"),
        ("shapes", "--model", model, "-o", model / "config.json"),
        ("embed", "hello", "--model", model, "--pooling", "mean", "-o", model / "config.json"),
        ("export", tmp_path / "X.parquet", "--layout", "jsonl", "-o", tmp_path / "link.jsonl"),
        ("export", tmp_path / "X.parquet", "--layout", "jsonl", "-o", tmp_path / "X.parquet"),
    ]
    for args in cases:
        assert "is also an input" in one_error_line(invoke(*args)), args
    assert (model / "config.json").read_text() == '{"model_type": "bert"}' and "nn.Linear" in (tmp_path / "net.py").read_text()
    (model / "table.json").write_text("an earlier run's output")  # not a file loading the model reads: may be written again
    (model / "1_Pooling").mkdir()
    (model / "1_Pooling" / "config.json").write_text("{}")
    assert sorted(model_input_files(str(model))) == [str(model / "1_Pooling" / "config.json"), str(model / "config.json")]
    refuse_overwriting_inputs(model / "table.json", model_input_files(str(model)))
    assert (tmp_path / "X.parquet").read_bytes() == before


@pytest.mark.parametrize("command", [["shapes"], ["approx", "--sawtooth", "1"], ["embed", "a"]])
def test_format_is_what_stdout_shows_in_every_command(invoke, tmp_path, command):
    assert "what stdout shows" in one_error_line(invoke(*command, "--format", "json", "-o", tmp_path / "x.json"))
    if command[0] != "embed":  # embed reads --output-format alone as the format of what it prints
        assert "--output-format is the format of -o FILE" in one_error_line(invoke(*command, "--output-format", "json"))
    assert os.listdir(tmp_path) == []
