"""Peer: sentence-transformers with its torch, onnx or onnx int8 backend, vectors to .npy.

    python st_backends.py MODEL_FOLDER CORPUS|text:TEXT OUTPUT.npy THREADS torch|onnx|onnx-int8 [--in-process]

MODEL_FOLDER holds the ONNX exports made by ``prepare`` (sentence-transformers' own export
functions, run locally). With --in-process it prints the best of 2 encodes after a warm-up, in seconds.
"""

import json
import sys

import numpy as np
import torch
from _peer import best_of_two, read_texts  # beside this script
from sentence_transformers import SentenceTransformer

INT8_FILE = "onnx/model_qint8_{config}.onnx"


def int8_config() -> str:
    """sentence-transformers' quantization config for this CPU (its names: arm64, avx2, avx512, avx512_vnni)."""
    import platform

    if platform.machine() in ("aarch64", "arm64"):
        return "arm64"
    flags = ""
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("flags"):
                flags = line
                break
    return "avx512_vnni" if "avx512_vnni" in flags else "avx512" if "avx512f" in flags else "avx2"


def prepare(folder: str) -> None:
    """Export the ONNX model and its dynamic int8 quantization into ``folder`` (a copy of the bundled model)."""
    from sentence_transformers import export_dynamic_quantized_onnx_model

    model = SentenceTransformer(folder, backend="onnx", device="cpu")
    model.save_pretrained(folder)
    export_dynamic_quantized_onnx_model(model, int8_config(), folder)


def load(folder: str, backend: str) -> SentenceTransformer:
    if backend == "torch":
        model = SentenceTransformer(folder, device="cpu")
    elif backend == "onnx":
        model = SentenceTransformer(folder, backend="onnx", device="cpu", model_kwargs={"file_name": "onnx/model.onnx"})
    else:
        model = SentenceTransformer(folder, backend="onnx", device="cpu",
                                    model_kwargs={"file_name": INT8_FILE.format(config=int8_config())})
    model.max_seq_length = 512
    return model


def main() -> None:
    if sys.argv[1] == "prepare":
        prepare(sys.argv[2])
        return
    folder, corpus, output, threads, backend = sys.argv[1:6]
    torch.set_num_threads(int(threads))
    model = load(folder, backend)
    texts = read_texts(corpus)
    if "--in-process" in sys.argv:
        best, vectors = best_of_two(
            lambda chosen: model.encode(chosen, batch_size=32, convert_to_numpy=True, show_progress_bar=False), texts)
        print(json.dumps({"seconds": best}))
    else:
        vectors = model.encode(texts, batch_size=32, convert_to_numpy=True, show_progress_bar=False)
    np.save(output, vectors.astype(np.float32))


if __name__ == "__main__":
    main()
