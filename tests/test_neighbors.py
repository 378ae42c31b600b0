"""The knn anomaly score: distances to the normal codes, saved with the run and read back."""

import numpy as np
import pytest

from autoencoder import neighbors
from autoencoder.errors import UserError
from autoencoder.neighbors import CodeNeighbors, flat_codes


def test_a_distance_is_the_mean_over_the_nearest_standardised_codes():
    # Dimension 0 spreads 4 times wider than dimension 1: standardised, both count alike.
    codes = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 2.0], [8.0, 2.0]], np.float32)
    reference = CodeNeighbors.fit(codes, neighbors=2)
    assert reference.scale == pytest.approx([4.0, 1.0])
    # (4, 1) is the centre: one standard unit from every corner on each axis, sqrt(2) away.
    assert reference.distances(np.array([[4.0, 1.0]])) == pytest.approx([np.sqrt(2)])
    # A corner itself: 0 to itself, 2 to the next corner; the mean of the two nearest is 1.
    assert reference.distances(codes[:1]) == pytest.approx([1.0])
    far = reference.distances(np.array([[4.0, 21.0]]))
    assert far[0] == pytest.approx(np.hypot(1.0, 19.0))  # 19 units above the upper corners


def test_more_neighbors_than_codes_takes_them_all_and_a_constant_value_divides_by_no_zero():
    codes = np.array([[1.0, 5.0], [3.0, 5.0]], np.float32)
    reference = CodeNeighbors.fit(codes, neighbors=5)
    # Dimension 1 never moved: its scale is a tenth of the varying one's spread (1).
    assert reference.scale == pytest.approx([1.0, 0.1])
    got = reference.distances(np.array([[2.0, 5.0], [2.0, 5.001], [2.0, 7.0]]))
    assert np.isfinite(got).all() and got[0] == pytest.approx(1.0)
    assert got[1] == pytest.approx(np.hypot(1.0, 0.01), rel=1e-3)  # a rounding error's move
    assert got[2] == pytest.approx(np.hypot(1.0, 20.0))  # a real move counts: 20 spreads out
    # A unit that barely varies (one image of 1,000 moved it) is held to the floor too.
    rare = np.zeros((1000, 3), np.float32)
    rare[:, :2] = np.random.default_rng(0).normal(size=(1000, 2))
    rare[0, 2] = 0.01
    assert CodeNeighbors.fit(rare, 3).scale[2] == pytest.approx(0.1, rel=0.05)
    dead = CodeNeighbors.fit(np.ones((3, 2), np.float32), neighbors=1)
    assert dead.scale == pytest.approx([1e-6, 1e-6])  # nothing varies: no spread to share


def test_at_most_max_codes_are_kept_drawn_with_the_seed(monkeypatch):
    monkeypatch.setattr(neighbors, "MAX_CODES", 10)
    codes = np.arange(60, dtype=np.float32).reshape(30, 2)
    kept = [CodeNeighbors.fit(codes, 3, seed=s).codes for s in (0, 0, 1)]
    assert kept[0].shape == (10, 2)
    assert np.array_equal(kept[0], kept[1]) and not np.array_equal(kept[0], kept[2])


def test_flat_codes_takes_a_vaes_mean_and_flattens_a_feature_map():
    mean, log_var = np.ones((3, 4)), np.zeros((3, 4))
    assert flat_codes([mean, log_var]).tolist() == mean.tolist()
    assert flat_codes(np.zeros((3, 7, 7, 2))).shape == (3, 98)


def test_saved_codes_load_back_and_missing_or_corrupt_ones_are_one_line(tmp_path):
    codes = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    reference = CodeNeighbors.fit(codes, neighbors=3)
    path = reference.save(tmp_path)
    assert path.name == "anomaly_codes.npz" and not list(tmp_path.glob(".tmp-*"))
    loaded = CodeNeighbors.load(tmp_path)
    assert loaded.neighbors == 3
    probe = codes[:5] + 0.3
    assert np.array_equal(loaded.distances(probe), reference.distances(probe))
    with pytest.raises(UserError, match=r"anomaly_codes.npz: missing; .*run `autoencoder anomaly`"):
        CodeNeighbors.load(tmp_path / "elsewhere")
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(UserError, match=r"anomaly_codes.npz: corrupt or truncated") as caught:
        CodeNeighbors.load(tmp_path)
    assert "\n" not in str(caught.value)
