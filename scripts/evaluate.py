"""Evaluate a run: the same as `autoencoder evaluate RUN_DIR [--split test|val]`."""

import sys

from autoencoder.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["evaluate", *sys.argv[1:]]))
