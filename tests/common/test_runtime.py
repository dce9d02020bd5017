"""vizcli.common.runtime: threads are checked and capped, and a run's heap settings stay inside the run."""

import os

import pytest

from vizcli.common.errors import BadInput
from vizcli.common.runtime import ONEDNN_CACHE, available_cores, check_threads, flat_heap


def test_threads_past_the_cores_are_capped_with_a_warning():
    said = []
    assert check_threads(available_cores() + 5, said.append) == available_cores()
    assert said and f"threads={available_cores() + 5}" in said[0]
    assert check_threads(None) is None and check_threads(1) == 1
    with pytest.raises(BadInput):
        check_threads(0)


def test_flat_heap_sets_the_allocators_variables_for_the_run_only(monkeypatch):
    monkeypatch.delenv(ONEDNN_CACHE, raising=False)
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")  # a user's own choice is kept
    with flat_heap(uncached_kernels=True):
        assert os.environ[ONEDNN_CACHE] == "0" and os.environ["ARROW_DEFAULT_MEMORY_POOL"] == "jemalloc"
    assert ONEDNN_CACHE not in os.environ and os.environ["ARROW_DEFAULT_MEMORY_POOL"] == "jemalloc"
    with flat_heap():
        assert ONEDNN_CACHE not in os.environ  # roi keeps oneDNN's cache: its convolution kernels cost far more to build


def test_threads_above_the_cores_warn_and_are_capped(invoke):
    result = invoke("approx", "--width", "2", "--restarts", "1", "--threads", "10000")
    assert result.exit_code == 0, result.stderr
    assert "Warning: --threads 10000 is more than the" in result.stderr  # warnings name flags, as errors do
