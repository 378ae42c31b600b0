"""python -m autoencoder.bench KEY CONFIG EPOCHS: one contender process (bench/contender.py)."""

import sys

from autoencoder.bench.contender import contender

# Keras and TensorFlow print to stdout now and then; the parent reads only our JSON lines.
sys.stdout = sys.stderr
contender(sys.argv[1], sys.argv[2], int(sys.argv[3]))
