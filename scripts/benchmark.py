"""Benchmark: the same as `autoencoder bench CONFIG [--set k=v] [--epochs N] [--warmup N]`."""

import sys

from autoencoder.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", *sys.argv[1:]]))
