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


def test_characters_the_font_lacks_are_one_line_not_a_warning_each(tmp_path, caplog, recwarn):
    from autoencoder.plots.figure import _no_glyphs, subplots, write

    _no_glyphs.cache_clear()  # said once a process: not by another test first
    for name in ("a.png", "b.png"):  # two figures, as a run draws several
        fig, ax = subplots()
        ax.set_title("犬 and 猫")
        ax.set_xlabel("epoch")
        write(fig, tmp_path / name)
        assert (tmp_path / name).stat().st_size > 0
    lines = [r.getMessage() for r in caplog.records if "has no" in r.getMessage()]
    assert lines == [
        "figures: the font (DejaVu Sans) has no 犬 猫, which show as empty boxes; install a font "
        "that has them (e.g. apt-get install fonts-noto-cjk) and name it as a fallback in a file "
        "matplotlibrc in matplotlib.get_configdir(): font.family: DejaVu Sans, Noto Sans CJK JP"
    ]
    assert [str(w.message) for w in recwarn if "Glyph" in str(w.message)] == []


@pytest.mark.parametrize("noisy", [False, True])
def test_compare_names_the_clean_row_beside_noisy_inputs(tmp_path, monkeypatch, noisy):
    import numpy as np

    from autoencoder.plots import compare

    made = []
    subplots = compare.subplots
    monkeypatch.setattr(
        compare, "subplots", lambda *a, **k: made.append(subplots(*a, **k)) or made[-1]
    )
    x = np.random.default_rng(0).random((3, 8, 8, 1))
    inputs = [("noisy input (gaussian 0.3)", x * 0.5)] if noisy else []
    compare.plot_compare_reconstructions(tmp_path / "c.png", x, inputs, [("run a", x * 0.9)])
    fig, axes = made[0]
    labels = [row[0].get_ylabel().split("\n")[0] for row in axes]
    expected = (
        ["clean test images", "noisy input (gaussian", "run a"] if noisy else ["input", "run a"]
    )
    assert labels == expected
    assert ("against the clean image" in fig.get_suptitle()) == noisy


def test_compare_curves_of_one_epoch_tick_whole_epochs(tmp_path, monkeypatch):
    from autoencoder.plots import compare

    made = []
    subplots = compare.subplots
    monkeypatch.setattr(
        compare, "subplots", lambda *a, **k: made.append(subplots(*a, **k)) or made[-1]
    )
    histories = {
        name: [{"epoch": 1, "val/loss": loss, "seconds": 2.0}]
        for name, loss in (("a", 0.6), ("b", 0.4))
    }
    compare.plot_compare_curves(tmp_path / "curves.png", histories, "val/loss")
    by_epoch = made[0][1][0]
    assert list(by_epoch.get_xticks()) == [1]


def test_long_class_names_wrap_to_the_width_they_are_given():
    from autoencoder.plots.figure import wrap_label

    # 1.15 inches at 9 points: 15 characters a line.
    assert wrap_label("airplane_long_name_here", 1.15, 9) == "airplane_long_\nname_here"
    assert wrap_label("T-shirt/top", 1.15, 9) == "T-shirt/top"
    assert wrap_label("Ankle boot", 1.15, 9) == "Ankle boot"
    long = wrap_label("supercalifragilisticexpialidocious_extra", 1.15, 9)
    assert long == "supercalifragil\nisticexpiali..."
    lines = wrap_label("bird_of_prey to cat_domestic", 0.95, 7, lines=4).split("\n")
    assert "".join(lines).replace(" ", "") == "bird_of_preytocat_domestic"
    assert max(map(len, lines)) <= int(0.95 * 72 / (0.6 * 7))


def test_log_axes_label_their_ticks_as_plain_numbers():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from autoencoder.plots.figure import log_axis, subplots

    fig, axes = subplots(1, 2)
    for ax, values in zip(axes, [(0.72, 0.39), (0.5, 0.00012)]):
        ax.plot([1, 2], values)
        log_axis(ax)
    FigureCanvasAgg(fig).draw()

    def labels(ax):
        ticks = ax.yaxis.get_majorticklabels() + ax.yaxis.get_minorticklabels()
        lo, hi = ax.get_ylim()
        return {t.get_text() for t in ticks if t.get_text() and lo <= t.get_position()[1] <= hi}

    assert {"0.4", "0.5", "0.6", "0.7"} <= labels(axes[0])  # within a decade: the minor ticks
    assert labels(axes[1]) == {"0.0001", "0.001", "0.01", "0.1"}


def test_log_ticks_over_a_narrow_range_take_the_digits_that_tell_them_apart():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from autoencoder.plots.figure import log_axis, subplots

    fig, ax = subplots()
    ax.plot([1, 2], [0.6902, 0.6881])
    log_axis(ax)
    FigureCanvasAgg(fig).draw()
    lo, hi = ax.get_ylim()
    ticks = ax.yaxis.get_majorticklabels() + ax.yaxis.get_minorticklabels()
    shown = [t.get_text() for t in ticks if t.get_text() and lo <= t.get_position()[1] <= hi]
    assert len(shown) >= 2 and len(set(shown)) == len(shown), shown


def drawn(monkeypatch, module):
    """The (fig, axes) each plot function of `module` makes, kept for the test to read."""
    made = []
    subplots = module.subplots
    monkeypatch.setattr(
        module, "subplots", lambda *a, **k: made.append(subplots(*a, **k)) or made[-1]
    )
    return made


def test_the_loss_figure_names_its_loss_and_times_a_short_run_in_seconds(tmp_path, monkeypatch):
    from autoencoder.plots import run as plots

    made = drawn(monkeypatch, plots)
    history = [
        {
            "epoch": 1,
            "train/loss": 0.66,
            "val/loss": 0.62,
            "val/mse": 0.2,
            "seconds": 3.6,
            "lr": 1e-3,
        },
        {
            "epoch": 2,
            "train/loss": 0.58,
            "val/loss": 0.49,
            "val/mse": 0.14,
            "seconds": 0.2,
            "lr": 1e-3,
        },
    ]
    plots.plot_loss(tmp_path / "loss.png", history, "BCE")
    plots.plot_loss(tmp_path / "long.png", [{**r, "seconds": 600} for r in history], "BCE")
    (_, short), (_, long) = made
    assert short[0].get_ylabel() == "BCE (log scale)"
    assert short[1].get_xlabel() == "training time (seconds)" and short[1].get_xlim()[0] == 0
    assert short[1].get_xlim()[1] == pytest.approx(3.8, abs=0.5)
    assert long[1].get_xlabel() == "training time (minutes)"
    assert long[1].get_xlim()[1] == pytest.approx(20, rel=0.1)


def test_a_split_smaller_than_the_worst_figure_is_said_to_be_shown_whole(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt
    import numpy as np

    from autoencoder.plots import run as plots

    titles = []
    monkeypatch.setattr(plt.Figure, "suptitle", lambda fig, text, **k: titles.append(text))
    x = np.random.default_rng(0).random((12, 8, 8, 1)).astype(np.float32)
    y = np.arange(12) % 3
    plots.plot_worst(tmp_path / "a.png", x[:5], y[:5], x[:5] * 0.9)
    plots.plot_worst(tmp_path / "b.png", x, y, x * 0.9)
    assert titles == [
        "The 5 test images, worst-reconstructed first",
        "The 8 worst-reconstructed test images",
    ]


def test_the_benchmark_bars_start_at_chance_and_say_when_classes_are_to_come(tmp_path, monkeypatch):
    from autoencoder.plots import anomaly

    made = drawn(monkeypatch, anomaly)
    rows = [
        {"class": k, "name": n, "auroc": a} for k, n, a in [(0, "Shirt", 0.803), (1, "Bag", 0.97)]
    ]
    anomaly.plot_benchmark(tmp_path / "a.png", rows, "fashion_mnist", classes=10)
    anomaly.plot_benchmark(tmp_path / "b.png", rows[:1] + [{**rows[1], "auroc": 0.45}], "mnist")
    (_, ax), (_, low) = made
    assert ax.get_ylim()[0] == 50  # 80.3 drawn as 30 of the 50 points above chance
    assert ax.get_title() == "One-class anomaly detection on Fashion-MNIST (2 of 10 classes so far)"
    assert low.get_ylim()[0] == pytest.approx(37) and low.get_title().endswith("on MNIST")


def test_a_denoisers_figures_name_the_noise_and_each_inputs_error(tmp_path, monkeypatch):
    import numpy as np

    from autoencoder.plots import run as plots

    made = drawn(monkeypatch, plots)
    rng = np.random.default_rng(0)
    x = rng.random((4, 8, 8, 1)).astype(np.float32)
    noisy = np.clip(x + rng.normal(0, 0.3, x.shape), 0, 1).astype(np.float32)
    noisy[3] = x[3]  # a blind model's input drawn at level 0
    y = np.arange(4)
    plots.plot_reconstructions(tmp_path / "r.png", x, y, x, noisy=noisy, noise="gaussian 0-0.7")
    plots.plot_worst(tmp_path / "w.png", x, y, x, noisy=noisy, noise="gaussian 0-0.7")
    plots.plot_reconstructions(tmp_path / "plain.png", x, y, x)
    (_, rows), (_, worst), (_, plain) = made
    labels = [row[0].get_ylabel() for row in rows]
    assert labels == ["original", "noisy input\n(gaussian 0-0.7)", "output"]
    assert [row[0].get_ylabel() for row in worst][:3] == labels
    errors = [float(ax.get_xlabel().split()[1]) for ax in rows[1]]
    assert errors[3] == 0 and min(errors[:3]) > 0.01
    assert [row[0].get_ylabel() for row in plain] == ["original", "reconstruction"]


def test_anomaly_extremes_write_every_score_to_the_same_decimals(tmp_path, monkeypatch):
    import numpy as np

    from autoencoder.plots import anomaly

    made = drawn(monkeypatch, anomaly)
    x = np.zeros((4, 8, 8, 1), np.float32)
    scores = np.array([4.36, 3.2, 0.1823, 0.216])
    flags = np.array([True, True, False, False])
    anomaly.plot_anomaly_extremes(
        tmp_path / "e.png", x, x, np.arange(4), scores, flags, None, "MSE"
    )
    ((_, axes),) = made
    shown = [axes[row, j].get_title().split("\n")[-1] for row in (0, 2) for j in range(2)]
    assert shown == ["4.360", "3.200", "0.182", "0.216"]


def test_one_test_image_is_counted_as_one(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt
    import numpy as np

    from autoencoder.evaluate import format_metrics
    from autoencoder.plots import run as plots

    titles = []
    monkeypatch.setattr(plt.Figure, "suptitle", lambda fig, text, **k: titles.append(text))
    x = np.full((1, 8, 8, 1), 0.5, np.float32)
    plots.plot_reconstructions(tmp_path / "a.png", x, np.zeros(1, int), x * 0 + 0.25)
    assert titles == ["Test images and their reconstructions (MSE: 0.0625)"]
    metrics = {"val/images": 1, "val/mse": 0.0625, "val/sse_per_image": 4.0, "val/psnr": 12.04}
    metrics.update({"val/mae": 0.25, "val/ssim": 0.5, "val/bce": 0.7, "val/bce_floor": 0.6})
    metrics["val/mse_by_class"] = {"a": 0.0625}
    assert format_metrics(metrics, "val").splitlines()[0] == "val split, 1 image"


def test_anomaly_whiskers_reach_the_1st_and_99th_percentile_of_a_small_class(tmp_path, monkeypatch):
    import numpy as np

    from autoencoder.plots import anomaly

    made = drawn(monkeypatch, anomaly)
    scores = np.array([0.0637, 0.0924, 0.1122, 0.1605, 0.2027, 0.1321, 0.1343, 0.1411])
    labels = np.array([0, 0, 0, 0, 0, 1, 1, 1])
    anomaly.plot_anomaly_scores(
        tmp_path / "s.png", scores, labels, labels == 1, 0.22, ("china", "flower"), "MSE", "china"
    )
    ((_, (_, box)),) = made
    ends = sorted(line.get_ydata()[1] for line in box.lines if line.get_linestyle() == "-")
    low, high = np.percentile(scores[:5], [1, 99])
    assert ends[0] == pytest.approx(low) and max(ends) == pytest.approx(high)


def test_interpolation_rows_label_their_classes_at_one_font_size(tmp_path, monkeypatch):
    import numpy as np

    from autoencoder.plots import vae

    made = []
    subplots = vae.subplots
    monkeypatch.setattr(vae, "subplots", lambda *a, **k: made.append(subplots(*a, **k)) or made[-1])
    names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal"]
    x = np.random.default_rng(0).random((3, 8, 8, 1))
    steps = np.random.default_rng(1).random((3, 4, 8, 8, 1))
    vae.plot_interpolations(tmp_path / "i.png", x, steps, x, [(0, 1), (4, 5), (2, 3)], names)
    axes = made[0][1]
    labels = [row[0].yaxis.label for row in axes]
    assert [label.get_text().replace("\n", " ") for label in labels] == [
        "T-shirt/top to Trouser",
        "Coat to Sandal",
        "Pullover to Dress",
    ]
    assert {label.get_fontsize() for label in labels} == {8.0}
