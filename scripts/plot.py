"""Redraw a run's figures: the same as `autoencoder plot RUN_DIR`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

from autoencoder.cli import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(["plot", *sys.argv[1:]]))
