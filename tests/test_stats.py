"""Tests for jaxrl_policy.stats (IQM, bootstrap CIs, probability of improvement)."""

import math
import time

import numpy as np
import pytest

from jaxrl_policy.stats import aggregate, bootstrap_ci, iqm, probability_of_improvement


def _trim_mean_ref(values):
    """Hand-rolled scipy.stats.trim_mean(values, 0.25), pure Python."""
    s = sorted(float(v) for v in values)
    n = len(s)
    cut = int(0.25 * n)
    kept = s[cut : n - cut]
    return sum(kept) / len(kept)


# ---------------------------------------------------------------- iqm


def test_iqm_hand_cases():
    # n=8: drop 2 from each end -> [3, 4, 5, 6] -> 4.5 (the outlier 100 is ignored)
    assert iqm([100, 2, 3, 4, 5, 6, 7, 1]) == pytest.approx(4.5)
    assert iqm(np.arange(1, 9)) == pytest.approx(4.5)
    # n=5: drop 1 from each end -> [2, 3, 4]
    assert iqm([5, 1, 4, 2, 3]) == pytest.approx(3.0)
    # n=7: drop 1 from each end -> [0, 1, 2, 3, 4]
    assert iqm([10, 0, 1, 2, 3, 4, -10]) == pytest.approx(2.0)
    # n=3: nothing dropped -> plain mean
    assert iqm([1, 2, 9]) == pytest.approx(4.0)
    # n=1
    assert iqm([7.5]) == pytest.approx(7.5)
    # n=4: drop 1 each end -> [2, 3]
    assert iqm([1, 2, 3, 50]) == pytest.approx(2.5)


@pytest.mark.parametrize("n", list(range(1, 13)))
def test_iqm_matches_trim_mean(n):
    rng = np.random.default_rng(n)
    x = rng.standard_cauchy(n) * 10  # heavy tails: trimming matters
    assert iqm(x) == pytest.approx(_trim_mean_ref(x), rel=1e-12, abs=1e-12)
    assert isinstance(iqm(x), float)


def test_iqm_axis_vectorised():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 9))
    out = iqm(x, axis=1)
    assert out.shape == (5,)
    np.testing.assert_allclose(out, [_trim_mean_ref(r) for r in x])


def test_iqm_empty_raises():
    with pytest.raises(ValueError):
        iqm([])


# ---------------------------------------------------------------- bootstrap


def test_bootstrap_matches_reference_loop():
    x = np.array([3.0, -1.0, 7.0, 2.5, 10.0, 0.0, 4.0, 6.0])
    reps, seed = 300, 7
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(reps, x.size))
    stats = [_trim_mean_ref(x[i]) for i in idx]
    expected = np.percentile(stats, [2.5, 97.5])
    low, high = bootstrap_ci(x, reps=reps, seed=seed)
    assert (low, high) == pytest.approx(tuple(expected))


def test_ci_contains_point_estimate_and_shrinks_with_n():
    rng = np.random.default_rng(1)
    widths = []
    for n in (8, 64, 512):
        x = rng.normal(loc=5.0, scale=2.0, size=n)
        low, high = bootstrap_ci(x)
        assert low <= iqm(x) <= high
        assert low < high
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2]
    assert widths[2] < 0.5 * widths[0]


def test_bootstrap_deterministic_for_seed():
    x = np.random.default_rng(2).normal(size=8)
    assert bootstrap_ci(x, seed=3) == bootstrap_ci(x, seed=3)
    assert bootstrap_ci(x, seed=3) != bootstrap_ci(x, seed=4)


def test_lower_level_gives_narrower_ci():
    x = np.random.default_rng(3).normal(size=16)
    lo50, hi50 = bootstrap_ci(x, level=0.5)
    lo95, hi95 = bootstrap_ci(x, level=0.95)
    assert lo95 <= lo50 and hi50 <= hi95
    assert hi50 - lo50 < hi95 - lo95


def test_constant_input_zero_width():
    assert bootstrap_ci(np.full(8, 3.25)) == (3.25, 3.25)
    assert bootstrap_ci(np.full((5, 3), -1.0)) == (-1.0, -1.0)


def test_stratified_bootstrap_2d():
    # Task 0 always scores 0, task 1 always 100. Stratified resampling keeps
    # 4 runs per task, so every replicate is [0]*4 + [100]*4 -> IQM 50 exactly.
    x = np.stack([np.zeros(4), np.full(4, 100.0)], axis=1)  # [S=4, T=2]
    assert bootstrap_ci(x) == (50.0, 50.0)
    # An unstratified bootstrap of the pooled scores would not be degenerate.
    low, high = bootstrap_ci(x.reshape(-1))
    assert low < 50.0 < high


def test_stratified_single_column_equals_1d():
    x = np.random.default_rng(4).normal(size=8)
    assert bootstrap_ci(x[:, None], seed=5) == bootstrap_ci(x, seed=5)


def test_stratified_bootstrap_matches_reference():
    rng0 = np.random.default_rng(5)
    x = rng0.normal(size=(6, 3))
    reps, seed = 200, 11
    rng = np.random.default_rng(seed)
    cols = [x[rng.integers(0, 6, size=(reps, 6)), j] for j in range(3)]
    samples = np.concatenate(cols, axis=1)
    expected = np.percentile([_trim_mean_ref(r) for r in samples], [2.5, 97.5])
    assert bootstrap_ci(x, reps=reps, seed=seed) == pytest.approx(tuple(expected))


def test_custom_statistics_vectorised_and_loop_agree():
    x = np.random.default_rng(6).normal(size=10)
    vec = bootstrap_ci(x, statistic=np.mean, reps=500, seed=1)
    loop = bootstrap_ci(x, statistic=lambda a: float(np.mean(a)), reps=500, seed=1)
    assert vec == pytest.approx(loop)
    med = bootstrap_ci(x, statistic=np.median, reps=500, seed=1)
    assert med[0] <= np.median(x) <= med[1]


def test_bootstrap_fast():
    x = np.random.default_rng(7).normal(size=8)
    t0 = time.perf_counter()
    bootstrap_ci(x, reps=2000)
    bootstrap_ci(np.random.default_rng(8).normal(size=(8, 5)), reps=2000)
    assert time.perf_counter() - t0 < 1.0


def test_bootstrap_bad_args():
    with pytest.raises(ValueError):
        bootstrap_ci([1.0, 2.0], level=1.5)
    with pytest.raises(ValueError):
        bootstrap_ci(np.zeros((2, 2, 2)))


# ---------------------------------------------------------------- probability of improvement


def test_probability_of_improvement_hand_cases():
    assert probability_of_improvement([3, 4], [1, 2]) == 1.0
    assert probability_of_improvement([1, 2], [3, 4]) == 0.0
    # pairs: (1,2) lose, (1,3) lose, (2,2) tie, (2,3) lose -> 0.5 / 4
    assert probability_of_improvement([1, 2], [2, 3]) == pytest.approx(0.125)
    # 3 wins + 3 ties of 9 pairs -> (3 + 1.5) / 9 = 0.5
    assert probability_of_improvement([1, 2, 3], [2, 2, 2]) == pytest.approx(0.5)
    # all ties count half
    assert probability_of_improvement([5, 5], [5, 5, 5]) == 0.5
    # 2 wins of 3 pairs
    assert probability_of_improvement([2], [1, 1, 3]) == pytest.approx(2 / 3)


def test_probability_of_improvement_complementary():
    rng = np.random.default_rng(9)
    x = rng.integers(0, 5, size=7).astype(float)  # ties likely
    y = rng.integers(0, 5, size=11).astype(float)
    assert probability_of_improvement(x, y) + probability_of_improvement(y, x) == pytest.approx(1.0)


def test_probability_of_improvement_nan():
    assert probability_of_improvement([np.nan, 3.0], [1.0]) == 1.0
    assert math.isnan(probability_of_improvement([np.nan], [1.0]))


# ---------------------------------------------------------------- aggregate


def test_aggregate_drops_nan():
    out = aggregate([1.0, np.nan, 3.0, 5.0])
    assert out["n"] == 3
    assert out["mean"] == pytest.approx(3.0)
    assert out["median"] == pytest.approx(3.0)
    assert out["iqm"] == pytest.approx(3.0)
    assert out["std"] == pytest.approx(2.0)  # ddof=1
    low, high = out["iqm_ci"]
    assert 1.0 <= low <= 3.0 <= high <= 5.0
    assert not any(math.isnan(v) for v in (out["mean"], low, high))


def test_aggregate_all_nan():
    out = aggregate([np.nan, np.nan])
    assert out["n"] == 0
    assert all(math.isnan(out[k]) for k in ("mean", "median", "iqm", "std"))
    assert all(math.isnan(v) for v in out["iqm_ci"])
    assert aggregate([])["n"] == 0


def test_aggregate_single_and_deterministic():
    out = aggregate([4.0])
    assert out["n"] == 1 and out["std"] == 0.0 and out["iqm_ci"] == [4.0, 4.0]
    x = np.random.default_rng(10).normal(size=8)
    assert aggregate(x, seed=1) == aggregate(x, seed=1)
    assert aggregate(x)["iqm_ci"] == list(bootstrap_ci(x))


def test_aggregate_2d_ragged_nan():
    x = np.array([[0.0, 100.0], [0.0, 100.0], [np.nan, 100.0], [0.0, np.nan]])
    out = aggregate(x)
    assert out["n"] == 6
    # every stratified replicate is [0]*3 + [100]*3 -> IQM of the middle 4 = 50
    assert out["iqm_ci"] == [50.0, 50.0]
    assert out["iqm"] == pytest.approx(50.0)
