"""`autoencoder bench`: this project's trainer against the plain Keras script, on one machine.

Three contenders train the same model on the same images at the same batch size:
  A  this project's trainer: trainer.fit, as `autoencoder train` calls it, into a scratch run;
  B  the plain Keras script: model.compile, then model.fit on NumPy arrays, default environment;
  C  the same plain script given the environment settings this project applies.
Each runs in its own process (TF_ENABLE_ONEDNN_OPTS only counts before TensorFlow is imported),
and the parent lets them take turns one epoch at a time (A B C A B C ...), so that drift in a
shared machine's speed falls on all three alike and no two ever train at once.

parent.py is the parent's side, contender.py a contender process's, profile.py the measurements
made in one process (`--layers`, the matmul rate).
"""

from autoencoder.bench.parent import (
    CONTENDERS,
    PROJECT_ENV,
    format_bench,
    run_bench,
    start_contender,
)
from autoencoder.bench.profile import layer_profile, measure_matmul

__all__ = [
    "CONTENDERS",
    "PROJECT_ENV",
    "format_bench",
    "layer_profile",
    "measure_matmul",
    "run_bench",
    "start_contender",
]
