"""Peer: OpenVINO's CPU plugin on sentence-transformers' ONNX export, mean pooling, vectors to .npy.

    python openvino_embed.py MODEL_FOLDER CORPUS|text:TEXT OUTPUT.npy THREADS default|f32 [--in-process]

MODEL_FOLDER holds ``onnx/model.onnx``, made by ``st_backends.py prepare`` (the same export that
sentence-transformers' ``onnx`` backend runs). ``default`` compiles with OpenVINO's own choice of
precision (``INFERENCE_PRECISION_HINT`` left unset: bfloat16 on a CPU with AVX512-BF16 or AMX),
``f32`` forces float32. Texts are batched as sentence-transformers batches them (sorted by length,
32 a batch, padded to the batch's longest) and tokenized by the model's own ``tokenizer.json``.
With --in-process it prints the best of 2 encodes after a warm-up, in seconds, and the precision
OpenVINO ran.
"""

import json
import sys
from pathlib import Path

import numpy as np
import openvino as ov
from _peer import best_of_two, read_texts  # beside this script
from tokenizers import Tokenizer

BATCH = 32


def load(folder: str, precision: str, threads: int):
    core = ov.Core()
    config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
    if precision == "f32":
        config["INFERENCE_PRECISION_HINT"] = "f32"
    compiled = core.compile_model(core.read_model(str(Path(folder) / "onnx" / "model.onnx")), "CPU", config)
    tokenizer = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
    tokenizer.enable_truncation(512)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    return compiled, tokenizer


def encode(compiled, tokenizer, texts: list[str]) -> np.ndarray:
    names = {port.get_any_name() for port in compiled.inputs}
    order = np.argsort([-len(text) for text in texts], kind="stable")
    out = np.empty((len(texts), compiled.output(0).get_partial_shape()[2].get_length()), dtype=np.float32)
    request = compiled.create_infer_request()
    for start in range(0, len(texts), BATCH):
        picked = order[start:start + BATCH]
        encodings = tokenizer.encode_batch([texts[i] for i in picked])
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in names:
            feed["token_type_ids"] = np.zeros_like(ids)
        hidden = request.infer(feed)[compiled.output(0)]
        weights = mask[:, :, None].astype(np.float32)
        out[picked] = (hidden * weights).sum(1) / np.maximum(weights.sum(1), 1e-9)
    return out


def main() -> None:
    folder, corpus, output, threads, precision = sys.argv[1:6]
    compiled, tokenizer = load(folder, precision, int(threads))
    texts = read_texts(corpus)
    if "--in-process" in sys.argv:
        best, vectors = best_of_two(lambda chosen: encode(compiled, tokenizer, chosen), texts)
        hint = compiled.get_property("INFERENCE_PRECISION_HINT")
        ran = hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)
        print(json.dumps({"seconds": best, "dtype": ran}))
    else:
        vectors = encode(compiled, tokenizer, texts)
    np.save(output, vectors)


if __name__ == "__main__":
    main()
