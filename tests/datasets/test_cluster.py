"""A two-node Ray cluster on this one machine (``ray.cluster_utils.Cluster``: a head and a second node,
each its own raylet): ``vizcli`` joins it with ``--ray-address``, writes what the local engine writes,
and keeps every row exactly once when the second node is stopped mid-run."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.conftest import ROOT, run_vizcli
from tests.datasets import fake_job

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.process]
TIMEOUT = 600


@pytest.fixture
def cluster(monkeypatch):
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the nodes' workers import tests.datasets.fake_job
    made = Cluster(initialize_head=True, head_node_args={"num_cpus": 3, "include_dashboard": False})
    second = made.add_node(num_cpus=2)
    made.wait_for_nodes()
    made.second = second
    yield made
    if ray.is_initialized():  # a test that connected and failed before it let go
        ray.shutdown()
    made.shutdown()


def _units(folder):
    return len(list(folder.glob("part-*"))) if folder.is_dir() else 0


@pytest.mark.slow  # about 50 s here
def test_vizcli_joins_a_two_node_cluster_and_writes_what_the_local_engine_writes(cluster, tmp_path):
    sys.path.insert(0, str(ROOT))
    from benchmarks.corpus import sentences

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"key": f"doc-{i}", "body": text}) + "\n" for i, text in enumerate(sentences(300))))
    common = ["embed", "--file", corpus, "--field", "body", "--id-column", "key", "-p", "mean", "--shard-size", "0.2", "--quiet"]
    local = run_vizcli(*common, "-o", tmp_path / "local.parquet")
    assert local.returncode == 0, local.stderr.decode()
    joined = run_vizcli(*common, "-o", tmp_path / "cluster.parquet", "--engine", "ray", "--workers", "3",
                        "--ray-address", cluster.address, timeout=TIMEOUT)
    assert joined.returncode == 0, joined.stderr.decode()[-3000:]
    a, b = pq.read_table(tmp_path / "local.parquet"), pq.read_table(tmp_path / "cluster.parquet")
    assert a.column("id").to_pylist() == b.column("id").to_pylist() == [f"doc-{i}" for i in range(300)]
    assert a.schema.equals(b.schema)
    np.testing.assert_array_equal(np.array(a.column("mean").to_pylist()), np.array(b.column("mean").to_pylist()))


@pytest.mark.slow  # about 50 s here
def test_a_node_stopped_mid_run_loses_no_row_and_writes_none_twice(cluster, tmp_path):
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    # the head keeps one CPU free, so at least one of the 2 actors is placed on the second node: its stop hits the run
    class Holder:  # an actor that only holds CPUs on its node (defined here: Ray's workers receive it by value)
        def ready(self) -> bool:
            return True

    ray.init(address=cluster.address)
    holder = ray.remote(num_cpus=2)(Holder).options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(cluster.head_node.node_id, soft=False)).remote()
    ray.get(holder.ready.remote())
    out = tmp_path / "out.parquet"
    process = subprocess.Popen([sys.executable, "-m", "tests.datasets.fake_job", str(out), "600", "--rows-per-unit", "10",
                                "--engine", "ray", "--workers", "2", "--ray-address", cluster.address, "--delay", "0.2"],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    parts = tmp_path / "out.parquet.parts"
    deadline = time.monotonic() + TIMEOUT
    while _units(parts) < 6 and time.monotonic() < deadline:  # the event: units are being written on both nodes
        assert process.poll() is None, process.stderr.read().decode()[-3000:]
        time.sleep(0.05)
    cluster.remove_node(cluster.second)  # its raylet and every worker on it stop
    ray.kill(holder)  # the head's CPUs free again: the lost actor is restarted there
    ray.shutdown()
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
    assert process.returncode == 0, stderr.decode()[-3000:]
    assert _units(parts) == 0 and out.exists()
    fake_job.check_every_row_once(out, 600)
    summary = json.loads(stdout.decode().strip().splitlines()[-1])  # Ray's log lines may come before it
    assert summary["rows"] == 600 and summary["problems"] == 0
    assert summary["builds"] >= 2  # both actors ran; the stopped node's actor is replaced, or the run goes on with fewer (issue 36)
