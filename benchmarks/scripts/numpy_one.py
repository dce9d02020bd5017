"""vizcli's torch-free encoder on one sentence without the CLI: the numpy counterpart of ort_one.py.

    python numpy_one.py TEXT OUTPUT.npy
"""

import sys

import numpy as np

from vizcli.embed.loading import load_numpy_bert

text, output = sys.argv[1:3]
encoder = load_numpy_bert()
np.save(output, encoder.encode([text], ("mean",)).vectors["mean"])
