"""`autoencoder predict RUN_DIR INPUT... --out DIR`: a trained model on the user's own files.

Inputs are image files, folders of them, or .npy / .npz arrays. Each image is converted to the
model's channels, padded when smaller than the model's input, cut into overlapping tiles when
larger, and the tiles' reconstructions are blended back with a window that falls towards the
tile edges, so no seams show. Outputs keep the input names under --out, with scores.csv: per
image, the reconstruction error (and the anomaly flag when the run holds a threshold).

Everything is written into a hidden folder of --out first and moved into place only when every
input has gone through: a failed or interrupted prediction leaves --out as it was.

The package's jobs: inputs.py collects and checks the inputs, outputs.py stages and writes the
outputs and scores.csv, files.py runs the model over them.
"""

from autoencoder.predict.files import (
    Batcher,
    Item,
    noise_settings,
    predict_files,
    run_config,
    run_threshold,
)
from autoencoder.predict.inputs import Source, collect_inputs, planned_outputs
from autoencoder.predict.outputs import COLUMNS, format_summary

__all__ = [
    "COLUMNS",
    "Batcher",
    "Item",
    "Source",
    "collect_inputs",
    "format_summary",
    "noise_settings",
    "planned_outputs",
    "predict_files",
    "run_config",
    "run_threshold",
]
