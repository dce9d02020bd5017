"""The int8 choices measured: torch's stock dynamic quantization against vizcli's per-token scales.

    python int8_choices.py CORPUS THREADS      → one JSON line per variant: seconds, min/mean cosine, recall@10

Variants, all on the bundled model, mean pooling, against float32 on the same texts:
* ``quantize_dynamic`` per-tensor weights (torch's default qconfig), per-tensor activations;
* ``quantize_dynamic`` per-channel weights, per-tensor activations;
* vizcli ``--dtype int8``: per-channel weights, per-token activations (``vizcli.embed.int8``).
"""

import json
import sys
import time
import warnings

import numpy as np
import torch

from vizcli.embed.loading import load_bert

warnings.filterwarnings("ignore")
corpus, threads = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(threads)
with open(corpus, encoding="utf-8") as handle:
    texts = [line.rstrip("\n") for line in handle]


def timed(encoder):
    encoder.encode(texts[:64], ("mean",))
    start = time.perf_counter()
    vectors = encoder.encode(texts, ("mean",)).vectors["mean"]
    return time.perf_counter() - start, vectors


def quality(a, b, neighbours=10):
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    cosine = (a * b).sum(1)
    near = []
    for unit in (a, b):
        similarity = unit @ unit.T
        np.fill_diagonal(similarity, -np.inf)
        near.append(np.argsort(-similarity, axis=1)[:, :neighbours])
    recall = float(np.mean([len(set(x) & set(y)) / neighbours for x, y in zip(*near)]))
    return float(cosine.min()), float(cosine.mean()), recall


def stock(qconfig):
    from torch.ao.quantization import quantize_dynamic

    encoder = load_bert()
    for module in encoder.model.modules():
        if hasattr(module, "fused"):
            module.fused = None  # quantize_dynamic swaps nn.Linear modules only
    encoder.model = quantize_dynamic(encoder.model, {torch.nn.Linear: qconfig}, dtype=torch.qint8)
    return encoder


_, reference = timed(load_bert())
from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig  # noqa: E402

for label, make in (("torch quantize_dynamic, per-tensor weights and activations", lambda: stock(default_dynamic_qconfig)),
                    ("torch quantize_dynamic, per-channel weights, per-tensor activations", lambda: stock(per_channel_dynamic_qconfig)),
                    ("vizcli int8: per-channel weights, per-token activations", lambda: load_bert(dtype="int8"))):
    seconds, vectors = timed(make())
    minimum, mean, recall = quality(reference, vectors)
    print(json.dumps({"variant": label, "seconds": seconds, "min": minimum, "mean": mean, "recall": recall}), flush=True)
