"""``--dtype auto``: the compute dtype chosen by measuring, not by reading CPU flags.

A CPU with AVX512-BF16 can still run bfloat16 slower than float32 (one host measured 1.6× slower),
so the choice is a short timed probe on the loaded model: one batch of 16 texts × 64 tokens, run in
float32 and in bfloat16 in turn, ``ROUNDS`` pairs after a warm-up. As FFTW keeps its plans, the
result is cached (``vizcli.common.cache``) per CPU model, torch version, thread count and model
shape, so the probe runs once per machine and model.

The rule holds on a busy machine (one measured bfloat16 at 0.19× to 1.70× of float32 within minutes
with one-shot timings): the two dtypes run interleaved, so a burst of load falls on both, and each
pair gives a ratio. bfloat16 is picked only when every pair's ratio is at most ``MARGIN`` (the
figures are the medians); float32 when none is. Ratios on both sides of the margin are noise: the
probe is repeated once, and if it is still undecided, float32 is used and nothing is cached. A cached
entry is used only when its figures are plausible (positive, finite, under a minute); else the probe
runs again.

``auto`` picks between the two dtypes that keep the vectors (bfloat16's min cosine against float32
was 0.9999 on the benchmark corpus), so ``auto`` is never slower than float32. int8 changes the
vectors more (min cosine 0.988, with a receipt in every output) and is used only when asked for.
"""

from __future__ import annotations

import copy
import math
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

PROBE_SHAPE = (16, 64)  # texts × tokens: a typical batch of short sentences
ROUNDS = 5  # interleaved float32/bfloat16 pairs
ATTEMPTS = 2  # a probe that measured noise runs once more, then is ignored
MARGIN = 0.95  # bfloat16 must take at most 95% of float32's time to be picked (timing noise)
MAX_PLAUSIBLE_SECONDS = 60.0  # one probe batch; a cached figure beyond it (or ≤ 0) is not believed
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


def measure(model: Any, config: dict, device: str = "cpu", rounds: int = ROUNDS) -> dict[str, list[float]]:
    """Seconds per probe batch of ``model`` (a loaded float32 encoder, not changed) in each candidate
    dtype, ``rounds`` times each, the dtypes taking turns (``{"float32": [...], "bfloat16": [...]}``)."""
    import torch

    from vizcli.embed.bert import BertEncoder, fuse_projections

    generator = torch.Generator().manual_seed(0)
    vocabulary = int(config.get("vocab_size", 30522))
    input_ids = torch.randint(1000 if vocabulary > 2000 else 0, vocabulary, PROBE_SHAPE, generator=generator).to(device)
    mask = torch.ones(PROBE_SHAPE, dtype=torch.long, device=device)
    candidates = {}
    for name in CANDIDATES:
        candidate = copy.deepcopy(model).to(dtype=getattr(torch, name))
        if isinstance(candidate, BertEncoder):
            fuse_projections(candidate)  # as load_bert runs it: one Q/K/V matrix in this dtype
        candidates[name] = candidate
    seconds: dict[str, list[float]] = {name: [] for name in CANDIDATES}
    with torch.inference_mode():
        for candidate in candidates.values():
            candidate(input_ids, mask)  # warm-up: kernels chosen and caches filled
        for _ in range(rounds):
            for name, candidate in candidates.items():
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                start = time.perf_counter()
                candidate(input_ids, mask)
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                seconds[name].append(time.perf_counter() - start)
    return seconds


def verdict(rounds: dict[str, list[float]]) -> dict[str, Any]:
    """The decision from interleaved timings: ``{"seconds": medians, "ratios": bfloat16/float32 per pair,
    "fastest": dtype or None when the pairs disagree (noise)}``."""
    ratios = [b / f for f, b in zip(rounds["float32"], rounds["bfloat16"]) if f > 0]
    seconds = {name: statistics.median(values) for name, values in rounds.items()}
    if ratios and max(ratios) <= MARGIN:
        fastest: str | None = "bfloat16"
    elif ratios and min(ratios) > MARGIN:
        fastest = "float32"
    else:
        fastest = None
    return {"seconds": seconds, "ratios": ratios, "fastest": fastest}


def plausible(seconds: Any) -> bool:
    """Whether cached figures can be believed: a positive, finite time under a minute for each dtype."""
    return isinstance(seconds, dict) and all(
        isinstance(seconds.get(name), (int, float)) and not isinstance(seconds.get(name), bool)
        and math.isfinite(seconds[name]) and 0 < seconds[name] < MAX_PLAUSIBLE_SECONDS for name in CANDIDATES)


def probe(model: Any, config: dict, device: str = "cpu", timer: Callable[..., dict[str, list[float]]] | None = None) -> dict[str, Any]:
    """``{"seconds": {dtype: s}, "fastest": dtype, "cached": bool, "noisy": bool}`` for ``model``,
    measured once per key (a noisy probe: float32, and measured again next time). ``timer``:
    ``measure``, or figures from elsewhere (tests give fixed ones)."""
    from vizcli.common.cache import read_entry, write_entry

    key = probe_key(config, device)
    known = read_entry(PROBE_CACHE, key, plausible)
    if known is not None:
        seconds = {name: float(known[name]) for name in CANDIDATES}
        return {"seconds": seconds, "fastest": choose(seconds), "cached": True, "noisy": False}
    for _ in range(ATTEMPTS):
        result = verdict((timer or measure)(model, config, device))
        if result["fastest"] is not None:
            write_entry(PROBE_CACHE, key, result["seconds"])
            return {"seconds": result["seconds"], "fastest": result["fastest"], "cached": False, "noisy": False}
    return {"seconds": result["seconds"], "fastest": "float32", "cached": False, "noisy": True}


def choose(seconds: dict[str, float]) -> str:
    """bfloat16 when it measured at most ``MARGIN`` of float32's time, else float32."""
    return "bfloat16" if seconds["bfloat16"] <= MARGIN * seconds["float32"] else "float32"


def describe(result: dict[str, Any]) -> str:
    """``bfloat16 took 1.62× float32's time`` (the figure a message gives)."""
    seconds = result["seconds"]
    ratio = seconds["bfloat16"] / seconds["float32"]
    where = "cached probe" if result["cached"] else "probe"
    text = f"bfloat16 took {ratio:.2f}× float32's time on this CPU, {where} of {PROBE_SHAPE[0]} texts × {PROBE_SHAPE[1]} tokens"
    if result.get("noisy"):
        text += f" (median of {ROUNDS} pairs; the pairs disagreed twice, a busy machine: float32 kept, nothing cached)"
    return text
