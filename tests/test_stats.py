"""Tests for jaxrl_policy.results.stats, .matrices and .efficiency (IQM, bootstrap CIs, probability of
improvement, profiles, sample efficiency) and .scores (normalisation).

rliable 1.2 (the reference library of Agarwal et al. 2021) is the oracle where it has the
statistic; those tests skip if it is not installed (it is in the ``dev`` extra).

Everything here is float64 numpy against float64 numpy (or closed forms), so the default
``pytest.approx`` / ``assert_allclose`` tolerances stand; the float32 error bounds of
tests/tolerance.py are for the JAX computations elsewhere.
"""

import functools
import math
import time

import numpy as np
import pytest

from jaxrl_policy.results import efficiency as ef
from jaxrl_policy.results import matrices as mx
from jaxrl_policy.results import scores as scores_mod
from jaxrl_policy.results import stats as st
from jaxrl_policy.results.stats import aggregate, bootstrap_ci, iqm, probability_of_improvement


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


def test_iqm_estimate_keeps_every_run_and_estimates_on_the_finite_ones():
    x = [0.0, 10.0, np.nan, 11.0, 12.0, 100.0]
    e = st.iqm_estimate(x)
    assert e["iqm"] == pytest.approx(11.0) and e["n"] == 5  # IQM of 0, 10, 11, 12, 100: drops the tails
    assert e["ci"] == aggregate(x)["iqm_ci"]
    assert e["per_seed"][:2] == [0.0, 10.0] and math.isnan(e["per_seed"][2]) and len(e["per_seed"]) == 6


def test_aggregate_2d_ragged_nan():
    x = np.array([[0.0, 100.0], [0.0, 100.0], [np.nan, 100.0], [0.0, np.nan]])
    out = aggregate(x)
    assert out["n"] == 6
    # every stratified replicate is [0]*3 + [100]*3 -> IQM of the middle 4 = 50
    assert out["iqm_ci"] == [50.0, 50.0]
    assert out["iqm"] == pytest.approx(50.0)


# ================================================================ rliable oracle helpers


@pytest.fixture
def rly():
    """rliable's (metrics, library) modules; np.random's global state restored afterwards.

    rliable's StratifiedBootstrap draws with the global ``np.random.choice``, so the tests
    seed it and can regenerate its exact index stream with ``RandomState(seed).randint``.
    """
    pytest.importorskip("scipy.stats")
    metrics = pytest.importorskip("rliable.metrics")
    library = pytest.importorskip("rliable.library")
    state = np.random.get_state()
    yield metrics, library
    np.random.set_state(state)


def _skewed_matrix(seed, s, t):
    """Skewed scores with a run effect shared across tasks and task offsets.

    Run effects make whole-row resampling (no stratification) visibly wider, task
    offsets make pooled resampling (ignoring tasks) visibly different, and the skew
    separates the percentile interval from the basic / normal ones.
    """
    g = np.random.default_rng(seed)
    run = g.normal(size=(s, 1))
    task = np.linspace(0.0, 3.0, t)[None, :]
    return np.exp(0.8 * g.normal(size=(s, t)) + run + 0.3 * task)


GAMMA = 5.0  # optimality-gap target for the unnormalised test matrices
OURS = {
    "mean": mx.mean,
    "median": mx.median,
    "iqm": st.iqm,
    "optimality_gap": functools.partial(mx.optimality_gap, gamma=GAMMA),
}
NAMES = list(OURS)


def _rliable_fn(metrics):
    return lambda s: np.array([
        metrics.aggregate_mean(s),
        metrics.aggregate_median(s),
        metrics.aggregate_iqm(s),
        metrics.aggregate_optimality_gap(s, GAMMA),
    ])


# ================================================================ point estimates [S, T]


@pytest.mark.parametrize("shape", [(1, 1), (3, 1), (1, 4), (5, 4), (7, 3), (10, 5), (4, 6), (2, 9), (13, 2)])
def test_point_estimates_match_rliable(rly, shape):
    metrics, _ = rly
    x = np.random.default_rng(sum(shape)).standard_cauchy(shape)  # heavy tails: trimming matters
    assert mx.mean(x) == pytest.approx(metrics.aggregate_mean(x), rel=1e-12, abs=1e-12)
    assert mx.median(x) == pytest.approx(metrics.aggregate_median(x), rel=1e-12, abs=1e-12)
    assert st.iqm(x) == pytest.approx(metrics.aggregate_iqm(x), rel=1e-12, abs=1e-12)
    for g in (1.0, 0.5, 3.0):
        assert mx.optimality_gap(x, g) == pytest.approx(metrics.aggregate_optimality_gap(x, g), rel=1e-12, abs=1e-12)


def test_iqm_of_matrix_flattens_like_rliable(rly):
    metrics, _ = rly
    from scipy.stats import trim_mean

    x = _skewed_matrix(3, 7, 3)
    flat = trim_mean(x, 0.25, axis=None)
    assert st.iqm(x) == pytest.approx(flat, rel=1e-12) == pytest.approx(metrics.aggregate_iqm(x), rel=1e-12)
    # ...which is neither the mean of per-task IQMs nor trim_mean's default axis=0:
    per_task = np.mean([_trim_mean_ref(x[:, j]) for j in range(3)])
    assert abs(st.iqm(x) - per_task) > 1e-3
    assert abs(st.iqm(x) - np.mean(trim_mean(x, 0.25))) > 1e-3
    # interval_estimates' vectorised IQM is the same flattened statistic
    assert mx.interval_estimates({"a": x}, {"iqm": st.iqm}, reps=1)["a"]["iqm"].point == pytest.approx(flat)


def test_point_estimate_hand_cases():
    x = np.array([[0.0, 10.0, 1.0, 2.0], [2.0, 20.0, 3.0, 6.0]])  # task means 1, 15, 2, 4
    assert mx.mean(x) == pytest.approx(22 / 4)
    assert mx.median(x) == pytest.approx(3.0)  # median of the task means (2 + 4) / 2 ...
    assert np.median(x) == pytest.approx(2.5)  # ... not of the 8 scores
    w = np.array([[0.0, 0.0], [0.0, 0.0], [9.0, 1.0]])  # task means 3, 1/3
    assert mx.median(w) == pytest.approx(5 / 3) and np.median(w) == 0.0
    assert mx.median(np.array([[0.0], [1.0], [8.0]])) == pytest.approx(3.0)  # T = 1: the task's mean
    # optimality gap clips above gamma: [0.5, 2.0] -> min(., 1) = [0.5, 1.0] -> 1 - 0.75
    assert mx.optimality_gap([[0.5, 2.0]]) == pytest.approx(0.25)
    assert mx.optimality_gap([[3.0, 2.0]]) == 0.0
    assert mx.optimality_gap([[0.0, 2.0]], gamma=2.0) == pytest.approx(1.0)
    assert mx.optimality_gap([[-1.0, 0.0]]) == pytest.approx(1.5)  # no clipping from below


# ================================================================ interval_estimates


def test_interval_estimates_reproduce_rliable_exactly_on_its_draws(rly):
    """Same resampling indices as rliable -> identical CIs (stats + percentile step)."""
    metrics, library = rly
    for seed, shape in ((7, (5, 3)), (8, (6, 4)), (9, (3, 7))):
        x = _skewed_matrix(seed, *shape)
        reps = 400
        np.random.seed(seed)
        p_rl, ci_rl = library.get_interval_estimates({"a": x}, _rliable_fn(metrics), reps=reps)
        idx = np.random.RandomState(seed).randint(0, shape[0], size=(reps, *shape))
        repl = mx._statistics_of_resamples(x, idx, OURS)
        for k, name in enumerate(NAMES):
            low, high = st._percentile_interval(repl[name], 0.95)
            np.testing.assert_allclose([low, high], ci_rl["a"][:, k], rtol=1e-10, atol=1e-12)
        est = mx.interval_estimates({"a": x}, OURS, reps=10)["a"]
        np.testing.assert_allclose([est[n].point for n in NAMES], p_rl["a"], rtol=1e-12)


@pytest.fixture(scope="module")
def rliable_cis_large():
    """rliable's 95% percentile CIs (10k-20k reps) on two skewed matrices, computed once."""
    pytest.importorskip("scipy.stats")
    metrics = pytest.importorskip("rliable.metrics")
    library = pytest.importorskip("rliable.library")
    state = np.random.get_state()
    out = {}
    try:
        for seed, shape, reps in ((0, (6, 4), 20_000), (2, (8, 3), 10_000)):
            x = _skewed_matrix(seed, *shape)
            np.random.seed(1000 + seed)
            _, ci = library.get_interval_estimates({"a": x}, _rliable_fn(metrics), reps=reps)
            out[shape] = (x, ci["a"])
    finally:
        np.random.set_state(state)
    return out


# Tolerance for CI endpoints, as a fraction of the CI width. Both sides use independent
# random numbers; calibrated offline (5 rliable seeds x 10k reps, 5 of ours x 50k): the
# Monte-Carlo s.d. of an endpoint difference is <= 0.008 width, so 0.04 is ~5 s.d.
# The faults this must catch move some endpoint by >= 0.12 width on these matrices
# (max over statistics and endpoints, matrix (6, 4) / (8, 3): whole-row resampling
# 0.13 / 0.52, pooled resampling ignoring tasks 0.54 / 0.18, basic interval 0.30 / 0.34,
# normal approximation 0.15 / 0.18); test_wrong_methods_are_outside_tolerance checks
# that each stays > 2 * CI_TOL away.
CI_TOL = 0.04


def test_interval_estimates_match_rliable_large_reps(rliable_cis_large):
    for shape, (x, ci_rl) in rliable_cis_large.items():
        est = mx.interval_estimates({"a": x}, OURS, reps=50_000, seed=3)["a"]
        ours = np.array([[est[n].low for n in NAMES], [est[n].high for n in NAMES]])
        width = ci_rl[1] - ci_rl[0]
        dev = np.abs(ours - ci_rl) / width
        assert dev.max() < CI_TOL, f"{shape}: endpoint deviation / width =\n{dev}"


def test_wrong_methods_are_outside_tolerance(rliable_cis_large):
    """The comparison above is discriminative: each wrong method misses rliable by > 2x CI_TOL."""
    for shape, (x, ci_rl) in rliable_cis_large.items():
        s, t = x.shape
        width = ci_rl[1] - ci_rl[0]
        g = np.random.default_rng(5)
        reps = 50_000
        strat = mx._statistics_of_resamples(x, g.integers(0, s, size=(reps, s, t)), OURS)
        rows = mx._statistics_of_resamples(x, np.repeat(g.integers(0, s, size=(reps, s, 1)), t, axis=2), OURS)
        pooled_b = x.reshape(-1)[g.integers(0, s * t, size=(reps, s, t))]
        pooled = {n: mx._apply_matrix_statistic(n, f, pooled_b) for n, f in OURS.items()}
        pts = np.array([OURS[n](x) for n in NAMES])
        pct = np.array([np.percentile(strat[n], [2.5, 97.5]) for n in NAMES]).T
        sd = np.array([strat[n].std() for n in NAMES])
        wrong = {
            "basic": np.array([2 * pts - pct[1], 2 * pts - pct[0]]),
            "normal": np.array([pts - 1.96 * sd, pts + 1.96 * sd]),
            "rows": np.array([np.percentile(rows[n], [2.5, 97.5]) for n in NAMES]).T,
            "pooled": np.array([np.percentile(pooled[n], [2.5, 97.5]) for n in NAMES]).T,
        }
        assert (np.abs(pct - ci_rl) / width).max() < CI_TOL  # the right method is inside
        for name, ci in wrong.items():
            assert (np.abs(ci - ci_rl) / width).max() > 2 * CI_TOL, f"{shape}: {name} is indistinguishable"


def test_interval_estimates_percentile_not_basic_or_normal_hand_case():
    # One task, 10 runs: nine 0s and one 10. A resample's mean is k, k ~ Binomial(10, 0.1):
    # P(k=0) = 0.349 > 2.5%, P(k<=2) = 0.930 < 97.5% < P(k<=3) = 0.987, so the percentile
    # interval is exactly [0, 3]. Basic would give 2*1 - [3, 0] = [-1, 2]; normal 1 -+ 1.96*0.95.
    x = np.array([0.0] * 9 + [10.0])[:, None]
    est = mx.interval_estimates({"a": x}, {"mean": mx.mean, "median": mx.median}, reps=20_000, seed=1)["a"]
    assert est["mean"] == (1.0, 0.0, 3.0)
    assert est["median"] == (1.0, 0.0, 3.0)  # T=1: median of task means = the mean


def test_interval_estimates_stratified_within_tasks_hand_cases():
    # (1) Task 0 always 0, task 1 always 100: stratified resamples keep 3 runs per task,
    # so every statistic is constant -> zero-width CIs. Resampling the pooled 6 scores
    # (ignoring tasks) would not be.
    x = np.stack([np.zeros(3), np.full(3, 100.0)], axis=1)
    est = mx.interval_estimates({"a": x}, reps=2000)["a"]
    assert est["mean"] == (50.0, 50.0, 50.0)
    assert est["median"] == (50.0, 50.0, 50.0)
    assert est["iqm"] == (50.0, 50.0, 50.0)
    assert est["optimality_gap"] == (0.5, 0.5, 0.5)
    # (2) Anti-correlated runs: rows (0, 1) and (1, 0) both average 0.5, so resampling whole
    # rows gives a zero-width CI for the mean. Stratified: the mean is (k0 + k1) / 4 with
    # k_t ~ Binomial(2, 1/2) independent per task; P(mean = 0) = 1/16 > 2.5% -> CI [0, 1].
    y = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert mx.interval_estimates({"a": y}, {"mean": mx.mean}, reps=20_000, seed=2)["a"]["mean"] == (0.5, 0.0, 1.0)


def test_interval_estimates_structure_seed_and_custom_statistics():
    x = _skewed_matrix(4, 5, 3)
    y = _skewed_matrix(5, 7, 3)
    out = mx.interval_estimates({"x": x, "y": y}, reps=500, seed=1)
    assert set(out) == {"x", "y"} and set(out["x"]) == {"mean", "median", "iqm", "optimality_gap"}
    e = out["x"]["iqm"]
    assert isinstance(e, st.Estimate) and isinstance(e.point, float) and e.low <= e.point <= e.high
    # deterministic; one algorithm's result does not depend on the others in the dict
    assert mx.interval_estimates({"x": x}, reps=500, seed=1)["x"] == out["x"]
    assert mx.interval_estimates({"x": x}, reps=500, seed=2)["x"] != out["x"]
    # an arbitrary callable (looped per resample) agrees with the vectorised built-in
    loop = mx.interval_estimates({"x": x}, {"m": lambda m: float(np.mean(m))}, reps=300, seed=4)["x"]["m"]
    vec = mx.interval_estimates({"x": x}, {"m": mx.mean}, reps=300, seed=4)["x"]["m"]
    assert loop == pytest.approx(vec)
    # vector-valued statistics give [K] arrays
    vv = mx.interval_estimates({"x": x}, {"q": lambda m: np.quantile(m, [0.25, 0.75])}, reps=200)["x"]["q"]
    assert vv.point.shape == vv.low.shape == vv.high.shape == (2,)
    assert (vv.low <= vv.high).all()


def test_interval_estimates_fast():
    x = _skewed_matrix(6, 10, 5)
    t0 = time.perf_counter()
    mx.interval_estimates({"a": x, "b": x + 1}, reps=50_000)
    assert time.perf_counter() - t0 < 5.0


# ================================================================ probability of improvement, T tasks


def test_average_poi_matches_rliable(rly):
    metrics, _ = rly
    g = np.random.default_rng(11)
    for sx, sy, t in ((5, 5, 3), (4, 7, 2), (1, 3, 1), (6, 2, 5)):
        x = g.integers(0, 4, size=(sx, t)).astype(float)  # ties likely
        y = g.integers(0, 4, size=(sy, t)).astype(float)
        assert mx.average_probability_of_improvement(x, y) == pytest.approx(
            metrics.probability_of_improvement(x, y), rel=1e-12)
    x = g.normal(size=(5, 3))
    assert mx.average_probability_of_improvement(x, x) == 0.5
    assert mx.average_probability_of_improvement(x, x) == metrics.probability_of_improvement(x, x)


def test_average_poi_hand_cases_and_one_task():
    # task 0: x always wins; task 1: 1 win + 1 tie of 4 pairs... -> (1 + 1.5/4) / 2
    x = np.array([[5.0, 1.0], [6.0, 2.0]])
    y = np.array([[0.0, 2.0], [1.0, 3.0]])
    # task 1 pairs: (1,2)L (1,3)L (2,2)T (2,3)L -> 0.5/4
    assert mx.average_probability_of_improvement(x, y) == pytest.approx((1.0 + 0.125) / 2)
    assert mx.average_probability_of_improvement(x, y) + mx.average_probability_of_improvement(y, x) == 1.0
    a, b = [1.0, 2.0, 3.0], [2.0, 2.0, 2.0, 0.5]
    assert mx.average_probability_of_improvement(np.c_[a], np.c_[b]) == pytest.approx(probability_of_improvement(a, b))


def test_poi_estimate_reproduces_rliable_exactly_on_its_draws(rly):
    metrics, library = rly
    g = np.random.default_rng(12)
    x, y = g.normal(size=(5, 3)), g.normal(0.3, 1.0, size=(4, 3))
    reps = 300
    np.random.seed(21)
    p_rl, ci_rl = library.get_interval_estimates({"x,y": [x, y]}, metrics.probability_of_improvement, reps=reps)
    rs = np.random.RandomState(21)  # rliable draws x's then y's indices, per replicate
    ix, iy = zip(*[(rs.randint(0, 5, (5, 3)), rs.randint(0, 4, (4, 3))) for _ in range(reps)], strict=True)
    repl = mx._poi_b(mx._resample_tasks(x, np.array(ix)), mx._resample_tasks(y, np.array(iy)))
    np.testing.assert_allclose(st._percentile_interval(repl, 0.95), np.ravel(ci_rl["x,y"]), rtol=1e-12)
    assert mx.probability_of_improvement_estimate(x, y, reps=10).point == pytest.approx(p_rl["x,y"], rel=1e-12)


def test_poi_estimate_hand_cases():
    # x beats y in every pair of every task -> every resample has POI 1
    assert mx.probability_of_improvement_estimate([[2.0, 5.0], [3.0, 6.0]], [[0.0, 1.0], [1.0, 4.0]]) == (1.0, 1.0, 1.0)
    # stratification: per task x > y always (task 0 around 0, task 1 around 10). Resampling
    # pooled scores across tasks could pit x's 0 against y's 9 -> POI < 1 in some resamples.
    x = np.array([[0.0, 10.0], [0.0, 10.0]])
    y = np.array([[-1.0, 9.0], [-1.0, 9.0]])
    assert mx.probability_of_improvement_estimate(x, y) == (1.0, 1.0, 1.0)
    # anti-correlated runs: per-task POI is (#1s in the task's resample) / 2, independent per
    # task when stratified -> mean of 2 tasks = Binomial(4, 1/2) / 4, P(0) = 1/16 -> CI [0, 1];
    # resampling whole rows would give 0.5 always.
    x = np.array([[0.0, 1.0], [1.0, 0.0]])
    y = np.full((2, 2), 0.5)
    assert mx.probability_of_improvement_estimate(x, y, reps=20_000, seed=3) == (0.5, 0.0, 1.0)
    # percentile, not basic: one task, X = nine 0s and one 10 vs Y = [5]: POI = k/10 with
    # k ~ Binomial(10, 0.1) -> [0, 0.3] (basic would give [-0.1, 0.2])
    est = mx.probability_of_improvement_estimate(np.c_[[0.0] * 9 + [10.0]], [[5.0]], reps=20_000, seed=4)
    assert est.point == pytest.approx(0.1)
    assert (est.low, est.high) == pytest.approx((0.0, 0.3))


# ================================================================ performance profiles


@pytest.mark.parametrize("use_score_distribution", [True, False])
def test_performance_profile_reproduces_rliable_exactly_on_its_draws(rly, use_score_distribution):
    _, library = rly
    x = _skewed_matrix(13, 6, 4)
    taus = np.array([0.0, 0.5, 1.0, 2.0, 4.0, 8.0])
    reps = 300
    np.random.seed(31)
    prof, cis = library.create_performance_profile(
        {"a": x}, taus, use_score_distribution=use_score_distribution, reps=reps)
    est = mx.performance_profile(x, taus, use_score_distribution=use_score_distribution, reps=10)
    np.testing.assert_allclose(est.point, prof["a"], rtol=1e-12)
    idx = np.random.RandomState(31).randint(0, 6, size=(reps, 6, 4))
    repl = mx._profile_b(mx._resample_tasks(x, idx), taus, use_score_distribution)
    low, high = st._percentile_interval(repl, 0.95)
    np.testing.assert_allclose(np.stack([low, high]), cis["a"], rtol=1e-12, atol=1e-15)


def test_performance_profile_matches_rliable_statistically(rly):
    _, library = rly
    x = _skewed_matrix(14, 6, 4)
    taus = np.array([0.5, 1.0, 2.0, 4.0])
    np.random.seed(32)
    _, cis = library.create_performance_profile({"a": x}, taus, reps=5000)
    est = mx.performance_profile(x, taus, reps=50_000, seed=1)
    # fractions of 24 runs move in steps of 1/24; the discrete quantiles agree within a step
    np.testing.assert_allclose(est.low, cis["a"][0], atol=1 / 24 + 1e-9)
    np.testing.assert_allclose(est.high, cis["a"][1], atol=1 / 24 + 1e-9)


def test_performance_profile_hand_cases():
    x = np.array([[0.0, 1.0, 5.0], [2.0, 3.0, 5.0]])
    est = mx.performance_profile(x, [-1.0, 0.0, 2.0, 5.0])
    np.testing.assert_allclose(est.point, [1.0, 5 / 6, 3 / 6, 0.0])  # strictly greater than tau
    avg = mx.performance_profile(x, [0.5, 1.5, 2.5], use_score_distribution=False)  # task means 1, 2, 5
    np.testing.assert_allclose(avg.point, [1.0, 2 / 3, 1 / 3])
    assert isinstance(est.point, np.ndarray) and est.low.shape == est.high.shape == (4,)
    assert (est.low <= est.point).all() and (est.point <= est.high).all()
    # stratification: rows (0, 1), (1, 0) always have one score > 0.5 -> whole-row resampling
    # gives 0.5 always; stratified: Binomial(4, 1/2) / 4 -> CI [0, 1]
    e = mx.performance_profile([[0.0, 1.0], [1.0, 0.0]], [0.5], reps=20_000, seed=5)
    assert (float(e.point[0]), float(e.low[0]), float(e.high[0])) == (0.5, 0.0, 1.0)
    # percentile, not basic/normal: nine 0s and one 10, tau 5 -> fraction k/10 with
    # k ~ Binomial(10, 0.1) -> [0, 0.3]; basic would give 2 * 0.1 - [0.3, 0] = [-0.1, 0.2]
    e = mx.performance_profile(np.c_[[0.0] * 9 + [10.0]], [5.0], reps=20_000, seed=6)
    assert float(e.point[0]) == pytest.approx(0.1)
    assert (float(e.low[0]), float(e.high[0])) == pytest.approx((0.0, 0.3))


# ================================================================ sample efficiency: AUC


def test_auc_hand_cases():
    steps = np.array([0.0, 10.0, 20.0, 30.0])
    curves = np.array([
        [0.0, 1.0, 2.0, 3.0],  # linear: area 45, mean 1.5
        [2.0, 2.0, 2.0, 2.0],  # constant 2
        [0.0, 0.0, 0.0, 6.0],  # area 30
    ])
    np.testing.assert_allclose(ef.auc(steps, curves), [1.5, 2.0, 1.0])
    np.testing.assert_allclose(ef.auc(steps, curves, normalize=False), [45.0, 60.0, 30.0])
    # uneven steps: trapezoids over env steps, not over point indices
    np.testing.assert_allclose(ef.auc([0, 1, 10], [[0.0, 1.0, 1.0]], normalize=False), [0.5 + 9.0])
    # [S, T, N] -> [S, T]
    out = ef.auc(steps, np.stack([curves, 2 * curves], axis=1))
    assert out.shape == (3, 2)
    np.testing.assert_allclose(out[:, 1], 2 * out[:, 0])


def test_auc_nan_rule():
    steps = np.array([0.0, 10.0, 20.0, 30.0])
    nan = np.nan
    out = ef.auc(steps, [
        [0.0, nan, 2.0, 3.0],  # interior gap: linear fill -> same as [0, 1, 2, 3] -> 1.5
        [nan, 1.0, 2.0, 3.0],  # leading gap: first finite value held -> [1, 1, 2, 3] -> (10+15+25)/30
        [0.0, 1.0, 2.0, nan],  # trailing gap: last finite value held -> [0, 1, 2, 2] -> (5+15+20)/30
        [nan, nan, nan, nan],  # no finite point -> NaN
        [nan, 4.0, nan, nan],  # a single finite point -> constant 4
    ])
    np.testing.assert_allclose(out, [1.5, 50 / 30, 40 / 30, nan, 4.0])
    # aggregate drops the NaN run and gives the IQM + a CI over runs
    agg = aggregate(out)
    assert agg["n"] == 4 and agg["iqm_ci"][0] <= agg["iqm"] <= agg["iqm_ci"][1]


def test_auc_stratified_ci_via_aggregate():
    steps = np.linspace(0, 1e5, 11)
    g = np.random.default_rng(20)
    curves = np.cumsum(g.exponential(size=(8, 3, 11)), axis=-1) * np.array([1.0, 10.0, 100.0])[None, :, None]
    a = ef.auc(steps, curves)
    out = aggregate(a)
    assert out["n"] == 24
    assert out["iqm_ci"] == list(bootstrap_ci(a))  # the existing stratified machinery, by task


# ================================================================ sample efficiency: steps to threshold


def test_steps_to_threshold_hand_cases():
    steps = np.array([0, 100, 200, 300, 400])
    curves = np.array([
        [0.0, 5.0, 10.0, 12.0, 9.0],  # first >= 10 at 200
        [10.0, 0.0, 0.0, 0.0, 0.0],   # already at step 0
        [0.0, 1.0, 2.0, 3.0, 9.99],   # never -> inf
        [0.0, np.nan, 11.0, np.nan, 0.0],  # NaN never counts; reaches at 200
        [np.nan] * 5,                  # no data -> never reached
    ])
    out = ef.steps_to_threshold(steps, curves, 10.0)
    np.testing.assert_array_equal(out, [200.0, 0.0, np.inf, 200.0, np.inf])
    assert np.isposinf(out[2]) and not np.isnan(out).any()
    # [S, T, N]
    out2 = ef.steps_to_threshold(steps, np.stack([curves, curves + 5], axis=1), 10.0)
    assert out2.shape == (5, 2)
    np.testing.assert_array_equal(out2[:, 1], [100.0, 0.0, 400.0, 200.0, np.inf])


def test_steps_to_threshold_smoothing_is_trailing_and_off_by_default():
    steps = np.arange(6) * 10
    spike = np.array([[0.0, 0.0, 10.0, 0.0, 6.0, 6.0]])
    assert ef.steps_to_threshold(steps, spike, 5.0)[0] == 20.0  # raw: the spike counts
    # window 2: means [0, 0, 5, 5, 3, 6] -> first >= 5 at 20; window 3: [0, 0, 3.33, 3.33, 5.33, 4] -> 40
    assert ef.steps_to_threshold(steps, spike, 5.0, smooth=2)[0] == 20.0
    assert ef.steps_to_threshold(steps, spike, 5.0, smooth=3)[0] == 40.0
    # NaN points are skipped inside the window
    assert ef.steps_to_threshold(steps, [[0.0, np.nan, 8.0, np.nan, 0.0, 0.0]], 5.0, smooth=2)[0] == 20.0
    assert ef.steps_to_threshold(steps, [[0.0, 4.0, 8.0, 0.0, 0.0, 0.0]], 5.0, smooth=2)[0] == 20.0  # (4+8)/2


def test_threshold_estimates_all_none_partial():
    # all reached
    e = ef.threshold_estimates([100.0, 200.0, 300.0, 400.0])
    assert e["fraction_reached"] == (1.0, 1.0, 1.0)
    assert e["median"].point == 250.0 and e["iqm"].point == 250.0
    assert 100.0 <= e["median"].low <= e["median"].high <= 400.0
    # none reached
    e = ef.threshold_estimates([np.inf] * 5)
    assert e["fraction_reached"] == (0.0, 0.0, 0.0)
    assert e["median"] == (np.inf, np.inf, np.inf) and e["iqm"] == (np.inf, np.inf, np.inf)
    # partially: 1 of 4 fails -> median finite, IQM drops the failure in the top 25%
    e = ef.threshold_estimates([100.0, 200.0, 300.0, np.inf], reps=20_000, seed=1)
    assert e["fraction_reached"].point == 0.75
    assert e["median"].point == 250.0 and e["iqm"].point == 250.0
    assert e["median"].high == np.inf  # P(>= 2 of 4 resampled runs fail) = 26% > 2.5%
    assert e["fraction_reached"].low == 0.25 and e["fraction_reached"].high == 1.0


def test_not_reached_is_inf_not_budget_nor_dropped():
    """Fails if 'never reached' were reported as the budget, as NaN, or dropped."""
    steps = np.array([0, 1000, 2000, 3000])
    curves = np.array([
        [0.0, 1.0, 1.0, 1.0],  # reaches at 1000
        [0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0],
    ])
    hit = ef.steps_to_threshold(steps, curves, 1.0)
    np.testing.assert_array_equal(hit, [1000.0, np.inf, np.inf, np.inf])  # not 3000 (budget), not NaN
    e = ef.threshold_estimates(hit)
    assert e["fraction_reached"].point == 0.25
    assert e["median"].point == np.inf  # budget -> 3000; dropped -> 1000
    assert e["iqm"].point == np.inf
    assert e["median"].high == np.inf and e["iqm"].high == np.inf
    # a budget cut-off would make this run look as fast as one that reached it at the end
    late = ef.steps_to_threshold(steps, [[0.0, 0.0, 0.0, 1.0]], 1.0)
    assert late[0] == 3000.0 and hit[1] > late[0]


def test_threshold_estimates_stratified_over_tasks():
    # task 0 always reaches (100), task 1 never: stratified resamples keep 3 runs per task
    hit = np.stack([np.full(3, 100.0), np.full(3, np.inf)], axis=1)
    e = ef.threshold_estimates(hit)
    assert e["fraction_reached"] == (0.5, 0.5, 0.5)
    assert e["median"] == (np.inf, np.inf, np.inf)  # median of [100]*3 + [inf]*3 = (100 + inf) / 2


# ================================================================ percentile with infinities


def test_quantile_inf_safe_matches_numpy_on_finite():
    g = np.random.default_rng(30)
    a = g.normal(size=(101, 3))
    for q in (0.0, 0.025, 0.5, 0.975, 1.0):
        np.testing.assert_array_equal(st._quantile(a, q), np.percentile(a, 100 * q, axis=0))
    b = np.array([1.0, 2.0, 3.0, np.inf])  # positions: 0.075 -> lerp(1, 2); 2.925 -> lerp(3, inf)
    assert st._quantile(b, 0.025) == pytest.approx(1.075)
    assert st._quantile(b, 0.975) == np.inf
    assert st._quantile(np.array([np.inf, np.inf]), 0.5) == np.inf
    assert st._quantile(np.array([1.0, np.inf, np.inf]), 0.5) == np.inf
    assert st._quantile(np.array([1.0, 1.0, np.inf]), 0.5) == 1.0


# ================================================================ bad input


@pytest.mark.parametrize("call, match", [
    (lambda: mx.mean([1.0, 2.0]), r"x must be a 2-D \[S runs, T tasks\].*shape \(2,\).*x\[:, None\]"),
    (lambda: mx.median(np.zeros((0, 3))), r"x is empty \(shape \(0, 3\)\)"),
    (lambda: mx.optimality_gap([[1.0, np.nan]]), r"x \(shape \(1, 2\)\) contains NaN at \(run, task\) \[\(0, 1\)\]"),
    (lambda: mx.optimality_gap([[1.0]], gamma=np.inf), r"gamma must be a finite number"),
    (lambda: mx.interval_estimates({}), r"score_dict must be a non-empty mapping"),
    (lambda: mx.interval_estimates({"a": np.ones((2, 2, 2))}), r"score_dict\['a'\] must be a 2-D.*\(2, 2, 2\)"),
    (lambda: mx.interval_estimates({"a": np.ones((2, 2))}, level=1.0), r"level must be in the open interval \(0, 1\).*1.0"),
    (lambda: mx.interval_estimates({"a": np.ones((2, 2))}, level=0.0), r"level must be in the open interval"),
    (lambda: mx.interval_estimates({"a": np.ones((2, 2))}, reps=0), r"reps must be an integer >= 1, got 0"),
    (lambda: mx.interval_estimates({"a": np.ones((2, 2))}, reps=2.5), r"reps must be an integer >= 1, got 2.5"),
    (lambda: mx.interval_estimates({"a": np.ones((2, 2))}, {"m": 3}), r"statistics\['m'\] must be callable"),
    (lambda: mx.interval_estimates({"a": np.ones((2, 2))}, {"m": lambda m: m}), r"statistic 'm' must return a float or a 1-D"),
    (lambda: mx.average_probability_of_improvement(np.ones((3, 2)), np.ones((3, 4))),
     r"x has T=2 tasks \(shape \(3, 2\)\) but y has T=4 \(shape \(3, 4\)\)"),
    (lambda: mx.probability_of_improvement_estimate(np.ones((3, 2)), [[np.nan, 1.0]]), r"y \(shape \(1, 2\)\) contains NaN"),
    (lambda: mx.probability_of_improvement_estimate(np.ones((3, 2)), np.ones((3, 2)), level=-0.5), r"level must be in"),
    (lambda: mx.performance_profile(np.ones((3, 2)), []), r"taus must be a non-empty 1-D array \[K\].*\(0,\)"),
    (lambda: mx.performance_profile(np.ones((3, 2)), [[1.0]]), r"taus must be a non-empty 1-D.*\(1, 1\)"),
    (lambda: mx.performance_profile(np.ones((3, 2)), [np.nan]), r"taus must be finite"),
    (lambda: mx.performance_profile(np.ones((3, 2)), [1.0], reps=-1), r"reps must be an integer >= 1, got -1"),
    (lambda: ef.auc([0.0], [[1.0]]), r"steps must be a 1-D array \[N\] with N >= 2.*\(1,\)"),
    (lambda: ef.auc([0.0, 2.0, 1.0], [[1.0, 1.0, 1.0]]), r"steps must be strictly increasing; steps\[1\]=2.0 >= steps\[2\]=1.0"),
    (lambda: ef.auc([0.0, 1.0], [[1.0, 1.0, 1.0]]), r"curves must be \[S, N\] or \[S, T, N\] with N = len\(steps\) = 2.*\(1, 3\)"),
    (lambda: ef.auc([0.0, 1.0], [1.0, 1.0]), r"curves must be \[S, N\] or \[S, T, N\].*\(2,\)"),
    (lambda: ef.auc([0.0, 1.0], np.zeros((0, 2))), r"curves is empty"),
    (lambda: ef.auc([0.0, 1.0], [[1.0, np.inf]]), r"curves must not contain \+-inf"),
    (lambda: ef.auc([0.0, np.nan], [[1.0, 1.0]]), r"steps must be finite"),
    (lambda: ef.steps_to_threshold([0, 1], [[0.0, 1.0]], np.nan), r"threshold must be a finite number"),
    (lambda: ef.steps_to_threshold([0, 1], [[0.0, 1.0]], 1.0, smooth=0), r"smooth must be an integer window >= 1"),
    (lambda: ef.steps_to_threshold([0, 1], [[0.0, 1.0]], 1.0, smooth=1.5), r"smooth must be an integer window"),
    (lambda: ef.threshold_estimates([1.0, np.nan]), r"hit_steps must be finite env steps or \+inf"),
    (lambda: ef.threshold_estimates([]), r"hit_steps must be a non-empty \[S\] or \[S, T\].*\(0,\)"),
    (lambda: ef.threshold_estimates([1.0], level=2), r"level must be in the open interval"),
    (lambda: iqm(np.zeros((3, 0)), axis=1), r"iqm: x is empty along the reduced axis \(shape \(3, 0\)\)"),
    (lambda: bootstrap_ci([1.0, 2.0], reps=0), r"reps must be an integer >= 1, got 0"),
])
def test_bad_input_raises_clear_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ================================================================ normalisation (jaxrl_policy.scores)


REQUIRED_ENVS = ("CartPole-v1", "Acrobot-v1", "MountainCar-v0", "Pendulum-v1",
                 "Breakout-MinAtar", "SpaceInvaders-MinAtar", "Freeway-MinAtar", "Asterix-MinAtar")


def test_normalization_table_complete_and_cited():
    for env_id in REQUIRED_ENVS:
        e = scores_mod.NORMALIZATION[env_id]
        assert np.isfinite(e.random) and np.isfinite(e.reference)
        assert e.reference > e.random, env_id  # higher return is better on all of these
        assert e.random_source and e.reference_source
    assert scores_mod.NORMALIZATION["CartPole-v1"].reference == 500.0
    assert scores_mod.NORMALIZATION["MountainCar-v0"].random == -200.0
    assert "random_scores.py" in scores_mod.NORMALIZATION["Breakout-MinAtar"].random_source
    assert "gymnax" in scores_mod.NORMALIZATION["Breakout-MinAtar"].reference_source


def test_normalize():
    e = scores_mod.NORMALIZATION["CartPole-v1"]
    assert scores_mod.normalize(e.random, "CartPole-v1") == 0.0
    assert scores_mod.normalize(e.reference, "CartPole-v1") == 1.0
    assert scores_mod.normalize(-159.0, "MountainCar-v0") == pytest.approx(41 / 82)  # (-159 + 200) / (-118 + 200)
    out = scores_mod.normalize([500.0, np.nan, 22.718], "CartPole-v1")
    np.testing.assert_allclose(out, [1.0, np.nan, 0.0])
    with pytest.raises(ValueError, match=r"env_id 'Pong-v0' has no normalisation scores; known: Acrobot-v1"):
        scores_mod.normalize(1.0, "Pong-v0")


def test_aggregate_tasks_normalises_and_refuses_unknown_envs():
    out = scores_mod.aggregate_tasks({
        "CartPole-v1": [500.0, 500.0, 22.718],
        "MountainCar-v0": [-118.0, -200.0],  # fewer runs: padded with NaN, dropped per task
    })
    assert out["env_ids"] == ["CartPole-v1", "MountainCar-v0"]
    assert out["n"] == 5
    assert out["mean"] == pytest.approx(3 / 5)
    mat, ids = scores_mod.normalize_tasks({"CartPole-v1": [500.0, 22.718], "Pendulum-v1": [-130.0, -130.0]})
    np.testing.assert_allclose(mat, [[1.0, 1.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match=r"refusing to aggregate tasks without normalisation scores: \['Foo-v0', 'Bar-v1'\]"):
        scores_mod.aggregate_tasks({"CartPole-v1": [1.0], "Foo-v0": [1.0], "Bar-v1": [2.0]})
    with pytest.raises(ValueError, match=r"scores for 'CartPole-v1' must be a non-empty 1-D array \[S\].*\(2, 2\)"):
        scores_mod.normalize_tasks({"CartPole-v1": np.ones((2, 2))})
    with pytest.raises(ValueError, match=r"score_dict_by_env must be a non-empty mapping"):
        scores_mod.aggregate_tasks({})
