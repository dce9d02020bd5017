"""UniqueKeys: the compact repeated-id check of corpus runs, against a plain set."""

import random

from vizcli.datasets.keys import KeyIndex, UniqueKeys


class Colliding(str):
    """A str whose hash collides with every other Colliding's."""

    def __hash__(self):
        return 42


def test_no_repeat_in_many_batches_is_none_and_costs_8_bytes_an_id():
    keys = UniqueKeys()
    ids = [f"doc-{number}" for number in range(100_000)]
    random.Random(0).shuffle(ids)
    calls = []
    for start in range(0, len(ids), 1000):
        assert keys.add(ids[start:start + 1000], lambda: calls.append(1) or []) is None
    assert keys.count == 100_000 and keys.nbytes == 800_000
    assert len(keys._runs) <= 8  # merged as they grow: lookups touch few runs
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


def test_a_hash_collision_is_checked_against_the_real_ids_and_not_reported():
    added = []
    reads = []

    def earlier():
        reads.append(1)
        return iter(added)

    keys = UniqueKeys()
    assert keys.add([Colliding("one")], earlier) is None
    added.append(Colliding("one"))
    assert keys.add([Colliding("two")], earlier) is None  # same hash, other id: not a repeat
    added.append(Colliding("two"))
    assert len(reads) == 1
    assert keys.add([Colliding("one")], earlier) == "one"


def test_key_index_answers_like_a_set():
    rng = random.Random(1)
    chunks = [[f"id-{rng.randrange(10**9)}" for _ in range(rng.randrange(0, 500))] for _ in range(20)]
    reference = {key for chunk in chunks for key in chunk}
    index = KeyIndex(chunks)
    assert len(index) == sum(len(chunk) for chunk in chunks)
    probes = list(reference)[:300] + [f"id-{rng.randrange(10**9)}" for _ in range(300)] + ["", "id-"]
    assert [probe in index for probe in probes] == [probe in reference for probe in probes]
    assert "anything" not in KeyIndex([])


def test_key_index_compares_the_ids_when_hashes_collide():
    index = KeyIndex([[Colliding("one"), Colliding("two")], [Colliding("four")]])
    assert Colliding("two") in index and Colliding("four") in index
    assert Colliding("three") not in index  # same hash as all of them, other id
