"""Train from a config: the same as `autoencoder train CONFIG [--set k=v] [--resume DIR] [--quiet]`."""

import sys

from autoencoder.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["train", *sys.argv[1:]]))
