"""Row keys: the shard split, UniqueKeys (the compact repeated-id check) and KeyIndex, against plain sets."""

import math
import random
import subprocess
import sys

import numpy as np
import pytest

from vizcli.datasets import keys as keys_module
from vizcli.datasets.keys import KeyIndex, Shard, UniqueKeys, key_hashes, shard_of


@pytest.fixture
def colliding(monkeypatch):
    """Every id hashes to 42: only the ids themselves can tell them apart."""
    monkeypatch.setattr(keys_module, "key_hashes", lambda keys: np.full(len(keys), 42, dtype=np.int64))


@pytest.mark.process
def test_hashes_are_the_same_in_every_process():
    # the driver builds KeyIndex; Ray's read tasks, in other processes, look ids up in it
    here = key_hashes(["doc-1", "ünïcode", ""]).tolist()
    code = "from vizcli.datasets.keys import key_hashes; print(key_hashes(['doc-1', 'ünïcode', '']).tolist())"
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": "7"})
    assert there.stdout.strip() == str(here)


def test_shards_split_every_key_into_exactly_one_and_parse_k_of_n():
    keys = [f"k{i}" for i in range(1000)]
    shards = [Shard(index, 4) for index in range(4)]
    assert all(sum(shard.holds(key) for shard in shards) == 1 for key in keys)
    assert all(shard_of(key, 4) == next(s.index for s in shards if s.holds(key)) for key in keys[:50])
    assert 150 < sum(shards[0].holds(key) for key in keys) < 350
    assert Shard.parse("2/4") == Shard(2, 4) and str(Shard.parse(None)) == "0/1"
    for bad in ("4/4", "x", "1/0", "-1/3"):
        with pytest.raises(Exception, match="K/N"):
            Shard.parse(bad)


def test_no_repeat_in_many_batches_is_none_and_costs_8_bytes_an_id():
    keys = UniqueKeys()
    ids = [f"doc-{number}" for number in range(100_000)]
    random.Random(0).shuffle(ids)
    calls = []
    for start in range(0, len(ids), 1000):
        assert keys.add(ids[start:start + 1000], lambda: calls.append(1) or []) is None
    assert keys.count == 100_000 and keys.nbytes <= 8 * 100_000
    assert not calls  # no hash seen twice, so nothing was read back


def test_a_repeat_is_found_within_a_batch_and_across_batches():
    added = []

    def earlier():
        return iter(added)

    keys = UniqueKeys()
    assert keys.add(["a", "b", "a"], earlier) == "a"
    for batch in (["a", "b"], ["c"], ["d", "e"], ["f"]):
        assert keys.add(batch, earlier) is None
        added.extend(batch)
    assert keys.add(["x", "e"], earlier) == "e"
    assert keys.add(["y", "b"], earlier) == "b"  # in the first run, after merges


def test_a_hash_collision_is_checked_against_the_real_ids_and_not_reported(colliding):
    added = []
    reads = []

    def earlier():
        reads.append(1)
        return iter(added)

    keys = UniqueKeys()
    assert keys.add(["one"], earlier) is None
    added.append("one")
    assert keys.add(["two"], earlier) is None  # same hash, other id: not a repeat
    added.append("two")
    assert len(reads) == 1
    assert keys.add(["one"], earlier) == "one"


def test_key_index_answers_like_a_set():
    rng = random.Random(1)
    chunks = [[f"id-{rng.randrange(10**9)}" for _ in range(rng.randrange(0, 500))] for _ in range(20)]
    reference = {key for chunk in chunks for key in chunk}
    index = KeyIndex(chunks)
    assert len(index) == sum(len(chunk) for chunk in chunks)
    probes = list(reference)[:300] + [f"id-{rng.randrange(10**9)}" for _ in range(300)] + ["", "id-"]
    assert [probe in index for probe in probes] == [probe in reference for probe in probes]
    assert "anything" not in KeyIndex([])


def test_key_index_compares_the_ids_when_hashes_collide(colliding):
    index = KeyIndex([["one", "two"], ["four"]])
    assert "two" in index and "four" in index
    assert "three" not in index  # same hash as all of them, other id


def test_shard_parsing():
    assert Shard.parse("1/4") == Shard(1, 4) and str(Shard.parse(None)) == "0/1"
    for bad in ("4/4", "x", "-1/2", "1/0"):
        with pytest.raises(Exception, match="K/N"):
            Shard.parse(bad)
    assert math.isclose(sum(shard_of(str(i), 4) == 0 for i in range(4000)) / 4000, 0.25, abs_tol=0.03)
