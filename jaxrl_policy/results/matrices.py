"""Interval estimates over ``[S, T]`` score matrices (numpy only): mean, median, IQM and optimality gap
with stratified percentile bootstrap CIs (:func:`interval_estimates`), the probability of improvement
averaged over tasks (:func:`average_probability_of_improvement`,
:func:`probability_of_improvement_estimate`) and performance profiles (:func:`performance_profile`).

The numpy counterparts of rliable 1.2's ``rliable.metrics`` / ``rliable.library`` (Agarwal et al. 2021,
"Deep Reinforcement Learning at the Edge of the Statistical Precipice", NeurIPS 2021), which the tests
use as an oracle. Resampling is stratified: runs (seeds) are drawn with replacement within each task
column, never across tasks and never episodes. The per-run estimators, the bootstrap's percentile
interval and :class:`~jaxrl_policy.results.stats.Estimate` are in :mod:`jaxrl_policy.results.stats`.

Shape legend
------------
S : number of seeds / independent runs (may differ between the algorithms compared)
T : number of tasks (environments), the columns of a score matrix
R : number of bootstrap replicates (``reps``)
K : number of thresholds ``tau`` of a performance profile
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from jaxrl_policy.results.stats import (
    Estimate,
    _as_float_array,
    _check_finite_scalar,
    _check_reps_level,
    _percentile_interval,
    iqm,
)

__all__ = [
    "mean",
    "median",
    "optimality_gap",
    "DEFAULT_STATISTICS",
    "interval_estimates",
    "average_probability_of_improvement",
    "probability_of_improvement_estimate",
    "performance_profile",
]

# Bootstrap replicates are generated in chunks of at most this many resampled scores
# (floats), so memory stays bounded (~32 MiB) whatever ``reps`` is.
_CHUNK_ELEMS = 1 << 22


def _as_score_matrix(x: Any, name: str) -> np.ndarray:
    """Validate a per-run score matrix ``[S, T]`` (finite or +-inf, no NaN)."""
    a = _as_float_array(x, name)
    if a.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D [S runs, T tasks] score matrix, got shape {a.shape}"
            + ("; for a single task pass x[:, None]" if a.ndim == 1 else "")
        )
    if a.size == 0:
        raise ValueError(f"{name} is empty (shape {a.shape}); need at least one run (S >= 1) and one task (T >= 1)")
    if np.isnan(a).any():
        where = [tuple(int(i) for i in ij) for ij in np.argwhere(np.isnan(a))[:5]]
        raise ValueError(
            f"{name} (shape {a.shape}) contains NaN at (run, task) {where}"
            f"{' ...' if np.isnan(a).sum() > 5 else ''}; the stratified bootstrap needs a complete "
            "[S, T] matrix: drop or impute failed runs first (aggregate() drops NaN runs per task)"
        )
    return a


def _mean_b(b: np.ndarray) -> np.ndarray:
    return b.mean(axis=-2).mean(axis=-1)


def _median_b(b: np.ndarray) -> np.ndarray:
    return np.median(b.mean(axis=-2), axis=-1)


def _iqm_b(b: np.ndarray) -> np.ndarray:
    return np.asarray(iqm(b.reshape(b.shape[0], -1), axis=-1))


def _optimality_gap_b(b: np.ndarray, gamma: float = 1.0) -> np.ndarray:
    return gamma - np.minimum(b, gamma).mean(axis=(-2, -1))


def mean(x: Any) -> float:
    """Mean over tasks of the per-task mean score (``rliable.metrics.aggregate_mean``).

    ``mean = (1/T) sum_t (1/S) sum_s x[s, t]`` -- equal to the mean of all S*T
    scores, since every task has S runs (Agarwal et al. 2021, Sec. 4.3).

    Args:
      x: scores, ``[S, T]``; no NaN.

    Returns:
      A float.
    """
    a = _as_score_matrix(x, "x")
    return float(_mean_b(a[None])[0])


def median(x: Any) -> float:
    """Median over tasks of the per-task mean score (``rliable.metrics.aggregate_median``).

    ``median = median_t( (1/S) sum_s x[s, t] )`` (Agarwal et al. 2021, Sec. 4.3).
    Note this is *not* the median of all S*T scores (that is what
    :func:`~jaxrl_policy.results.stats.aggregate`'s ``median`` reports); for T = 1 it is the task's mean.

    Args:
      x: scores, ``[S, T]``; no NaN.

    Returns:
      A float.
    """
    a = _as_score_matrix(x, "x")
    return float(_median_b(a[None])[0])


def optimality_gap(x: Any, gamma: float = 1.0) -> float:
    """Optimality gap: how far the scores fall short of ``gamma``, on average.

    ``gap = gamma - (1/(S*T)) sum_{s,t} min(x[s, t], gamma)`` over all runs and
    tasks: scores above ``gamma`` are clipped to it, so beating the target on
    one task cannot make up for missing it on another (Agarwal et al. 2021,
    Sec. 4.3; ``rliable.metrics.aggregate_optimality_gap``). Lower is better.
    Meant for normalised scores (see ``jaxrl_policy.results.scores``), with ``gamma = 1``
    the reference score.

    Args:
      x: scores, ``[S, T]``; no NaN.
      gamma: the target score, a finite float.

    Returns:
      A float.
    """
    a = _as_score_matrix(x, "x")
    g = _check_finite_scalar(gamma, "gamma")
    return float(_optimality_gap_b(a[None], g)[0])


# Vectorised forms of this module's matrix statistics: called once on a stack of
# resampled matrices [R, S, T] -> [R]. Any other statistic is called per replicate.
_BATCHED: dict[Callable[..., Any], Callable[[np.ndarray], np.ndarray]] = {
    mean: _mean_b,
    median: _median_b,
    iqm: _iqm_b,
    optimality_gap: _optimality_gap_b,
}


def _batched_form(fn: Callable[..., Any]) -> Callable[[np.ndarray], np.ndarray] | None:
    if fn in _BATCHED:
        return _BATCHED[fn]
    if isinstance(fn, functools.partial) and fn.func is optimality_gap and not fn.args:
        kw = dict(fn.keywords)
        if set(kw) <= {"gamma"}:
            g = _check_finite_scalar(kw.get("gamma", 1.0), "gamma")
            return lambda b: _optimality_gap_b(b, g)
    return None


def _apply_matrix_statistic(name: str, fn: Callable[..., Any], b: np.ndarray) -> np.ndarray:
    """Statistic ``fn`` of each resampled matrix in ``b`` ``[R, S, T]`` -> ``[R]`` or ``[R, K]``."""
    fast = _batched_form(fn)
    if fast is not None:
        return np.asarray(fast(b), dtype=np.float64)
    rows = []
    for m in b:
        v = np.asarray(fn(m), dtype=np.float64)
        if v.ndim > 1:
            raise ValueError(f"statistic {name!r} must return a float or a 1-D array, got shape {v.shape}")
        rows.append(v)
    try:
        return np.stack(rows)
    except ValueError:
        raise ValueError(f"statistic {name!r} returned arrays of different shapes across resamples") from None


def _chunks(reps: int, elems_per_rep: int):
    """Split ``reps`` replicates into chunk sizes of at most ~``_CHUNK_ELEMS`` floats."""
    step = max(1, _CHUNK_ELEMS // max(1, elems_per_rep))
    for start in range(0, reps, step):
        yield min(step, reps - start)


def _resample_tasks(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Stratified resample: ``out[r, s, t] = x[idx[r, s, t], t]`` -> ``[R, S, T]``.

    Row indices are drawn per (replicate, slot, task), i.e. runs are resampled
    with replacement *within each task column* independently -- rliable's
    ``StratifiedBootstrap`` (Agarwal et al. 2021, Sec. 4.1).
    """
    return x[idx, np.arange(x.shape[1])]


def _statistics_of_resamples(
    x: np.ndarray, idx: np.ndarray, statistics: Mapping[str, Callable[..., Any]]
) -> dict[str, np.ndarray]:
    """Each statistic on each stratified resample ``x[idx[r], task]`` -> ``{name: [R] or [R, K]}``."""
    b = _resample_tasks(x, idx)
    return {name: _apply_matrix_statistic(name, fn, b) for name, fn in statistics.items()}


def _bootstrap_matrix(
    x: np.ndarray,
    statistics: Mapping[str, Callable[..., Any]],
    reps: int,
    seed: int | None,
    elems_per_rep: int | None = None,
) -> dict[str, np.ndarray]:
    """Bootstrap replicates ``{name: [R] or [R, K]}`` of ``statistics`` on ``x`` ``[S, T]``."""
    s, t = x.shape
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in statistics}
    for c in _chunks(reps, elems_per_rep or x.size):
        idx = rng.integers(0, s, size=(c, s, t))
        for name, v in _statistics_of_resamples(x, idx, statistics).items():
            parts[name].append(v)
    return {name: np.concatenate(v, axis=0) for name, v in parts.items()}


def _to_estimate(point: Any, replicates: np.ndarray, level: float) -> Estimate:
    low, high = _percentile_interval(replicates, level)
    p = np.asarray(point, dtype=np.float64)
    if p.ndim == 0:
        return Estimate(float(p), float(low), float(high))
    return Estimate(p, np.asarray(low), np.asarray(high))


DEFAULT_STATISTICS: dict[str, Callable[..., Any]] = {
    "mean": mean,
    "median": median,
    "iqm": iqm,
    "optimality_gap": optimality_gap,
}


def interval_estimates(
    score_dict: Mapping[str, Any],
    statistics: Mapping[str, Callable[..., Any]] | None = None,
    reps: int = 2000,
    level: float = 0.95,
    seed: int | None = 0,
) -> dict[str, dict[str, Estimate]]:
    """Point estimates and stratified percentile bootstrap CIs, per algorithm.

    The numpy counterpart of ``rliable.library.get_interval_estimates(...,
    method='percentile')`` (Agarwal et al. 2021, Sec. 4.1): for each algorithm's
    score matrix ``x`` ``[S, T]``, R resampled matrices are drawn with
    ``x*[s, t] = x[i[s, t], t]``, ``i[s, t]`` uniform on ``0..S-1`` --
    runs (seeds) are resampled with replacement *within each task*, never across
    tasks and never episodes -- every statistic is evaluated on each resample,
    and the interval is the ``(1-level)/2``, ``(1+level)/2`` percentiles of
    those R values (the percentile method, not basic or normal).

    Each algorithm's resamples come from ``np.random.default_rng(seed)`` afresh,
    so the result for one algorithm does not depend on the others in the dict
    (algorithms of the same shape share index draws: common random numbers).
    All statistics of one algorithm are computed on the same resamples.

    Args:
      score_dict: ``{algorithm: scores [S, T]}``; S may differ between
        algorithms. No NaN (drop or impute failed runs first).
      statistics: ``{name: fn}``, ``fn(scores [S, T]) -> float or [K] array``.
        Defaults to :data:`DEFAULT_STATISTICS` (``mean``, ``median``, ``iqm``,
        ``optimality_gap``, all as rliable defines them; note :func:`iqm` of a
        matrix is the IQM of all S*T scores flattened). This module's
        statistics (and ``functools.partial(optimality_gap, gamma=g)``) are
        evaluated vectorised over all resamples; any other callable is called
        once per resample.
      reps: number of bootstrap replicates R (rliable's default is 50000; use
        >= 10000 for published intervals).
      level: two-sided confidence level in (0, 1).
      seed: seed for ``np.random.default_rng``.

    Returns:
      ``{algorithm: {statistic name: Estimate(point, low, high)}}``.
    """
    reps, level = _check_reps_level(reps, level)
    if not isinstance(score_dict, Mapping) or not score_dict:
        raise ValueError(
            f"score_dict must be a non-empty mapping {{algorithm: scores [S, T]}}, got {type(score_dict).__name__}"
            + (" (empty)" if isinstance(score_dict, Mapping) else "")
        )
    statistics = DEFAULT_STATISTICS if statistics is None else statistics
    if not isinstance(statistics, Mapping) or not statistics:
        raise ValueError(f"statistics must be a non-empty mapping {{name: callable}}, got {statistics!r}")
    for name, fn in statistics.items():
        if not callable(fn):
            raise ValueError(f"statistics[{name!r}] must be callable, got {type(fn).__name__}")
    matrices = {k: _as_score_matrix(v, f"score_dict[{k!r}]") for k, v in score_dict.items()}
    out: dict[str, dict[str, Estimate]] = {}
    for algo, x in matrices.items():
        points = {name: _apply_matrix_statistic(name, fn, x[None])[0] for name, fn in statistics.items()}
        reps_stats = _bootstrap_matrix(x, statistics, reps, seed)
        out[algo] = {name: _to_estimate(points[name], reps_stats[name], level) for name in statistics}
    return out


# ---------------------------------------------------------------- probability of improvement, T tasks


def _poi_b(bx: np.ndarray, by: np.ndarray) -> np.ndarray:
    """Average POI of stacked matrices ``bx`` ``[R, S_x, T]`` vs ``by`` ``[R, S_y, T]`` -> ``[R]``."""
    gt = (bx[:, :, None, :] > by[:, None, :, :]).mean(axis=(1, 2))  # [R, T]
    eq = (bx[:, :, None, :] == by[:, None, :, :]).mean(axis=(1, 2))
    return (gt + 0.5 * eq).mean(axis=-1)


def _check_pair(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    a = _as_score_matrix(x, "x")
    b = _as_score_matrix(y, "y")
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"x has T={a.shape[1]} tasks (shape {a.shape}) but y has T={b.shape[1]} (shape {b.shape}); "
            "columns must be the same tasks in the same order"
        )
    return a, b


def average_probability_of_improvement(x: Any, y: Any) -> float:
    """Probability that X beats Y on a task, averaged over the T tasks.

    ``P(X > Y) = (1/T) sum_t (1/(S_x S_y)) sum_{i,j} S(x[i, t], y[j, t])`` with
    ``S(a, b) = 1 if a > b, 1/2 if a == b, 0 otherwise`` -- the per-task
    normalised Mann-Whitney U statistic, averaged over tasks (Agarwal et al.
    2021, Sec. 4.3; ``rliable.metrics.probability_of_improvement``). For T = 1
    it equals :func:`~jaxrl_policy.results.stats.probability_of_improvement`.

    Args:
      x: scores of algorithm X, ``[S_x, T]``; no NaN.
      y: scores of algorithm Y, ``[S_y, T]``, the same T tasks in the same order.

    Returns:
      A float in [0, 1]; ``f(x, y) + f(y, x) == 1``.
    """
    a, b = _check_pair(x, y)
    return float(_poi_b(a[None], b[None])[0])


def probability_of_improvement_estimate(
    x: Any,
    y: Any,
    reps: int = 2000,
    level: float = 0.95,
    seed: int | None = 0,
) -> Estimate:
    """:func:`average_probability_of_improvement` with a stratified percentile bootstrap CI.

    Each replicate resamples X's runs within each task and, independently, Y's
    runs within each task (runs, never episodes), and recomputes the average
    probability of improvement -- as ``rliable.library.get_interval_estimates``
    does for a paired score dict ``{"x,y": (x, y)}`` (its
    ``StratifiedIndependentBootstrap``; Agarwal et al. 2021, Sec. 4.3).

    Args:
      x: scores of X, ``[S_x, T]``; y: scores of Y, ``[S_y, T]``. No NaN.
      reps, level, seed: as in :func:`interval_estimates`.

    Returns:
      ``Estimate(point, low, high)``, floats.
    """
    reps, level = _check_reps_level(reps, level)
    a, b = _check_pair(x, y)
    (sx, t), sy = a.shape, b.shape[0]
    rng = np.random.default_rng(seed)
    parts = []
    for c in _chunks(reps, sx * sy * t):
        ix = rng.integers(0, sx, size=(c, sx, t))
        iy = rng.integers(0, sy, size=(c, sy, t))
        parts.append(_poi_b(_resample_tasks(a, ix), _resample_tasks(b, iy)))
    return _to_estimate(_poi_b(a[None], b[None])[0], np.concatenate(parts), level)


# ---------------------------------------------------------------- performance profiles


def _profile_b(b: np.ndarray, taus: np.ndarray, use_score_distribution: bool) -> np.ndarray:
    """Profile of stacked matrices ``b`` ``[R, S, T]`` at ``taus`` ``[K]`` -> ``[R, K]``."""
    if use_score_distribution:
        v = b.reshape(b.shape[0], -1)  # [R, S*T]: every run of every task
    else:
        v = b.mean(axis=1)  # [R, T]: per-task mean over runs
    return (v[:, :, None] > taus[None, None, :]).mean(axis=1)


def performance_profile(
    scores: Any,
    taus: Any,
    use_score_distribution: bool = True,
    reps: int = 2000,
    level: float = 0.95,
    seed: int | None = 0,
) -> Estimate:
    """Performance profile (score distribution) with a stratified bootstrap CI band.

    With ``use_score_distribution=True`` (the default, as in rliable) the run-score
    distribution ``F(tau) = (1/(S*T)) sum_{s,t} 1[x[s, t] > tau]``: the fraction
    of all runs, over all tasks, that score strictly above ``tau``. With
    ``False`` the average-score distribution
    ``(1/T) sum_t 1[(1/S) sum_s x[s, t] > tau]``: the fraction of tasks whose
    mean score exceeds ``tau`` (Agarwal et al. 2021, Sec. 4.2). Matches
    ``rliable.library.create_performance_profile(..., method='percentile')``:
    the band at each tau is the percentile interval of the profile over
    stratified resamples of runs (within tasks).

    Args:
      scores: ``[S, T]``; no NaN.
      taus: thresholds ``[K]``, finite.
      use_score_distribution: run-score (True) or average-score (False) profile.
      reps, level, seed: as in :func:`interval_estimates` (rliable's default
        reps for profiles is 2000).

    Returns:
      ``Estimate(point [K], low [K], high [K])``.
    """
    reps, level = _check_reps_level(reps, level)
    x = _as_score_matrix(scores, "scores")
    tau = _as_float_array(taus, "taus")
    if tau.ndim != 1 or tau.size == 0:
        raise ValueError(f"taus must be a non-empty 1-D array [K] of thresholds, got shape {tau.shape}")
    if not np.isfinite(tau).all():
        raise ValueError(f"taus must be finite, got {tau[~np.isfinite(tau)][:5].tolist()}")
    flag = bool(use_score_distribution)
    stat = {"profile": lambda m: _profile_b(m[None], tau, flag)[0]}
    point = stat["profile"](x)
    rng = np.random.default_rng(seed)
    parts = []
    s, t = x.shape
    for c in _chunks(reps, x.size * tau.size):
        idx = rng.integers(0, s, size=(c, s, t))
        parts.append(_profile_b(_resample_tasks(x, idx), tau, flag))
    return _to_estimate(point, np.concatenate(parts, axis=0), level)
