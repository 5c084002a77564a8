"""Robust aggregate statistics for RL results (numpy only, no jax, no scipy).

Implements the interval-estimate toolkit recommended by Agarwal et al. 2021,
"Deep Reinforcement Learning at the Edge of the Statistical Precipice"
(NeurIPS 2021): the interquartile mean (IQM), mean, median and optimality gap
over a ``[S, T]`` score matrix, percentile (stratified) bootstrap confidence
intervals over runs, the probability of improvement and performance profiles
(score distributions). The definitions follow the paper's reference library,
rliable 1.2 (``rliable.metrics`` / ``rliable.library``), which the tests use as
an oracle; nothing here imports it.

On top of that, sample-efficiency statistics of learning curves that rliable
does not have: the area under the curve (:func:`auc`) and the number of env
steps until a run first reaches a score (:func:`steps_to_threshold`,
:func:`threshold_estimates`).

Every bootstrap here resamples *runs* (seeds) -- with replacement, within each
task -- never episodes: the run is the independent unit of an RL experiment.

Shape legend
------------
S : number of seeds / independent runs
T : number of tasks (environments) in a 2-D score matrix
R : number of bootstrap replicates (``reps``)
N : number of points on a learning curve (evaluation steps)
K : number of thresholds ``tau`` of a performance profile

A 1-D array ``[S]`` is one task's per-run scores; a 2-D array ``[S, T]`` holds
per-run scores for several tasks (columns), and is bootstrapped stratified by
task.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "iqm",
    "bootstrap_ci",
    "probability_of_improvement",
    "aggregate",
    "mean",
    "median",
    "optimality_gap",
    "Estimate",
    "interval_estimates",
    "average_probability_of_improvement",
    "probability_of_improvement_estimate",
    "performance_profile",
    "auc",
    "steps_to_threshold",
    "threshold_estimates",
]

# Bootstrap replicates are generated in chunks of at most this many resampled scores
# (floats), so memory stays bounded (~32 MiB) whatever ``reps`` is.
_CHUNK_ELEMS = 1 << 22


def iqm(x: Any, axis: int | None = None) -> Any:
    """Interquartile mean: the mean of the middle 50% of the scores.

    Same semantics as ``scipy.stats.trim_mean(x, 0.25)``: sort, drop
    ``floor(0.25 * n)`` values from each end, average the rest. For n < 4
    nothing is dropped (plain mean). Recommended as the aggregate point
    estimate by Agarwal et al. 2021 (robust to outlier runs, yet less noisy
    than the median).

    Args:
      x: scores, ``[S]`` (or any shape when ``axis`` is given; with
        ``axis=None`` the array is flattened first).
      axis: axis to reduce over; ``None`` flattens.

    Returns:
      A float when ``axis is None``, else an array with ``axis`` removed.
      NaNs propagate (drop them beforehand, see :func:`aggregate`).

    Raises:
      ValueError: if there are no scores to average.
    """
    a = np.asarray(x, dtype=np.float64)
    if axis is None:
        a = a.reshape(-1)
        axis = 0
    n = a.shape[axis]
    if n == 0:
        raise ValueError(f"iqm: x is empty along the reduced axis (shape {a.shape}); need at least one score")
    cut = int(0.25 * n)  # floor for n >= 0, as in scipy's trim_mean
    s = np.sort(a, axis=axis)
    kept = np.take(s, np.arange(cut, n - cut), axis=axis)
    out = kept.mean(axis=axis)
    return float(out) if np.ndim(out) == 0 else out


def _apply_statistic(statistic: Callable[..., Any], samples: np.ndarray) -> np.ndarray:
    """Apply ``statistic`` to each row of ``samples`` [R, M] → [R].

    Tries the vectorised ``statistic(samples, axis=-1)`` first (works for
    :func:`iqm`, ``np.mean``, ``np.median``, ...) and falls back to a loop for
    statistics that take a single 1-D array.
    """
    reps = samples.shape[0]
    try:
        out = np.asarray(statistic(samples, axis=-1), dtype=np.float64)
        if out.shape == (reps,):
            return out
    except TypeError:
        pass
    return np.array([float(statistic(row)) for row in samples], dtype=np.float64)


def _check_reps_level(reps: Any, level: Any) -> tuple[int, float]:
    """Validate the bootstrap arguments; returns ``(int reps, float level)``."""
    try:
        r = operator.index(reps)
    except TypeError:
        raise ValueError(f"reps must be an integer >= 1, got {reps!r}") from None
    if r < 1:
        raise ValueError(f"reps must be an integer >= 1, got {reps}")
    try:
        lv = float(level)
    except (TypeError, ValueError):
        raise ValueError(f"level must be a number in the open interval (0, 1), got {level!r}") from None
    if not 0.0 < lv < 1.0:  # also rejects NaN
        raise ValueError(f"level must be in the open interval (0, 1), e.g. 0.95; got {level}")
    return r, lv


def _quantile(stats: np.ndarray, q: float) -> np.ndarray:
    """``np.percentile(stats, 100 * q, axis=0)`` (linear interpolation), safe for +-inf.

    Finite input goes straight to ``np.percentile`` (bit-identical results). With
    infinite replicates (e.g. steps-to-threshold of runs that never reached it),
    numpy's interpolation yields NaN (``inf * 0``); here the interpolation between
    a finite value and ``+inf`` is ``+inf`` (its limit), exactly-hit order
    statistics are returned as they are, and NaN still propagates.
    """
    a = np.asarray(stats, dtype=np.float64)
    if np.isfinite(a).all() or np.isnan(a).any():
        return np.asarray(np.percentile(a, 100.0 * q, axis=0))
    s = np.sort(a, axis=0)
    pos = q * (s.shape[0] - 1)
    lo = int(np.floor(pos))
    hi = min(lo + 1, s.shape[0] - 1)
    frac = pos - lo
    a_lo, a_hi = s[lo], s[hi]
    if frac == 0.0:
        return np.asarray(a_lo)
    with np.errstate(invalid="ignore"):
        lerp = a_lo + (a_hi - a_lo) * frac
    inf_end = np.where(np.isinf(a_lo), a_lo, a_hi)  # the infinite endpoint dominates
    both_inf = np.isinf(a_lo) & np.isinf(a_hi) & (a_lo != a_hi)
    out = np.where(np.isinf(a_lo) | np.isinf(a_hi), inf_end, lerp)
    out = np.where(a_lo == a_hi, a_lo, out)
    return np.asarray(np.where(both_inf, np.nan, out))


def _percentile_interval(stats: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval of replicates ``stats`` ``[R, ...]`` -> ``(low, high)``.

    The ``(1-level)/2`` and ``(1+level)/2`` quantiles of the bootstrap
    distribution (Efron's percentile method, as ``arch``'s ``conf_int(method=
    'percentile')`` that rliable calls) -- not the basic/reverse-percentile
    interval ``2*point - quantiles`` and not a normal approximation.
    """
    alpha = 1.0 - level
    return _quantile(stats, alpha / 2.0), _quantile(stats, 1.0 - alpha / 2.0)


def _bootstrap_columns(
    columns: Sequence[np.ndarray],
    statistic: Callable[..., Any],
    reps: int,
    level: float,
    seed: int | None,
) -> tuple[float, float]:
    """Stratified percentile bootstrap over a list of per-task score vectors.

    Each column (task) ``j`` with ``n_j`` runs is resampled with replacement
    independently (``[R, n_j]`` indices drawn at once); the resamples are
    concatenated to ``[R, sum n_j]`` and ``statistic`` is applied per replicate.
    Columns may have different lengths (e.g. after dropping NaN runs).
    """
    reps, level = _check_reps_level(reps, level)
    columns = [np.asarray(c, dtype=np.float64).reshape(-1) for c in columns]
    if not columns or sum(c.size for c in columns) == 0:
        raise ValueError("bootstrap_ci needs at least one score")
    rng = np.random.default_rng(seed)
    parts = []
    for c in columns:
        if c.size == 0:
            continue
        idx = rng.integers(0, c.size, size=(reps, c.size))
        parts.append(c[idx])
    samples = np.concatenate(parts, axis=1)  # [R, sum n_j]
    stats = _apply_statistic(statistic, samples)
    low, high = _percentile_interval(stats, level)
    return float(low), float(high)


def bootstrap_ci(
    x: Any,
    statistic: Callable[..., Any] = iqm,
    reps: int = 2000,
    level: float = 0.95,
    seed: int | None = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``statistic`` over runs.

    Runs (seeds) are resampled with replacement. For a 2-D ``[S, T]`` input the
    bootstrap is *stratified*: runs are resampled within each task (column)
    independently and ``statistic`` is applied to the flattened ``[S*T]``
    resample -- the stratified bootstrap of Agarwal et al. 2021. A 1-D ``[S]``
    input is the single-task case (identical draws to an ``[S, 1]`` input).
    All ``R = reps`` resamples are generated in one vectorised call.

    Args:
      x: scores, ``[S]`` or ``[S, T]``. NaNs are not removed here (they
        propagate into the statistic); see :func:`aggregate`.
      statistic: reduces scores to a float. Called as
        ``statistic(samples[R, M], axis=-1)`` when it supports ``axis``,
        otherwise once per replicate on a 1-D array. Defaults to :func:`iqm`.
      reps: number of bootstrap replicates R.
      level: two-sided confidence level in (0, 1), e.g. 0.95.
      seed: seed for ``np.random.default_rng``; a fixed seed gives
        identical intervals.

    Returns:
      ``(low, high)``: the ``(1-level)/2`` and ``(1+level)/2`` percentiles of
      the bootstrap distribution of ``statistic``.
    """
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        columns = [a]
    elif a.ndim == 2:
        columns = [a[:, j] for j in range(a.shape[1])]
    else:
        raise ValueError(f"bootstrap_ci expects a [S] or [S, T] array, got shape {a.shape}")
    return _bootstrap_columns(columns, statistic, reps, level, seed)


def probability_of_improvement(x: Any, y: Any) -> float:
    """Probability that a run of X scores higher than a run of Y.

    ``P(X > Y) + 0.5 * P(X = Y)`` over all ``len(x) * len(y)`` pairs, i.e. the
    normalised Mann-Whitney U statistic (Agarwal et al. 2021, Sec. 4.3).
    ``probability_of_improvement(x, y) + probability_of_improvement(y, x) == 1``.

    Args:
      x: scores of algorithm X, ``[S_x]``. NaNs are dropped.
      y: scores of algorithm Y, ``[S_y]``. NaNs are dropped.

    Returns:
      A float in [0, 1]; NaN if either side has no finite scores.
    """
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    b = np.asarray(y, dtype=np.float64).reshape(-1)
    a = a[~np.isnan(a)]
    b = b[~np.isnan(b)]
    if a.size == 0 or b.size == 0:
        return float("nan")
    gt = (a[:, None] > b[None, :]).mean()
    eq = (a[:, None] == b[None, :]).mean()
    return float(gt + 0.5 * eq)


def aggregate(
    x: Any,
    reps: int = 2000,
    level: float = 0.95,
    seed: int | None = 0,
) -> dict[str, Any]:
    """Summary statistics of per-run scores, NaN-aware.

    NaN entries (runs with no finished episode) are dropped first. For a 2-D
    ``[S, T]`` input NaNs are dropped per task and the CI uses the stratified
    bootstrap over the (possibly ragged) task columns (Agarwal et al. 2021).

    Args:
      x: scores, ``[S]`` or ``[S, T]``.
      reps, level, seed: passed to the bootstrap (see :func:`bootstrap_ci`).

    Returns:
      dict with
        ``mean``, ``median``, ``iqm``: point estimates over the kept scores;
        ``iqm_ci``: ``[low, high]`` percentile bootstrap CI of the IQM;
        ``std``: sample standard deviation (ddof=1; 0.0 for a single score);
        ``n``: number of finite scores used (int).
      If no finite score is left every float is NaN and ``n == 0``.
    """
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 0:
        a = a.reshape(1)
    if a.ndim == 1:
        columns = [a[~np.isnan(a)]]
    elif a.ndim == 2:
        columns = [a[~np.isnan(a[:, j]), j] for j in range(a.shape[1])]
    else:
        raise ValueError(f"aggregate expects a [S] or [S, T] array, got shape {a.shape}")
    flat = np.concatenate(columns) if columns else np.zeros(0)
    n = int(flat.size)
    if n == 0:
        nan = float("nan")
        return {"mean": nan, "median": nan, "iqm": nan, "iqm_ci": [nan, nan], "std": nan, "n": 0}
    low, high = _bootstrap_columns(columns, iqm, reps, level, seed)
    return {
        "mean": float(flat.mean()),
        "median": float(np.median(flat)),
        "iqm": iqm(flat),
        "iqm_ci": [low, high],
        "std": float(flat.std(ddof=1)) if n > 1 else 0.0,
        "n": n,
    }


def iqm_estimate(x: Any) -> dict[str, Any]:
    """IQM of per-run scores with its 95% bootstrap CI, as reports and experiment JSON store it.

    Returns ``{"iqm", "ci": [low, high], "n", "per_seed"}`` (``per_seed``: the scores as given, NaN
    kept, so a table can show every run); NaN runs are dropped from the estimate (see :func:`aggregate`).
    """
    a = np.asarray(x, dtype=np.float64)
    agg = aggregate(a)
    return {"iqm": float(agg["iqm"]), "ci": [float(c) for c in agg["iqm_ci"]], "n": agg["n"],
            "per_seed": [float(v) for v in a.reshape(-1)]}


# ---------------------------------------------------------------- score matrices [S, T]


class Estimate(NamedTuple):
    """A point estimate with its percentile bootstrap confidence interval.

    ``point``, ``low`` and ``high`` are floats for scalar statistics and ``[K]``
    arrays for vector-valued ones (e.g. a performance profile over K thresholds).
    """

    point: Any
    low: Any
    high: Any


def _as_float_array(x: Any, name: str) -> np.ndarray:
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be numeric array-like, got {type(x).__name__}: {e}") from None


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
    :func:`aggregate`'s ``median`` reports); for T = 1 it is the task's mean.

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
    Meant for normalised scores (see ``jaxrl_policy.scores``), with ``gamma = 1``
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


def _check_finite_scalar(v: Any, name: str) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number, got {v!r}") from None
    if not np.isfinite(f):
        raise ValueError(f"{name} must be a finite number, got {v}")
    return f


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
    it equals :func:`probability_of_improvement`.

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


# ---------------------------------------------------------------- sample efficiency (learning curves)


def _as_steps(steps: Any, min_points: int = 1) -> np.ndarray:
    a = _as_float_array(steps, "steps")
    if a.ndim != 1 or a.size < min_points:
        raise ValueError(f"steps must be a 1-D array [N] with N >= {min_points} env-step counts, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"steps must be finite, got {a[~np.isfinite(a)][:5].tolist()}")
    if a.size > 1 and not (np.diff(a) > 0).all():
        i = int(np.argmin(np.diff(a) > 0))
        raise ValueError(f"steps must be strictly increasing; steps[{i}]={a[i]} >= steps[{i + 1}]={a[i + 1]}")
    return a


def _as_curves(curves: Any, n: int) -> np.ndarray:
    a = _as_float_array(curves, "curves")
    if a.ndim not in (2, 3) or a.shape[-1] != n:
        raise ValueError(
            f"curves must be [S, N] or [S, T, N] with N = len(steps) = {n} points per run, got shape {a.shape}"
        )
    if a.shape[0] == 0 or (a.ndim == 3 and a.shape[1] == 0):
        raise ValueError(f"curves is empty (shape {a.shape}); need at least one run")
    if np.isinf(a).any():
        raise ValueError("curves must not contain +-inf (NaN marks a missing point)")
    return a


def auc(steps: Any, curves: Any, normalize: bool = True) -> np.ndarray:
    """Area under each run's learning curve over env steps (trapezoid rule).

    ``AUC = sum_i (steps[i+1] - steps[i]) * (c[i] + c[i+1]) / 2``; with
    ``normalize=True`` divided by ``steps[-1] - steps[0]``, which makes it the
    time-averaged score over training (same units as the curve; a curve that
    is constant at v has AUC v). Higher AUC = better sample efficiency at the
    given budget.

    Missing points (NaN, e.g. an iteration in which no episode finished) are
    filled per run by ``np.interp`` over that run's finite points: linear
    interpolation across interior gaps, and the first/last finite value held
    constant before/after it (no extrapolation of a trend). A run with no
    finite point gets NaN (which :func:`aggregate` then drops).

    One value per run: aggregate with ``aggregate(auc(...))`` (IQM and a
    bootstrap CI that resamples runs, stratified by task for ``[S, T]``) or
    :func:`interval_estimates`.

    Args:
      steps: env steps of the curve points ``[N]``, strictly increasing, N >= 2.
      curves: per-run curves ``[S, N]`` or ``[S, T, N]``; NaN = missing point.
      normalize: divide by the step range (mean score) instead of the raw area.

    Returns:
      ``[S]`` or ``[S, T]`` float array.
    """
    st = _as_steps(steps, min_points=2)
    a = _as_curves(curves, st.size)
    flat = a.reshape(-1, st.size).copy()
    dt = np.diff(st)
    out = np.full(flat.shape[0], np.nan)
    for i, c in enumerate(flat):
        m = ~np.isnan(c)
        if not m.any():
            continue
        f = c if m.all() else np.interp(st, st[m], c[m])
        out[i] = float(np.sum(dt * (f[1:] + f[:-1])) / 2.0)
    if normalize:
        out = out / (st[-1] - st[0])
    return out.reshape(a.shape[:-1])


def steps_to_threshold(steps: Any, curves: Any, threshold: float, smooth: int = 1) -> np.ndarray:
    """Env steps until each run's curve first reaches ``threshold``; ``inf`` if never.

    Rule: the answer for a run is ``steps[i]`` for the smallest ``i`` with
    ``c[i] >= threshold`` (the first logged point at or above it -- resolution
    is the evaluation grid, no interpolation between points). A run that never
    gets there within its curve -- including a run whose points are all NaN --
    gets ``np.inf``: not NaN (it is not missing data, it is a failure) and not
    the budget ``steps[-1]`` (which would pretend it succeeded at the end).
    NaN points never count as reaching the threshold.

    Smoothing is off by default (``smooth=1``). With ``smooth = w > 1`` the
    curve is first replaced by a trailing moving average over the last w points
    (``mean(c[max(0, i-w+1) : i+1])``, NaN points skipped; NaN if the window
    has no finite point) -- trailing, so whether a run has reached the
    threshold at step i depends only on points up to i.

    Args:
      steps: env steps of the curve points ``[N]``, strictly increasing.
      curves: per-run curves ``[S, N]`` or ``[S, T, N]``; NaN = missing point.
      threshold: finite score to reach.
      smooth: trailing moving-average window in points, int >= 1.

    Returns:
      ``[S]`` or ``[S, T]`` float array of env steps, ``inf`` for runs that
      never reached ``threshold``. Summarise with :func:`threshold_estimates`.
    """
    st = _as_steps(steps)
    a = _as_curves(curves, st.size)
    thr = _check_finite_scalar(threshold, "threshold")
    try:
        w = operator.index(smooth)
    except TypeError:
        raise ValueError(f"smooth must be an integer window >= 1, got {smooth!r}") from None
    if w < 1:
        raise ValueError(f"smooth must be an integer window >= 1 (1 = no smoothing), got {smooth}")
    flat = a.reshape(-1, st.size)
    if w > 1:
        ok = ~np.isnan(flat)
        zero = np.zeros((flat.shape[0], 1))
        csum = np.concatenate([zero, np.cumsum(np.where(ok, flat, 0.0), axis=1)], axis=1)
        ccnt = np.concatenate([zero, np.cumsum(ok, axis=1, dtype=np.float64)], axis=1)
        hi = np.arange(1, st.size + 1)
        lo = np.maximum(0, hi - w)
        wsum, wcnt = csum[:, hi] - csum[:, lo], ccnt[:, hi] - ccnt[:, lo]
        with np.errstate(invalid="ignore", divide="ignore"):
            flat = np.where(wcnt > 0, wsum / np.maximum(wcnt, 1.0), np.nan)
    with np.errstate(invalid="ignore"):
        hit = flat >= thr  # NaN -> False
    first = np.argmax(hit, axis=1)
    out = np.where(hit.any(axis=1), st[first], np.inf)
    return out.reshape(a.shape[:-1])


def _fraction_finite(a: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.isfinite(a).mean(axis=axis)


def threshold_estimates(
    hit_steps: Any,
    reps: int = 2000,
    level: float = 0.95,
    seed: int | None = 0,
) -> dict[str, Estimate]:
    """Summary of :func:`steps_to_threshold` with stratified bootstrap CIs over runs.

    ``inf`` ("never reached") is kept as +inf throughout, never replaced by the
    budget and never dropped:

    * ``fraction_reached``: the fraction of runs with a finite value;
    * ``median``: ``np.median`` of all values (over runs and tasks), so it is
      ``inf`` once half of the runs fail (for an even count, the mean of the two
      middle values is ``inf`` if the upper one is);
    * ``iqm``: :func:`iqm` of all values: ``inf`` once a failed run survives
      the 25% trimming, i.e. when more than about a quarter fail.

    The CIs resample runs (seeds) with replacement within each task column,
    never episodes (Agarwal et al. 2021, Sec. 4.1), and take percentiles of the
    replicates with ``inf`` ordered last: the upper end is ``inf`` when more
    than ``(1-level)/2`` of the resamples have an infinite statistic.

    Args:
      hit_steps: ``[S]`` or ``[S, T]`` from :func:`steps_to_threshold`: finite
        steps or ``+inf``; no NaN.
      reps, level, seed: as in :func:`bootstrap_ci`.

    Returns:
      ``{"fraction_reached": Estimate, "median": Estimate, "iqm": Estimate}``
      (floats; point/low/high may be ``inf`` for median and iqm).
    """
    reps, level = _check_reps_level(reps, level)
    a = _as_float_array(hit_steps, "hit_steps")
    if a.ndim not in (1, 2) or a.size == 0:
        raise ValueError(f"hit_steps must be a non-empty [S] or [S, T] array, got shape {a.shape}")
    if np.isnan(a).any() or (a == -np.inf).any():
        raise ValueError("hit_steps must be finite env steps or +inf (never reached); got NaN or -inf")
    columns = [a] if a.ndim == 1 else [a[:, j] for j in range(a.shape[1])]
    flat = a.reshape(-1)
    stats: dict[str, tuple[Callable[..., Any], float]] = {
        "fraction_reached": (_fraction_finite, float(np.isfinite(flat).mean())),
        "median": (np.median, float(np.median(flat))),
        "iqm": (iqm, iqm(flat)),
    }
    out = {}
    for name, (fn, point) in stats.items():
        low, high = _bootstrap_columns(columns, fn, reps, level, seed)
        out[name] = Estimate(point, low, high)
    return out
