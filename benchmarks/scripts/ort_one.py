"""ONNX Runtime + tokenizers on one sentence: the smallest torch-free start the ONNX route allows.

    python ort_one.py MODEL_FOLDER TEXT OUTPUT.npy     (MODEL_FOLDER/onnx/model.onnx, exported beforehand)
"""

import sys

import numpy as np
import onnxruntime
from tokenizers import Tokenizer

folder, text, output = sys.argv[1:4]
tokenizer = Tokenizer.from_file(f"{folder}/tokenizer.json")
tokenizer.no_padding()  # the file pads to 128 tokens; one sentence needs none
session = onnxruntime.InferenceSession(f"{folder}/onnx/model.onnx", providers=["CPUExecutionProvider"])
encoding = tokenizer.encode(text)
ids = np.array([encoding.ids], dtype=np.int64)
mask = np.ones_like(ids)
feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
hidden = session.run(None, {item.name: feeds[item.name] for item in session.get_inputs()})[0]
np.save(output, (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True))
