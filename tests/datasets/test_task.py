"""``UnitTask``: a unit longer than ``commit_seconds`` writes its finished rows as it goes, so a stopped run keeps
them and ``resume`` skips them; the slices a unit is computed in never depend on time."""

import json
import signal
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.conftest import ROOT
from tests.datasets import fake_job
from tests.datasets.events import count, wait_for
from vizcli.datasets.job import DatasetSettings
from vizcli.datasets.keys import Shard
from vizcli.datasets.plan import Plan, plan_units
from vizcli.datasets.run import run_dataset
from vizcli.datasets.sink import TableSink
from vizcli.datasets.task import SLICES, UnitTask


class _Clock:
    """Time that passes only when the worker computes: ``seconds`` an item."""

    def __init__(self) -> None:
        self.now = 0.0


class _Counted(fake_job.Squares):
    """Squares whose items each take ``seconds`` of the test's clock; records each call's size."""

    def __init__(self, clock: _Clock, seconds: float) -> None:
        super().__init__()
        self.clock, self.seconds, self.calls = clock, seconds, []

    def __call__(self, batch: dict) -> dict:
        self.calls.append(len(batch["id"]))
        self.clock.now += self.seconds * len(batch["id"])
        return super().__call__(batch)


def _task(tmp_path, seconds, commit_seconds):
    clock = _Clock()
    worker = _Counted(clock, seconds)
    job = fake_job.job()
    job.local_worker = worker
    sink = TableSink(str(tmp_path / "out") + "/", job.schema, job.metadata, job.key)
    task = UnitTask(job, sink.writer, build=False, commit_seconds=commit_seconds, clock=lambda: clock.now)
    unit = next(plan_units(fake_job.pieces(320), Plan(Shard(), None, 320), job.to_batch))
    return task, unit, worker


def test_a_unit_within_the_interval_is_one_part_of_the_same_slices(tmp_path):
    task, unit, worker = _task(tmp_path, seconds=0.01, commit_seconds=30.0)  # 3.2 s of work
    summaries = list(task.run(unit))
    assert worker.calls == [320 // SLICES] * SLICES
    assert len(summaries) == 1 and summaries[0]["entry"]["rows"] == 320 and summaries[0]["keys"] == unit.keys


def test_a_long_unit_writes_a_part_once_the_interval_passed_and_each_row_once(tmp_path):
    task, unit, worker = _task(tmp_path, seconds=0.25, commit_seconds=30.0)  # 80 s of work, slices of 10 s
    summaries = list(task.run(unit))
    assert worker.calls == [320 // SLICES] * SLICES  # the same slices as a short unit: time only ends parts
    assert [len(summary["keys"]) for summary in summaries] == [120, 120, 80]  # a part once 30 s passed, the rest at the end
    assert [summary["keys"][0] for summary in summaries] == [f"k{summary['position']}" for summary in summaries]
    assert [key for summary in summaries for key in summary["keys"]] == unit.keys
    assert all(summary["entry"]["rows"] == len(summary["keys"]) for summary in summaries)


@pytest.mark.process
@pytest.mark.parametrize(("kind", "stop"), [("parquet", signal.SIGINT), ("folder", signal.SIGTERM)])
def test_a_stopped_one_minute_unit_keeps_its_finished_rows_and_resume_skips_them(tmp_path, kind, stop):
    # 300 items of 0.2 s in one unit: a minute of work, written every 2 s (commit_seconds, 30 s by default)
    out = tmp_path / "out.parquet" if kind == "parquet" else tmp_path / "out"
    target = str(out) + ("/" if kind == "folder" else "")
    folder = tmp_path / "out.parquet.parts" if kind == "parquet" else out
    argv = [sys.executable, "-m", "tests.datasets.fake_job", target, "300", "--rows-per-unit", "300", "--item-delay", "0.2",
            "--commit-seconds", "2"]
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: count(folder, "part-*") >= 2, [tmp_path, folder], timeout=120, process=process)  # the event: 2 parts
        process.send_signal(stop)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + stop, stderr.decode()
    assert "finished units are kept" in stderr.decode()
    kept = count(folder, "part-*")
    assert kept >= 2 and not list(folder.glob(".*.tmp"))
    if kind == "folder":
        manifest = json.loads((out / "manifest.json").read_text())
        assert len(manifest["shards"]) == kept and manifest["complete"] is False  # recorded, not only on disk
    done = subprocess.run([*argv[:5], "--rows-per-unit", "300", "--resume"], cwd=ROOT, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    summary = json.loads(done.stdout.decode().splitlines()[-1])
    assert summary["skipped"] >= 2 * 10 and summary["skipped"] + summary["rows"] == 300  # what was kept is not redone
    if kind == "parquet":
        fake_job.check_every_row_once(out, 300)
    else:
        from vizcli.datasets.merge import read_output
        from vizcli.datasets.units import read_unit

        _, _, parts = read_output(str(out))
        ids = [key for part in parts for key in read_unit(part).column("id").to_pylist()]
        assert sorted(ids, key=lambda key: int(key[1:])) == [f"k{i}" for i in range(300)]


def test_the_local_engine_takes_the_interval_from_the_settings(tmp_path):
    settings = DatasetSettings(str(tmp_path / "out.parquet"), commit_seconds=0.5)
    job = fake_job.job(item_delay=0.01)
    summary = run_dataset(job, fake_job.pieces(300), settings)  # one unit of 3 s: several parts, one output
    assert summary.rows == 300
    assert pq.ParquetFile(tmp_path / "out.parquet").num_row_groups > 2  # each part a row group
    np.testing.assert_array_equal(pq.read_table(tmp_path / "out.parquet").column("index").to_numpy(), np.arange(300))
