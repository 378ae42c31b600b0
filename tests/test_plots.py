"""autoencoder.plots: a finished run's figures redrawn, without touching the caller's pyplot."""

from __future__ import annotations

import shutil

import pytest
from conftest import cli, tiny
from PIL import Image

FIGURES = ["reconstructions.png", "loss.png", "worst.png", "error_by_class.png"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from autoencoder.pipeline import train_run

    return train_run(tiny(tmp_path_factory.mktemp("plots"), "train.epochs=2"))[0]


def test_plot_redraws_every_figure_and_prints_their_paths(run, tmp_path):
    copy = shutil.copytree(run, tmp_path / "copy")
    shutil.rmtree(copy / "figures")
    result = cli("plot", copy)
    assert result.returncode == 0, result.stderr[-3000:]
    printed = result.stdout.splitlines()
    assert sorted(printed) == sorted(str(copy / "figures" / name) for name in FIGURES)
    for name in FIGURES:
        with Image.open(copy / "figures" / name) as image:
            width, height = image.size
        # Drawn at 120 dots an inch: every figure at least 4 inches across, 2.5 high.
        assert width >= 480 and height >= 300, (name, image.size)
    # The same figures the run drew when it finished: sizes in pixels agree.
    for name in FIGURES:
        with Image.open(run / "figures" / name) as a, Image.open(copy / "figures" / name) as b:
            assert a.size == b.size, name


def test_plotting_leaves_pyplots_backend_and_figures_alone(run):
    import matplotlib

    before = matplotlib.get_backend()
    matplotlib.use("pdf")  # a notebook's inline backend, say: not for the tool to change
    try:
        import matplotlib.pyplot as plt

        from autoencoder.api import load_run

        open_before = plt.get_fignums()
        assert sorted(p.name for p in load_run(run).plot()) == sorted(FIGURES)
        assert matplotlib.get_backend() == "pdf"
        assert plt.get_fignums() == open_before  # no figure left in pyplot's list
    finally:
        matplotlib.use(before)
