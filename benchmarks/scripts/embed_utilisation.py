"""How much of the machine ``vizcli embed`` uses: useful matmul FLOP/s against this process's GEMM rate.

    python benchmarks/scripts/embed_utilisation.py COUNT DTYPE THREADS   → one JSON line

It times vizcli's default batching (at most 256 texts and 4,096 padded tokens a batch) and, for
comparison, the fixed 32 texts a batch of earlier versions, alternated, best of 2 each in float32 (1 in bfloat16).

Useful FLOPs are counted from the real token lengths L (after truncation), per layer and text:
2 · (L · (4H² + 2HI) + 2L²H) — the Q, K, V and output projections, the two feed-forward matmuls,
and the two attention matmuls — times the layers (H hidden, I intermediate width). Padding and
everything that is not a matmul count as overhead. The GEMM rate is the best of 20
``F.linear`` calls of ``[4096, H]`` by an ``[I, H]`` weight (the kernel the layers call), in the same
dtype and thread count, measured in the same process.
"""

import json
import sys
import time

import torch

from benchmarks.corpus import sentences
from vizcli.embed.loading import load_bert

count, dtype, threads = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
torch.set_num_threads(threads)
texts = sentences(count)
encoder = load_bert(None, dtype=dtype)
config = encoder.config
hidden, inner, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
torch_dtype = torch.bfloat16 if dtype == "bfloat16" else torch.float32

a = torch.randn(4096, hidden, dtype=torch_dtype)
weight = torch.randn(inner, hidden, dtype=torch_dtype)  # F.linear: the kernel the model's layers call
best = float("inf")
with torch.inference_mode():
    for _ in range(20):
        start = time.perf_counter()
        torch.nn.functional.linear(a, weight)
        best = min(best, time.perf_counter() - start)
gemm = 2 * 4096 * hidden * inner / best

ROUNDS = 2 if dtype == "float32" else 1  # bfloat16 is emulated (slow) on CPUs without AVX512-BF16/AMX
CONFIGS = {"default": {}, "batch32": {"batch_size": 32, "batch_tokens": None}}
encoder.encode(texts[:64], ("mean",))  # warm-up
seconds = {name: float("inf") for name in CONFIGS}
for _ in range(ROUNDS):
    for name, options in CONFIGS.items():
        start = time.perf_counter()
        encoded = encoder.encode(texts, ("mean",), **options)
        seconds[name] = min(seconds[name], time.perf_counter() - start)
lengths = [min(tokens, encoder.max_length) for tokens in encoded.tokens]
useful = sum(2 * layers * (length * (4 * hidden * hidden + 2 * hidden * inner) + 2 * length * length * hidden) for length in lengths)
print(json.dumps({"dtype": dtype, "texts": len(texts), "tokens": sum(lengths), "seconds": seconds["default"],
                  "seconds_batch32": seconds["batch32"], "useful_flops": useful,
                  "useful_gflops_per_s": useful / seconds["default"] / 1e9, "gemm_gflops_per_s": gemm / 1e9,
                  "utilisation": useful / seconds["default"] / gemm, "utilisation_batch32": useful / seconds["batch32"] / gemm}))
