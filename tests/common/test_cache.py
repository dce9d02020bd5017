import hashlib
import os

from vizcli.common import cache


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "mine"))
    assert cache.cache_dir() == tmp_path / "mine"
    monkeypatch.delenv(cache.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == tmp_path / "xdg" / "vizcli"


def test_cached_sha256_equals_hashlib_and_follows_a_changed_file(monkeypatch, tmp_path):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))
    file = tmp_path / "weights.bin"
    file.write_bytes(b"a" * 1000)
    assert cache.cached_sha256(file) == hashlib.sha256(b"a" * 1000).hexdigest()
    assert (tmp_path / "cache" / cache.DIGESTS).exists()
    file.write_bytes(b"b" * 1001)  # size and mtime change: read again
    assert cache.cached_sha256(file) == hashlib.sha256(b"b" * 1001).hexdigest()


def test_a_remembered_digest_is_trusted_while_the_files_identity_holds(monkeypatch, tmp_path):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))
    file = tmp_path / "weights.bin"
    file.write_bytes(b"x" * 64)
    first = cache.cached_sha256(file)
    status = file.stat()
    with open(file, "r+b") as handle:  # same size, same inode, mtime put back: the identity holds
        handle.write(b"z")
    os.utime(file, ns=(status.st_atime_ns, status.st_mtime_ns))
    assert cache.cached_sha256(file) == first  # not read again
    os.utime(file, ns=(status.st_atime_ns, status.st_mtime_ns + 1))
    assert cache.cached_sha256(file) == hashlib.sha256(b"z" + b"x" * 63).hexdigest()


def test_a_broken_or_unwritable_cache_only_costs_the_work(monkeypatch, tmp_path):
    folder = tmp_path / "cache"
    folder.mkdir()
    (folder / cache.DIGESTS).write_text("[not json", encoding="utf-8")
    monkeypatch.setenv(cache.CACHE_ENV, str(folder))
    file = tmp_path / "weights.bin"
    file.write_bytes(b"y")
    assert cache.cached_sha256(file) == hashlib.sha256(b"y").hexdigest()
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv(cache.CACHE_ENV, str(blocked / "below"))  # cannot be made
    assert cache.cached_sha256(file) == hashlib.sha256(b"y").hexdigest()
    assert not [name for name in os.listdir(folder) if name.endswith(".tmp")]


def test_entries_are_kept_newest_last_and_bounded(monkeypatch, tmp_path):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))
    for number in range(5):
        cache.write_entry("probe.json", f"k{number}", number, keep=3)
    assert cache.read_entry("probe.json", "k0") is None
    assert [cache.read_entry("probe.json", f"k{n}") for n in (2, 3, 4)] == [2, 3, 4]


def test_a_named_pipe_or_a_huge_file_in_a_caches_place_is_ignored_never_waited_on(monkeypatch, tmp_path):
    import threading

    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))
    os.mkfifo(tmp_path / "pipe.json")
    found = []
    reader = threading.Thread(target=lambda: found.append(cache.read_entry("pipe.json", "k")), daemon=True)
    reader.start()
    reader.join(timeout=10)  # an open() that waits for a writer would still be blocked here
    assert not reader.is_alive() and found == [None]
    cache.write_entry("pipe.json", "k", 1)
    assert (tmp_path / "pipe.json").is_fifo()  # not replaced: it is not ours
    (tmp_path / "huge.json").write_text('{"k": 1, "pad": "' + "x" * cache.MAX_CACHE_BYTES + '"}')
    assert cache.read_entry("huge.json", "k") is None
    (tmp_path / "list.json").write_text("[1, 2]")
    assert cache.read_entry("list.json", "k") is None


def test_values_are_used_only_when_their_check_accepts_them(monkeypatch, tmp_path):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))
    cache.write_entry("x.json", "good", 5)
    cache.write_entry("x.json", "bad", "five")
    assert cache.read_entry("x.json", "good", lambda value: value > 0) == 5
    assert cache.read_entry("x.json", "bad", lambda value: value > 0) is None  # the check's TypeError: not believed
    file = tmp_path / "weights.bin"
    file.write_bytes(b"z" * 10)
    status = file.stat()
    key = f"{os.path.realpath(file)}|{status.st_dev}|{status.st_ino}|{status.st_size}|{status.st_mtime_ns}"
    cache.write_entry(cache.DIGESTS, key, "G" * 64)  # 64 characters, not a hex digest
    assert cache.cached_sha256(file) == hashlib.sha256(b"z" * 10).hexdigest()
