"""The int8 choices measured (quality is computed by benchmarks/__main__.py from the saved vectors): torch's stock dynamic quantization against vizcli's per-token scales.

    python int8_choices.py CORPUS THREADS FOLDER   → FOLDER/float32.npy, FOLDER/variant-N.npy, and one JSON
                                                      line per variant: its label, seconds and vectors file

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
corpus, threads, folder = sys.argv[1], int(sys.argv[2]), sys.argv[3]
torch.set_num_threads(threads)
with open(corpus, encoding="utf-8") as handle:
    texts = [line.rstrip("\n") for line in handle]


def timed(encoder):
    encoder.encode(texts[:64], ("mean",))
    start = time.perf_counter()
    vectors = encoder.encode(texts, ("mean",)).vectors["mean"]
    return time.perf_counter() - start, vectors


def stock(qconfig):
    from torch.ao.quantization import quantize_dynamic

    encoder = load_bert()
    for module in encoder.model.modules():
        if hasattr(module, "fused"):
            module.fused = None  # quantize_dynamic swaps nn.Linear modules only
    encoder.model = quantize_dynamic(encoder.model, {torch.nn.Linear: qconfig}, dtype=torch.qint8)
    return encoder


_, reference = timed(load_bert())
np.save(f"{folder}/float32.npy", reference)
from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig  # noqa: E402

for number, (label, make) in enumerate((
        ("torch quantize_dynamic, per-tensor weights and activations", lambda: stock(default_dynamic_qconfig)),
        ("torch quantize_dynamic, per-channel weights, per-tensor activations", lambda: stock(per_channel_dynamic_qconfig)),
        ("vizcli int8: per-channel weights, per-token activations", lambda: load_bert(dtype="int8")))):
    seconds, vectors = timed(make())
    path = f"{folder}/variant-{number}.npy"
    np.save(path, vectors)
    print(json.dumps({"variant": label, "seconds": seconds, "vectors": path}), flush=True)
