"""``--engine ray`` at tight capacity on a real three-node cluster on this machine (``ray.cluster_utils.Cluster``:
a head of 0 CPUs and two nodes of 1 CPU, as Slurm or Kubernetes give N CPUs for N workers): ``--workers 2`` runs
(it used to wait for ever), more workers than the nodes can place are refused at once, a lost node leaves the
run to finish on what is left, and a run that cannot progress ends with the watchdog's line; ``--resume``
finishes it."""

import json
import subprocess
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from tests.conftest import EXAMPLES, ROOT, run_vizcli
from tests.datasets import fake_job
from tests.datasets.events import count, wait_for

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.process]
TIMEOUT = 600


@pytest.fixture
def tight(monkeypatch):
    """A head of 0 CPUs and two nodes of 1 CPU each: room for exactly two actors, nothing else."""
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the nodes' workers import tests.datasets.fake_job
    made = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    made.workers = [made.add_node(num_cpus=1) for _ in range(2)]
    made.wait_for_nodes()
    yield made
    if ray.is_initialized():
        ray.shutdown()
    made.shutdown()


def _fake(output, count_, tight, *options):
    return [sys.executable, "-m", "tests.datasets.fake_job", str(output), str(count_), "--engine", "ray", "--workers", "2",
            "--ray-address", tight.address, *map(str, options)]


def _summary(stdout):
    return json.loads(stdout.decode().strip().splitlines()[-1])


@pytest.mark.slow
def test_workers_equal_to_cpus_write_what_the_local_engine_writes_for_embed_and_roi(tight, tmp_path):
    sys.path.insert(0, str(ROOT))
    from benchmarks.corpus import sentences

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"key": f"doc-{i}", "body": text}) + "\n" for i, text in enumerate(sentences(200))))
    embed = ["embed", "--file", corpus, "--field", "body", "--id-column", "key", "-p", "mean", "--shard-size", "0.05",
             "--threads", "1", "--quiet"]  # about 34 texts a unit: both actors work
    images = tmp_path / "images"
    images.mkdir()
    for name, source, size in [("a.png", "chelsea.png", None), ("b.png", "coffee.png", None), ("c.png", "chelsea.png", (200, 150))]:
        picture = Image.open(EXAMPLES / source).convert("RGB")
        (picture.resize(size) if size else picture).save(images / name)
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("image,x1,y1,x2,y2,label\n" + "".join(f"{name},10,12,90,80,cat\n{name},40,30,140,110,ear\n"
                                                           for name in ("a.png", "b.png", "c.png")))
    roi = ["roi", images, "--annotations", boxes, "--batch-size", "1", "--shard-size", "0.05", "--threads", "1", "--quiet"]
    for command, key, vectors in [(embed, "id", ["mean"]), (roi, "image", ["features_align"])]:
        local = run_vizcli(*command, "-o", tmp_path / f"{command[0]}-local.parquet")
        assert local.returncode == 0, local.stderr.decode()
        remote = run_vizcli(*command, "-o", tmp_path / f"{command[0]}-ray.parquet", "--engine", "ray", "--workers", "2",
                            "--ray-address", tight.address, timeout=TIMEOUT)
        assert remote.returncode == 0, remote.stderr.decode()[-3000:]
        a, b = pq.read_table(tmp_path / f"{command[0]}-local.parquet"), pq.read_table(tmp_path / f"{command[0]}-ray.parquet")
        assert a.num_rows == b.num_rows > 0 and a.column(key).to_pylist() == b.column(key).to_pylist()
        for column in vectors:  # one torch thread on both sides: the same sums in the same order
            np.testing.assert_array_equal(np.array(a.column(column).to_pylist()), np.array(b.column(column).to_pylist()))


def test_more_workers_than_the_nodes_can_place_are_refused_at_once_with_one_line(tight, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a cat\na dog\n")
    out = tmp_path / "out.parquet"
    refused = run_vizcli("embed", "--file", corpus, "-o", out, "--engine", "ray", "--workers", "3", "--ray-address", tight.address,
                         "--quiet", timeout=TIMEOUT)
    lines = refused.stderr.decode().strip().splitlines()
    assert refused.returncode == 2, refused.stderr.decode()
    assert lines == ["Error: --workers 3: the Ray cluster has room for 2 actors of 1 CPU (its 3 nodes have 1 + 1 + 0 CPUs); "
                     "use --workers 2 or fewer, or add nodes"], lines
    assert sorted(path.name for path in tmp_path.iterdir()) == ["corpus.txt"]  # nothing written


@pytest.mark.slow  # about 75 s here; the refusal above keeps a multi-node cluster in make test
def test_a_node_lost_at_tight_capacity_leaves_the_run_to_finish_with_every_row_once(tight, tmp_path):
    out = tmp_path / "out.parquet"
    parts = tmp_path / "out.parquet.parts"
    process = subprocess.Popen(_fake(out, 400, tight, "--rows-per-unit", "10", "--delay", "0.3"), cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: count(parts, "part-*") >= 4, [tmp_path, parts], timeout=TIMEOUT, process=process)  # both actors at work
        tight.remove_node(tight.workers[1])  # its raylet and its actor stop: one CPU is left, and one actor fits
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr.decode()[-3000:]
    fake_job.check_every_row_once(out, 400)
    summary = _summary(stdout)
    assert summary["rows"] == 400 and summary["problems"] == 0
    assert summary["builds"] >= 3  # the two first actors, then the one the remaining node holds


@pytest.mark.slow
def test_a_stalled_run_ends_with_the_watchdogs_line_and_resume_finishes_it(tight, tmp_path):
    out = tmp_path / "out.parquet"
    parts = tmp_path / "out.parquet.parts"
    stall = 30  # above the time this machine takes to start the actors: that is no progress either
    process = subprocess.Popen(_fake(out, 400, tight, "--rows-per-unit", "10", "--delay", "0.3", "--stall-timeout", stall),
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: count(parts, "part-*") >= 4, [tmp_path, parts], timeout=TIMEOUT, process=process)
        for node in tight.workers:  # no CPU left anywhere: nothing can progress
            tight.remove_node(node)
        removed = time.monotonic()
        _, stderr = process.communicate(timeout=stall + 120)  # the watchdog's limit, with room for Ray to stop
        waited = time.monotonic() - removed
    finally:
        if process.poll() is None:
            process.kill()
    errors = [line for line in stderr.decode().splitlines() if line.startswith("Error:")]
    assert process.returncode == 1 and len(errors) == 1, stderr.decode()[-3000:]
    line = errors[0]
    assert line.startswith("Error: the Ray run made no progress for "), line
    assert "0 free" in line and "0 of workers=2 actors alive" in line and "rerun with resume=True" in line, line
    assert "2 restarting" in line and "no live node has 1 free CPU for an actor: add nodes" in line, line
    print(f"watchdog line {waited:.1f} s after the last node went (stall_timeout {stall} s): {line}")
    kept = count(parts, "part-*")
    assert kept >= 4
    tight.workers = [tight.add_node(num_cpus=1) for _ in range(2)]
    tight.wait_for_nodes()
    done = subprocess.run(_fake(out, 400, tight, "--rows-per-unit", "10", "--resume"), cwd=ROOT, capture_output=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    summary = _summary(done.stdout)
    assert summary["skipped"] >= 40 and summary["skipped"] + summary["rows"] == 400
    fake_job.check_every_row_once(out, 400)
