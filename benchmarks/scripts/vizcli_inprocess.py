"""vizcli's encoder in one process: best of 2 encodes of a corpus after a warm-up, in seconds.

    python vizcli_inprocess.py CORPUS OUTPUT.npy THREADS DTYPE
"""

import json
import sys
import time

import numpy as np
import torch

from vizcli.embed.loading import load_bert

corpus, output, threads, dtype = sys.argv[1:5]
torch.set_num_threads(int(threads))
encoder = load_bert(dtype=dtype)
with open(corpus, encoding="utf-8") as handle:
    texts = [line.rstrip("\n") for line in handle]
encoder.encode(texts[:64], ("mean",))
best = float("inf")
for _ in range(2):
    start = time.perf_counter()
    vectors = encoder.encode(texts, ("mean",)).vectors["mean"]
    best = min(best, time.perf_counter() - start)
np.save(output, vectors)
print(json.dumps({"seconds": best, "dtype": encoder.dtype}))
