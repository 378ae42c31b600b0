"""Redraw a run's figures: the same as `autoencoder plot RUN_DIR`."""

import sys

from autoencoder.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["plot", *sys.argv[1:]]))
