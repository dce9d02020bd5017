"""``engine="ray"`` on the fake job, on a real local Ray: one streaming plan, actors built once, every row once through faults.

Each run is a process of its own (``python -m tests.datasets.fake_job``), as each ``vizcli`` run is: it starts
its own local Ray and stops it at the end.
"""

import json
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from tests.conftest import ROOT
from tests.datasets import fake_job
from tests.datasets.test_run import _check_every_row_once
from vizcli.datasets.run import SKIPPED_ROWS_EXIT, run_dataset

pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.process]
TIMEOUT = 600


def _run(output, count, *options):
    done = subprocess.run([sys.executable, "-m", "tests.datasets.fake_job", str(output), str(count), "--engine", "ray",
                           "--workers", "2", *map(str, options)], cwd=ROOT, capture_output=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


def _builds(log):
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_actors_are_built_once_for_a_run_of_200_units_and_write_what_the_local_engine_writes(tmp_path):
    log = tmp_path / "builds.log"
    out = tmp_path / "out.parquet"
    summary = _run(out, 2000, "--rows-per-unit", "10", "--log", log)
    assert summary["rows"] == 2000 and pq.ParquetFile(out).num_row_groups == 200
    assert _builds(log) == 2 and summary["builds"] == 2  # one per actor, for all 200 units
    _check_every_row_once(out, 2000)
    local = tmp_path / "local.parquet"
    run_dataset(fake_job.job(), fake_job.pieces(2000), fake_job.settings(str(local), 10))
    assert pq.read_table(local).equals(pq.read_table(out))  # the same rows, in the same order, as the local engine


def test_a_worker_killed_mid_run_is_restarted_and_its_unit_retried(tmp_path):
    log = tmp_path / "builds.log"
    out = tmp_path / "out.parquet"
    summary = _run(out, 300, "--rows-per-unit", "10", "--log", log, "--crash-once-marker", tmp_path / "crashed")
    assert (tmp_path / "crashed").exists()  # a worker process did die, on its first unit
    assert summary["rows"] == 300 and summary["problems"] == 0
    assert _builds(log) == 3  # two actors, and the one restarted after the crash
    _check_every_row_once(out, 300)


@pytest.mark.slow  # about 100 s here: each round waits for Ray to restart the actor it killed
def test_a_row_that_kills_its_worker_every_time_is_split_out_and_the_rest_kept(tmp_path):
    out = tmp_path / "out.parquet"
    summary = _run(out, 60, "--rows-per-unit", "4", "--crash-on", "k37")
    assert (summary["rows"], summary["skipped"], summary["problems"], summary["exit_code"]) == (59, 0, 1, SKIPPED_ROWS_EXIT)
    ids = pq.read_table(out).column("id").to_pylist()
    assert sorted(ids, key=lambda key: int(key[1:])) == [f"k{i}" for i in range(60) if i != 37] and len(set(ids)) == 59
    (problem,) = [json.loads(line) for line in (tmp_path / "out.problems.jsonl").read_text().splitlines()]
    assert problem["id"] == "k37" and "died on this row" in problem["problem"]
    assert not (tmp_path / "out.parquet.parts").exists()  # claims and orphans went with the parts


def test_a_row_that_raises_on_ray_is_found_by_halving_like_locally(tmp_path):
    out = tmp_path / "out.parquet"
    summary = _run(out, 40, "--rows-per-unit", "16", "--raise-on", "k5")
    assert (summary["rows"], summary["problems"]) == (39, 1)
    ids = pq.read_table(out).column("id").to_pylist()
    assert "k5" not in ids and len(ids) == 39
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.parquet", "out.problems.jsonl"]
