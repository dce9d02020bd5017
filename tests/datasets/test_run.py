"""``run_dataset`` with the local engine, on the numpy-only fake job: units, resume, shards, ids, bad rows."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.conftest import ROOT
from tests.datasets import fake_job
from vizcli.common.errors import BadInput, RunFailure
from vizcli.datasets.keys import Shard
from vizcli.datasets.merge import merge_outputs
from vizcli.datasets.run import run_dataset
from vizcli.datasets.units import read_unit


def test_every_row_once_in_units_of_the_asked_size(tmp_path):
    out = tmp_path / "out.parquet"
    summary = run_dataset(fake_job.job(), fake_job.pieces(1000, per_piece=300), fake_job.settings(str(out), 64))
    assert (summary.items, summary.rows, summary.skipped, summary.problems) == (1000, 1000, 0, 0)
    fake_job.check_every_row_once(out, 1000)
    assert pq.ParquetFile(out).num_row_groups == math.ceil(1000 / 64)  # one row group per unit
    assert not (tmp_path / "out.parquet.parts").exists() and not (tmp_path / "out.problems.jsonl").exists()


def test_shard_folders_hold_units_of_the_asked_size_with_a_manifest(tmp_path):
    folder = tmp_path / "shards"
    run_dataset(fake_job.job(), fake_job.pieces(250), fake_job.settings(f"{folder}/", 64))
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["complete"] and manifest["rows"] == 250
    assert [shard["rows"] for shard in manifest["shards"]] == [64, 64, 64, 58]
    assert [shard["first"] for shard in manifest["shards"]] == ["k0", "k64", "k128", "k192"]
    assert sum(read_unit(folder / shard["file"]).num_rows for shard in manifest["shards"]) == 250


def test_shards_split_the_rows_and_merge_back_to_the_whole(tmp_path):
    parts = []
    for index in range(3):
        out = tmp_path / f"part{index}.parquet"
        run_dataset(fake_job.job(), fake_job.pieces(300), fake_job.settings(str(out), 50, shard=Shard(index, 3)))
        parts.append(str(out))
    ids = [set(pq.read_table(part).column("id").to_pylist()) for part in parts]
    assert sum(len(part) for part in ids) == 300 and len(set.union(*ids)) == 300
    merged = tmp_path / "merged.parquet"
    path, rows = merge_outputs(parts, str(merged), ("id",))
    assert rows == 300
    table = pq.read_table(merged)
    order = np.argsort(table.column("index").to_pylist())
    assert [table.column("id").to_pylist()[i] for i in order] == [f"k{i}" for i in range(300)]
    with pytest.raises(BadInput, match="more than one input"):
        merge_outputs([parts[0], parts[0]], str(tmp_path / "twice.parquet"), ("id",))
    assert not (tmp_path / "twice.parquet").exists() and not (tmp_path / "twice.parquet.parts").exists()


def test_a_repeated_id_far_apart_is_refused_and_leaves_nothing_behind(tmp_path):
    keys = [f"k{i}" for i in range(500)]
    keys[400] = "k3"
    out = tmp_path / "out.parquet"
    with pytest.raises(BadInput, match="'k3' appears twice"):
        run_dataset(fake_job.job(), fake_job.pieces(500, keys=keys), fake_job.settings(str(out), 20))
    assert sorted(os.listdir(tmp_path)) == []


def test_a_row_that_raises_is_found_by_halving_and_the_rest_are_kept(tmp_path):
    out = tmp_path / "out.parquet"
    summary = run_dataset(fake_job.job(raise_on="k77"), fake_job.pieces(200), fake_job.settings(str(out), 64))
    assert (summary.rows, summary.problems) == (199, 1)
    ids = pq.read_table(out).column("id").to_pylist()
    assert "k77" not in ids and len(ids) == len(set(ids)) == 199
    (problem,) = [json.loads(line) for line in (tmp_path / "out.problems.jsonl").read_text().splitlines()]
    assert problem["id"] == "k77" and "cannot compute k77" in problem["problem"]
    with pytest.raises(RunFailure, match="k77.*on_error=stop"):
        run_dataset(fake_job.job(raise_on="k77"), fake_job.pieces(200), fake_job.settings(str(tmp_path / "stop.parquet"), 64,
                                                                                           on_error="stop"))


def test_resume_refuses_other_settings_and_skips_what_is_done(tmp_path):
    out = tmp_path / "out.parquet"
    run_dataset(fake_job.job(), fake_job.pieces(100), fake_job.settings(str(out), 30))
    with pytest.raises(BadInput, match="other settings.*scale"):
        run_dataset(fake_job.job(scale=2.0), fake_job.pieces(150), fake_job.settings(str(out), 30, resume=True))
    assert not (tmp_path / "out.parquet.parts").exists()  # the refused resume copied nothing
    summary = run_dataset(fake_job.job(), fake_job.pieces(150), fake_job.settings(str(out), 30, resume=True))
    assert (summary.skipped, summary.rows) == (100, 50)
    fake_job.check_every_row_once(out, 150)


def _wait_for_units(folder, count, process, timeout=120):
    """Until ``count`` units were renamed into ``folder`` (an event on disk, not a sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if folder.is_dir() and len(list(folder.glob("part-*"))) >= count:
            return
        assert process.poll() is None, process.stderr.read().decode()
        time.sleep(0.02)
    raise AssertionError(f"no {count} units in {folder} after {timeout} s")


@pytest.mark.process
def test_a_sigkilled_run_resumes_to_every_row_exactly_once(tmp_path):
    out = tmp_path / "out.parquet"
    process = subprocess.Popen([sys.executable, "-m", "tests.datasets.fake_job", str(out), "400", "--rows-per-unit", "10",
                                "--delay", "0.05"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for_units(tmp_path / "out.parquet.parts", 3, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not out.exists()
    finished = len(list((tmp_path / "out.parquet.parts").glob("part-*")))
    assert 3 <= finished < 40
    summary = run_dataset(fake_job.job(), fake_job.pieces(400), fake_job.settings(str(out), 10, resume=True))
    assert summary.skipped == 10 * finished and summary.rows == 400 - 10 * finished
    fake_job.check_every_row_once(out, 400)


def test_a_resumed_run_logs_each_problem_once(tmp_path):
    """The row that raised is not on disk, so the resumed run meets it again: its problem is not logged twice."""
    import signal as signals

    from vizcli.common.errors import Interrupted

    class StopsAt:
        def __init__(self, items, stop):
            self.values, self.stop = items, stop

        def items(self):
            for item in self.values:
                if item.position == self.stop:
                    raise Interrupted(signals.SIGTERM)
                yield item

    out = tmp_path / "out.parquet"
    everything = [item for piece in fake_job.pieces(200) for item in piece.items()]
    with pytest.raises(Interrupted):
        run_dataset(fake_job.job(raise_on="k7"), [StopsAt(everything, 150)], fake_job.settings(str(out), 16))
    problems = tmp_path / "out.problems.jsonl"
    assert [json.loads(line)["id"] for line in problems.read_text().splitlines()] == ["k7"]
    summary = run_dataset(fake_job.job(raise_on="k7"), fake_job.pieces(200), fake_job.settings(str(out), 16, resume=True))
    assert summary.problems == 1
    assert [json.loads(line)["id"] for line in problems.read_text().splitlines()] == ["k7"]
    ids = pq.read_table(out).column("id").to_pylist()
    assert len(ids) == 199 and "k7" not in ids and len(set(ids)) == 199


class _Tampering(fake_job.Squares):
    """Squares that does ``tamper()`` to the output just before its third unit: the output changes mid-run."""

    def __init__(self, tamper) -> None:
        super().__init__()
        self.tamper, self.calls = tamper, 0

    def __call__(self, batch: dict) -> dict:
        self.calls += 1
        if self.calls == 3:
            self.tamper()
        return super().__call__(batch)


def _replace_with_file(folder):
    import shutil

    shutil.rmtree(folder)
    folder.write_text("not a folder")


@pytest.mark.parametrize("change", ["deleted", "a file", "read-only"])
@pytest.mark.parametrize("kind", ["parquet", "folder"])
def test_an_output_folder_changed_mid_run_is_one_run_failure_naming_it(tmp_path, change, kind):
    import shutil
    from dataclasses import replace

    if change == "read-only" and os.geteuid() == 0:
        pytest.skip("root writes into a read-only folder: the read-only case runs as an ordinary user")
    out = tmp_path / ("out.parquet" if kind == "parquet" else "out")
    folder = tmp_path / "out.parquet.parts" if kind == "parquet" else out
    tamper = {"deleted": lambda: shutil.rmtree(folder), "a file": lambda: _replace_with_file(folder),
              "read-only": lambda: os.chmod(folder, 0o500)}[change]
    job = replace(fake_job.job(), local_worker=_Tampering(tamper))
    try:
        with pytest.raises(RunFailure) as failed:
            run_dataset(job, fake_job.pieces(100), fake_job.settings(str(out) + ("/" if kind == "folder" else ""), 10))
    finally:
        if folder.is_dir():
            os.chmod(folder, 0o700)
    text = str(failed.value)
    assert "could not write" in text and "resume" in text and "\n" not in text, text
    assert not (tmp_path / "out.parquet").is_file()  # no joined file from part of the rows
    assert not [path for path in tmp_path.rglob("*") if path.name.endswith(".tmp")]  # nothing half-written


def test_a_repeated_key_names_the_fix_of_the_command_that_has_it(tmp_path, invoke):
    from tests.checks import random_image

    keys = [f"k{i}" for i in range(30)]
    keys[20] = "k3"
    with pytest.raises(BadInput) as caught:  # embed's key is an id: --id-column chooses it
        run_dataset(fake_job.job(), fake_job.pieces(30, keys=keys), fake_job.settings(str(tmp_path / "a.parquet"), 8))
    assert "check id_column=COLUMN" in str(caught.value)
    random_image(tmp_path / "a.png", (40, 30), 1)
    result = invoke("detect", tmp_path / "a.png", tmp_path / "a.png", "--detector", "fasterrcnn_mobilenet_v3_large_320_fpn",
                    "-o", tmp_path / "d.parquet")
    message = result.stderr.splitlines()[-1]  # after the random-weights warning
    assert result.exit_code == 2 and message.startswith("Error: ") and "appears twice" in message and "give each image once" in message and "id-column" not in message


def test_the_dataset_modules_import_one_way_lazy_imports_included():
    """No circle among vizcli.datasets' modules (run picks the Ray engine; the engine never imports run), counting
    the imports inside functions too."""
    import ast
    from pathlib import Path

    import vizcli.datasets.run

    folder = Path(vizcli.datasets.run.__file__).parent
    graph = {}
    for path in folder.glob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vizcli.datasets."):
                names.add(node.module.split(".")[2])
            elif isinstance(node, ast.Import):
                names.update(alias.name.split(".")[2] for alias in node.names if alias.name.startswith("vizcli.datasets."))
        graph[path.stem] = names
    assert "run" not in graph["ray_engine"] and "ray_engine" in graph["run"]

    def reaches(start, target, seen=()):
        return any(name == target or (name not in seen and reaches(name, target, (*seen, name))) for name in graph.get(start, ()))

    circles = sorted(name for name in graph if reaches(name, name))
    assert circles == [], circles
