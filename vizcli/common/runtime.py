"""Device and thread selection shared by every command that runs a model."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

from vizcli.common.errors import BadInput

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> Any:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is a ``BadInput``."""
    import torch

    name = name.lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise BadInput("no CUDA GPU is available here; use device='cpu' or device='auto'", parameter="device", value=name)
        return torch.device(name)
    raise BadInput(f"unknown device; use one of {', '.join(DEVICES)}", parameter="device", value=name)


def check_threads(threads: int | None, warn: Callable[[str], None] = lambda message: None) -> int | None:
    """``threads`` checked (at least 1) and capped at the cores this process may use, with a warning."""
    if threads is None:
        return None
    if threads < 1:
        raise BadInput("must be at least 1", parameter="threads", value=threads)
    cores = available_cores()
    if threads > cores:
        warn(f"threads={threads} is more than the {cores} cores available; using {cores}")
        return cores
    return threads


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def set_threads(threads: int | None, warn: Callable[[str], None] = lambda message: None) -> None:
    """Limit torch's intra-op threads (None leaves torch's default); more than the cores is capped."""
    threads = check_threads(threads, warn)
    if threads is None:
        return
    import torch

    torch.set_num_threads(threads)


def cpu_has_bfloat16_units() -> bool | None:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX; Linux's cpuinfo flags).

    ``None`` when unknown (no /proc/cpuinfo). Without them torch emulates bfloat16 and
    convolutions run many times slower than in float32.
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        return None
    return None


MMAP_THRESHOLD = 1 << 20  # bytes: larger blocks get their own mapping, returned to the system when freed
ONEDNN_CACHE = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"


def flat_heap_env(uncached_kernels: bool = False, mapped_blocks: bool = True) -> dict[str, str]:
    """The environment ``keep_heap_flat`` sets up, for processes started later (Ray actors)."""
    env = {"MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD)} if mapped_blocks else {}
    env["ARROW_DEFAULT_MEMORY_POOL"] = "system"
    if uncached_kernels:
        env[ONEDNN_CACHE] = os.environ.get(ONEDNN_CACHE, "0")
    return env


@contextlib.contextmanager
def flat_heap(uncached_kernels: bool = False, mapped_blocks: bool = True) -> Iterator[bool]:
    """``keep_heap_flat`` for the length of a run: the variables it sets are put back afterwards
    (the libraries read them at their first allocation), so the caller's environment is unchanged.
    Yields whether glibc's threshold applied."""
    saved = {name: os.environ.get(name) for name in flat_heap_env(uncached_kernels, mapped_blocks)}
    try:
        yield keep_heap_flat(uncached_kernels, mapped_blocks)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def keep_heap_flat(uncached_kernels: bool = False, mapped_blocks: bool = True) -> bool:
    """Keep a long dataset run's peak memory from growing with the number of rows.

    Three things grew it, each measured on an embed corpus run (benchmarks/RESULTS.md):

    - glibc raises its mmap threshold each time a large block is freed, so later activations come
      from the heap, and batches of varying shapes fragment it (peak RSS 1.31× from 20,000 to
      200,000 lines). A fixed 1 MiB threshold (as ``MALLOC_MMAP_THRESHOLD_`` sets) gives every
      large tensor its own mapping, returned when freed.
    - Arrow's default pool (mimalloc) kept freed buffers, so joining the Parquet parts at the end
      cost more the more parts there were; Arrow's system pool hands them back to glibc
      (``ARROW_DEFAULT_MEMORY_POOL=system`` unless set: read at Arrow's first allocation, and
      ``pyarrow.set_memory_pool`` does not reach the Parquet reader's own allocations).
    - ``uncached_kernels``: oneDNN compiles a kernel for every new input shape and caches up to
      1,024 of them. Embed's GELU runs through oneDNN, and token-budget batches come in hundreds
      of shapes: on a 1-layer model the cache alone grew RSS by 29 MB over 200,000 lines.
      ``ONEDNN_PRIMITIVE_CACHE_CAPACITY=0`` (unless already set) compiles GELU's kernel afresh each
      call, about 0.1 ms. Read at the first oneDNN call; not for ResNet (roi),
      whose convolution kernels cost far more to compile.

    ``mapped_blocks=False`` leaves glibc's threshold alone: a detector's activations are tens of
    MB, and mapping each afresh made ``fasterrcnn_mobilenet_v3_large_320_fpn`` 1.5× slower
    (0.223 s against 0.149 s an image, measured here); its input sizes are bounded by its own
    transform, and benchmarks/RESULTS.md records its peak memory at two dataset sizes.

    For dataset runs only (``flat_heap`` scopes the variables to the run); returns whether glibc's
    threshold applied.
    """
    import ctypes
    import ctypes.util
    import sys

    for name, value in flat_heap_env(uncached_kernels, mapped_blocks).items():
        if name != "MALLOC_MMAP_THRESHOLD_":  # glibc reads that one at start-up only: mallopt below
            os.environ.setdefault(name, value)
    if not mapped_blocks or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: no mallopt
        return False
    m_mmap_threshold = -3  # from <malloc.h>
    return bool(mallopt(m_mmap_threshold, MMAP_THRESHOLD))


def memory_budget() -> int | None:
    """Bytes this process may still take: the lower of the address-space limit left (``ulimit -v``)
    and the memory Linux says is available; None when neither can be read."""
    limits = []
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            with open("/proc/self/statm", encoding="ascii") as handle:
                used = int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
            limits.append(max(0, soft - used))
    except (ImportError, OSError, ValueError):
        pass
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    limits.append(int(line.split()[1]) * 1024)
                    break
    except (OSError, ValueError):
        pass
    return min(limits) if limits else None
