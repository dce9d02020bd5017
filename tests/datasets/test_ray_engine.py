"""``engine="ray"`` on the fake job, on a real local Ray: one streaming plan, actors built once, every row once through faults.

Each run is a process of its own (``python -m tests.datasets.fake_job``), as each ``vizcli`` run is: it starts
its own local Ray and stops it at the end."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from tests.conftest import EXAMPLES, ROOT, run_vizcli
from tests.datasets import fake_job
from tests.datasets.events import count, wait_for, wait_for_exit
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
    fake_job.check_every_row_once(out, 2000)
    local = tmp_path / "local.parquet"
    run_dataset(fake_job.job(), fake_job.pieces(2000), fake_job.settings(str(local), 10))
    assert pq.read_table(local).equals(pq.read_table(out))  # the same rows, in the same order, as the local engine


def test_the_jobs_actor_environment_reaches_every_worker_of_a_local_ray_and_of_a_callers_session(tmp_path):
    env_log = tmp_path / "env.log"
    summary = _run(tmp_path / "out.parquet", 40, "--rows-per-unit", "10", "--env-log", env_log, "--actor-env", "started-here")
    assert env_log.read_text().splitlines() == ["started-here", "started-here"]  # inherited from the local Ray vizcli started
    assert summary["driver_env"] is None  # and this process's environment is put back
    import ray

    ray.init(address="local", num_cpus=3, include_dashboard=False, logging_level="ERROR")  # the Python API in a caller's own session
    try:
        caller_log = tmp_path / "caller.log"
        made = fake_job.job(actor_env={fake_job.ENV_NAME: "runtime-env"}, env_log=str(caller_log))
        run_dataset(made, fake_job.pieces(40), fake_job.settings(str(tmp_path / "caller.parquet"), 10, engine="ray", workers=2,
                                                                 quiet=True))
        assert caller_log.read_text().splitlines() == ["runtime-env", "runtime-env"]  # sent as the actors' runtime_env
        from vizcli.common.errors import BadInput
        from vizcli.datasets.ray_cluster import check_placeable

        check_placeable(ray, 3, 1)  # 3 actors fit 3 CPUs: the read tasks ask for none
        with pytest.raises(BadInput, match=r"room for 3 actors of 1 CPU \(its 1 node has 3 CPUs\); use workers=3 or fewer"):
            check_placeable(ray, 4, 1)
        with pytest.raises(BadInput, match=r"room for 1 actors of 2 CPUs .*; use workers=1 or fewer"):
            check_placeable(ray, 2, 2)
    finally:
        ray.shutdown()
    assert fake_job.ENV_NAME not in os.environ


def test_a_worker_killed_mid_run_is_restarted_and_its_unit_retried(tmp_path):
    log = tmp_path / "builds.log"
    out = tmp_path / "out.parquet"
    summary = _run(out, 300, "--rows-per-unit", "10", "--log", log, "--crash-once-marker", tmp_path / "crashed")
    assert (tmp_path / "crashed").exists()  # a worker process did die, on its first unit
    assert summary["rows"] == 300 and summary["problems"] == 0
    assert _builds(log) == 3  # two actors, and the one restarted after the crash
    fake_job.check_every_row_once(out, 300)


@pytest.mark.slow  # about 100 s here: each round waits for Ray to restart the actor it killed
def test_a_row_that_kills_its_worker_every_time_is_split_out_and_the_rest_kept(tmp_path):
    out = tmp_path / "out.parquet"
    summary = _run(out, 60, "--rows-per-unit", "4", "--crash-on", "k37")
    assert (summary["rows"], summary["skipped"], summary["problems"]) == (59, 0, 1)
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


RAY_TIMEOUT = 600


def _vectors(table, column):
    return np.stack(table[column].to_numpy(zero_copy_only=False)).astype(np.float64)


def _same_rows(local, remote, keys, vector_columns, tolerance=1e-5):
    # local runs 2 torch threads, each actor 1: sums reduce in another order (float32 noise, about 1e-6)
    assert local.schema.equals(remote.schema)
    assert local.num_rows == remote.num_rows
    for key in keys:
        assert local[key].to_pylist() == remote[key].to_pylist()
    for column in vector_columns:
        assert np.abs(_vectors(local, column) - _vectors(remote, column)).max() <= tolerance


def _metadata(path):
    return json.loads(pq.read_schema(path).metadata[b"vizcli"])


def _texts(count):
    sys.path.insert(0, str(ROOT))
    from benchmarks.corpus import sentences

    return sentences(count)


def test_embed_on_ray_writes_what_the_local_engine_writes(tmp_path):
    texts = _texts(400)
    texts[7] = ""  # an empty text is a row like any other (--skip-empty drops it on both engines)
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"key": f"doc-{i}", "body": text}) + "\n" for i, text in enumerate(texts)))
    common = ["embed", "--file", corpus, "--field", "body", "--id-column", "key", "-p", "mean,pooler", "--keep-text",
              "--batch-size", "8"]
    local = run_vizcli(*common, "-o", tmp_path / "local.parquet", "--quiet")
    assert local.returncode == 0, local.stderr.decode()
    remote = run_vizcli(*common, "-o", tmp_path / "ray.parquet", "--engine", "ray", "--workers", "2", timeout=RAY_TIMEOUT)
    stderr = remote.stderr.decode()
    assert remote.returncode == 0, stderr
    assert "MapBatches(_UnitActor)" in stderr  # Ray's progress, on stderr
    assert remote.stdout == b""
    a, b = pq.read_table(tmp_path / "local.parquet"), pq.read_table(tmp_path / "ray.parquet")
    _same_rows(a, b, ["id", "index", "tokens", "truncated", "text"], ["mean", "pooler"])
    assert b["id"].to_pylist() == [f"doc-{i}" for i in range(400)]
    assert _metadata(tmp_path / "local.parquet") == _metadata(tmp_path / "ray.parquet")
    # one merge for both engines' files: the same id twice is refused, so they are the same rows
    merged = run_vizcli("merge", tmp_path / "local.parquet", tmp_path / "ray.parquet", "-o", tmp_path / "m.parquet")
    assert merged.returncode == 2 and b"doc-0" in merged.stderr


def _dataset(tmp_path):
    """Five images of three sizes, boxes in a CSV, and one file that is not an image."""
    images = tmp_path / "images"
    images.mkdir()
    chelsea = Image.open(EXAMPLES / "chelsea.png").convert("RGB")
    coffee = Image.open(EXAMPLES / "coffee.png").convert("RGB")
    pictures = {"a.png": chelsea, "b.png": coffee, "c.png": chelsea.resize((200, 150)), "d.png": coffee.resize((160, 120)),
                "e.png": chelsea.transpose(Image.Transpose.FLIP_LEFT_RIGHT)}
    for name, picture in pictures.items():
        picture.save(images / name)
    (images / "broken.png").write_bytes(b"this is not a PNG file")
    rows = ["image,x1,y1,x2,y2,label"]
    for name in [*pictures, "broken.png"]:
        rows += [f"{name},10,12,90,80,cat", f"{name},40,30,140,110,ear", f"{name},0,0,30,25,corner"]
    annotations = tmp_path / "boxes.csv"
    annotations.write_text("\n".join(rows) + "\n")
    return images, annotations


def test_roi_on_ray_writes_what_the_local_engine_writes_and_records_bad_images(tmp_path):
    images, annotations = _dataset(tmp_path)
    common = ["roi", images, "--annotations", annotations, "--op", "both", "--batch-size", "2"]
    local = run_vizcli(*common, "-o", tmp_path / "local.parquet", "--quiet")
    assert local.returncode == SKIPPED_ROWS_EXIT, local.stderr.decode()
    remote = run_vizcli(*common, "-o", tmp_path / "ray.parquet", "--engine", "ray", "--workers", "2", timeout=RAY_TIMEOUT)
    assert remote.returncode == SKIPPED_ROWS_EXIT, remote.stderr.decode()
    assert b"MapBatches(_UnitActor)" in remote.stderr
    a, b = pq.read_table(tmp_path / "local.parquet"), pq.read_table(tmp_path / "ray.parquet")
    _same_rows(a, b, ["image", "annotation_id", "label", "width", "height", "level"], ["box", "feature_box", "features_align", "features_pool"])
    assert a.num_rows == 15  # five images × three boxes; broken.png is a problem, not a crash
    assert _metadata(tmp_path / "local.parquet") == _metadata(tmp_path / "ray.parquet")
    problems = [json.loads(line) for line in (tmp_path / "ray.problems.jsonl").read_text().splitlines()]
    assert [problem["image"] for problem in problems] == ["broken.png"]
    assert problems == [json.loads(line) for line in (tmp_path / "local.problems.jsonl").read_text().splitlines()]

    stop = run_vizcli(*common, "-o", tmp_path / "stop.parquet", "--engine", "ray", "--workers", "1", "--on-error", "stop",
                      "--quiet", timeout=RAY_TIMEOUT)
    lines = stop.stderr.decode().strip().splitlines()
    assert stop.returncode == 1
    assert len(lines) == 1, lines  # --quiet: the one Error: line, none of Ray's (its C++ core's included)
    assert lines[0].startswith("Error: broken.png:") and "--on-error stop" in lines[0], lines
    assert "Traceback" not in stop.stderr.decode()
    assert not (tmp_path / "stop.parquet").exists()


def _map_workers(name):
    """PIDs of Ray actor processes whose title names ``name`` (Ray sets ``ray::MapWorker(MapBatches(X))``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if f"MapWorker(MapBatches({name}))" in command:
            found.append(int(entry.name))
    return found


@pytest.mark.slow  # about 75 s here; test_a_worker_killed_mid_run_is_restarted_and_its_unit_retried checks the same in make test
def test_a_killed_worker_is_retried_and_every_id_is_written_once(tmp_path):
    texts = _texts(1200)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(texts) + "\n")
    output = tmp_path / "ray.parquet"
    argv = [sys.executable, "-m", "vizcli", "embed", "--file", str(corpus), "-p", "mean", "--batch-size", "16",
            "-o", str(output), "--engine", "ray", "--workers", "1", "--shard-size", "0.2"]  # 136 rows a unit
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))
    parts = tmp_path / "ray.parquet.parts"
    try:
        # the event: the actor has written its first unit, so it is mid-run with a model loaded
        wait_for(lambda: count(parts, "part-*.parquet") > 0 and bool(_map_workers("_UnitActor")), [tmp_path, parts],
                 timeout=RAY_TIMEOUT, process=process)
        os.kill(_map_workers("_UnitActor")[0], signal.SIGKILL)
        stdout, stderr = process.communicate(timeout=RAY_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr.decode()[-3000:]
    table = pq.read_table(output)
    ids = table["id"].to_pylist()
    assert sorted(ids, key=int) == [str(i) for i in range(1200)] and len(set(ids)) == 1200
    local = run_vizcli("embed", "--file", corpus, "-p", "mean", "--batch-size", "16", "-o", tmp_path / "local.parquet", "--quiet",
                       "--shard-size", "0.2", timeout=RAY_TIMEOUT)  # a loaded machine takes minutes
    assert local.returncode == 0
    _same_rows(pq.read_table(tmp_path / "local.parquet"), table, ["id", "tokens"], ["mean"])


def _committed_shards(folder):
    """Shards the driver has committed: those its manifest lists (workers write units before that)."""
    try:
        return len(json.loads((folder / "manifest.json").read_text())["shards"])
    except (OSError, ValueError, KeyError):  # not written yet, or replaced while being read
        return 0


@pytest.mark.slow  # about 55 s here; tests/datasets/test_task.py checks SIGTERM and --resume locally in the fast tiers
def test_sigterm_stops_a_ray_run_cleanly_and_resume_finishes_it(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(_texts(1200)) + "\n")
    output = tmp_path / "shards"
    argv = [sys.executable, "-m", "vizcli", "embed", "--file", str(corpus), "-p", "mean", "--batch-size", "16",
            "-o", f"{output}/", "--shard-format", "npz",
            "--engine", "ray", "--workers", "1", "--shard-size", "0.05"]  # a unit every 34 rows
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))
    # the event: the manifest lists two committed shards (it is renamed into place at each commit)
    wait_for(lambda: _committed_shards(output) >= 2, [tmp_path, output], timeout=RAY_TIMEOUT, process=process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr.decode()[-2000:]
    # Ray's own log lines may still arrive after ours while it shuts down: find ours among them
    errors = [line for line in stderr.decode().splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, stderr.decode()[-2000:]
    assert errors[0].startswith("Error: interrupted by SIGTERM;") and "rerun with --resume" in errors[0], errors
    assert json.loads((output / "manifest.json").read_text())["complete"] is False
    assert wait_for_exit(_map_workers("_UnitActor"), timeout=30) == []  # Ray's shutdown ends its actors
    resumed = run_vizcli(*argv[3:], "--resume", "--quiet", timeout=RAY_TIMEOUT)
    assert resumed.returncode == 0, resumed.stderr.decode()
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["complete"] is True
    ids = [str(value) for shard in manifest["shards"] for value in np.load(output / shard["file"])["id"]]
    assert sorted(ids, key=int) == [str(i) for i in range(1200)]


@pytest.mark.slow  # about 50 s here: a Ray Data pipeline of each callable class
def test_the_python_api_under_ray_data_map_batches_equals_direct_calls(tmp_path):
    import ray

    from vizcli.embed import Embedder
    from vizcli.roi import RoIExtractor

    texts = _texts(40)
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        embedded = ray.data.from_items([{"id": str(i), "text": text} for i, text in enumerate(texts)]).map_batches(
            Embedder, fn_constructor_kwargs={"pooling": "mean", "normalize": True}, batch_size=16,
            compute=ray.data.ActorPoolStrategy(size=1), num_cpus=1,
        ).take_all()
        embedded_int8 = ray.data.from_items([{"id": str(i), "text": text} for i, text in enumerate(texts)]).map_batches(
            Embedder, fn_constructor_kwargs={"pooling": "mean", "dtype": "int8", "device": "cpu"}, batch_size=16,
            compute=ray.data.ActorPoolStrategy(size=1), num_cpus=1,
        ).take_all()
        boxes = [[[10.0, 12.0, 90.0, 80.0], [40.0, 30.0, 140.0, 110.0]], [[0.0, 0.0, 50.0, 40.0]]]
        paths = [str(EXAMPLES / "chelsea.png"), str(EXAMPLES / "coffee.png")]
        pooled = ray.data.from_items([{"image": path, "boxes": box} for path, box in zip(paths, boxes)]).map_batches(
            RoIExtractor, fn_constructor_kwargs={"layer": "layer3"}, batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=1), num_cpus=1,
        ).take_all()
    finally:
        ray.shutdown()
    direct = Embedder(pooling="mean", normalize=True)({"id": [str(i) for i in range(40)], "text": texts})
    by_id = {row["id"]: row["mean"] for row in embedded}
    assert sorted(by_id, key=int) == direct["id"].tolist()
    assert max(np.abs(by_id[key] - vector).max() for key, vector in zip(direct["id"], direct["mean"])) <= 1e-6
    direct_int8 = Embedder(pooling="mean", dtype="int8", device="cpu")({"id": [str(i) for i in range(40)], "text": texts})
    by_id = {row["id"]: row["mean"] for row in embedded_int8}
    assert max(np.abs(by_id[key] - vector).max() for key, vector in zip(direct_int8["id"], direct_int8["mean"])) <= 1e-3
    extractor = RoIExtractor(layer="layer3")
    for row in pooled:
        expected = extractor({"image": [row["image"]], "boxes": [row["boxes"].tolist()]})["features"][0]
        assert row["features"].shape == expected.shape == (len(row["boxes"]), 256, 7, 7)
        assert np.abs(row["features"] - expected).max() <= 1e-6


def test_engine_ray_without_ray_names_the_install_command(tmp_path):
    fake = tmp_path / "site" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    result = run_vizcli("embed", "a cat", "-o", tmp_path / "out.parquet", "--engine", "ray",
                        env={"PYTHONPATH": f"{tmp_path / 'site'}{os.pathsep}{ROOT}"})
    assert result.returncode == 2
    assert result.stderr.decode().strip() == ("Error: --engine ray needs Ray Data, which is not installed here; "
                                              "install it with: pip install 'vizcli[ray]'")
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.parametrize("args, fragment", [
    (["embed", "a cat", "--ray-address", "auto", "-o", "OUT"], "--ray-address auto: only for --engine ray"),
    (["embed", "a cat", "--engine", "ray"], "--engine applies to dataset outputs only"),
    (["roi", str(EXAMPLES / "chelsea.png"), "--boxes", "1,1,20,20", "--engine", "ray"], "--engine runs datasets"),
    (["embed", "a cat", "--engine", "ray", "--workers", "0", "-o", "OUT"], "--workers 0: use 1..4096"),
    (["embed", "a cat", "--engine", "ray", "--stall-timeout", "0", "-o", "OUT"], "--stall-timeout 0.0: use 1..604800 seconds"),
])
def test_engine_options_are_checked_before_anything_starts(tmp_path, args, fragment):
    args = [str(tmp_path / "out.parquet") if arg == "OUT" else arg for arg in args]
    result = run_vizcli(*args)
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], lines


@pytest.mark.parametrize("case", ["overflow", "duplicate"])
def test_bad_input_found_by_a_ray_worker_is_exit_2_naming_it_as_locally(tmp_path, case):
    """The worker's error comes back as data (Ray's wrappers drop an exception's cause): one Error line, exit 2."""
    if case == "overflow":
        corpus = tmp_path / "c.txt"
        corpus.write_text("a cat\n" + "word " * 80 + "\na dog\n")
        args = ["--file", corpus, "--max-length", "8", "--on-overflow", "error"]
        fragment = "row 2: 82 tokens, more than --max-length 8"
    else:
        corpus = tmp_path / "c.jsonl"
        corpus.write_text("".join(json.dumps({"t": f"text {i}", "i": str(i % 50)}) + "\n" for i in range(60)))
        args = ["--file", corpus, "--field", "t", "--id-column", "i", "--shard-size", "0.01"]
        fragment = "id '0' appears twice"
    result = run_vizcli("embed", *args, "-p", "mean", "-o", tmp_path / "o.parquet", "--engine", "ray", "--workers", "1",
                        "--quiet", timeout=RAY_TIMEOUT)
    stderr = result.stderr.decode()
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert result.returncode == 2 and len(errors) == 1 and fragment in errors[0], stderr[-2000:]
    assert "Traceback" not in stderr and "retry" not in stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == [corpus.name]


@pytest.mark.slow  # about 80 s here; tests/datasets/test_task.py checks the same locally in the fast tiers
def test_a_ray_actor_writes_a_long_units_rows_as_it_goes_and_sigterm_keeps_them(tmp_path):
    # one unit of 300 items × 0.2 s on one actor, its rows written every 2 s (commit_seconds): a SIGTERM to the driver
    # before the unit ends keeps what the actor wrote (no summary reported it yet), and resume skips it
    out = tmp_path / "out.parquet"
    parts = tmp_path / "out.parquet.parts"
    argv = [sys.executable, "-m", "tests.datasets.fake_job", str(out), "300", "--rows-per-unit", "300", "--engine", "ray",
            "--workers", "1"]
    process = subprocess.Popen([*argv, "--item-delay", "0.2", "--commit-seconds", "2"], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    try:
        wait_for(lambda: count(parts, "part-*") >= 2, [tmp_path, parts], timeout=RAY_TIMEOUT, process=process)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 143, stderr.decode()[-2000:]
    errors = [line for line in stderr.decode().splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "finished units are kept" in errors[0], errors
    kept = count(parts, "part-*")
    assert kept >= 2
    done = subprocess.run([*argv, "--resume"], cwd=ROOT, capture_output=True, timeout=RAY_TIMEOUT)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    summary = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert summary["skipped"] >= 20 and summary["skipped"] + summary["rows"] == 300
    fake_job.check_every_row_once(out, 300)
