"""``--dtype auto``: the compute dtype chosen by measuring, not by reading CPU flags.

A CPU with AVX512-BF16 can still run bfloat16 slower than float32 (one host measured 1.6× slower),
so the choice is a short timed probe on the loaded model: one batch of 16 texts × 64 tokens, run
in float32 and in bfloat16, best of 3 after a warm-up. As FFTW keeps its plans, the result is
cached (``vizcli.common.cache``) per CPU model, torch version, thread count and model shape, so the
probe runs once per machine and model.

``auto`` picks between the two dtypes that keep the vectors (bfloat16's min cosine against float32
was 0.9999 on the benchmark corpus): bfloat16 only when it measured at least ``MARGIN`` faster, so
``auto`` is never slower than float32. int8 changes the vectors more (min cosine 0.988, with a
receipt in every output) and is used only when asked for.
"""

from __future__ import annotations

import copy
import platform
import time
from typing import Any

PROBE_SHAPE = (16, 64)  # texts × tokens: a typical batch of short sentences
ROUNDS = 3
MARGIN = 0.95  # bfloat16 must take at most 95% of float32's time to be picked (timing noise)
PROBE_CACHE = "dtype_probe.json"
CANDIDATES = ("float32", "bfloat16")


def cpu_model() -> str:
    """This CPU's model name (Linux's cpuinfo), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def probe_key(config: dict, device: str) -> str:
    import torch

    shape = "x".join(str(config.get(name, "?")) for name in ("num_hidden_layers", "hidden_size", "intermediate_size"))
    return f"{cpu_model()}|{device}|torch {torch.__version__}|threads {torch.get_num_threads()}|bert {shape}"


def measure(model: Any, config: dict, device: str = "cpu") -> dict[str, float]:
    """Seconds per probe batch of ``model`` (a loaded float32 encoder, not changed) in each candidate dtype."""
    import torch

    from vizcli.embed.bert import BertEncoder, fuse_projections

    generator = torch.Generator().manual_seed(0)
    vocabulary = int(config.get("vocab_size", 30522))
    input_ids = torch.randint(1000 if vocabulary > 2000 else 0, vocabulary, PROBE_SHAPE, generator=generator).to(device)
    mask = torch.ones(PROBE_SHAPE, dtype=torch.long, device=device)
    seconds = {}
    for name in CANDIDATES:
        candidate = copy.deepcopy(model).to(dtype=getattr(torch, name))
        if isinstance(candidate, BertEncoder):
            fuse_projections(candidate)  # as load_bert runs it: one Q/K/V matrix in this dtype
        with torch.inference_mode():
            candidate(input_ids, mask)  # warm-up: kernels chosen and caches filled
            best = float("inf")
            for _ in range(ROUNDS):
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                start = time.perf_counter()
                candidate(input_ids, mask)
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                best = min(best, time.perf_counter() - start)
        seconds[name] = best
        del candidate
    return seconds


def probe(model: Any, config: dict, device: str = "cpu") -> dict[str, Any]:
    """``{"seconds": {dtype: s}, "fastest": dtype, "cached": bool}`` for ``model``, measured once per key."""
    from vizcli.common.cache import read_entry, write_entry

    key = probe_key(config, device)
    known = read_entry(PROBE_CACHE, key)
    if isinstance(known, dict) and all(isinstance(known.get(name), (int, float)) for name in CANDIDATES):
        seconds = {name: float(known[name]) for name in CANDIDATES}
        cached = True
    else:
        seconds = measure(model, config, device)
        write_entry(PROBE_CACHE, key, seconds)
        cached = False
    return {"seconds": seconds, "fastest": choose(seconds), "cached": cached}


def choose(seconds: dict[str, float]) -> str:
    """bfloat16 when it measured at least ``MARGIN`` of float32's time, else float32."""
    return "bfloat16" if seconds["bfloat16"] <= MARGIN * seconds["float32"] else "float32"


def describe(result: dict[str, Any]) -> str:
    """``bfloat16 took 1.62× float32's time`` (the figure a message gives)."""
    seconds = result["seconds"]
    ratio = seconds["bfloat16"] / seconds["float32"]
    where = "cached probe" if result["cached"] else "probe"
    return f"bfloat16 took {ratio:.2f}× float32's time on this CPU, {where} of {PROBE_SHAPE[0]} texts × {PROBE_SHAPE[1]} tokens"
