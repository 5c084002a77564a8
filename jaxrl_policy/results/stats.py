"""Robust statistics of per-run scores (numpy only, no jax, no scipy): the interquartile mean, percentile
(stratified) bootstrap confidence intervals over runs, the probability of improvement of two runs'
scores, and :func:`aggregate` / :func:`iqm_estimate`, the summaries that run summaries and reports store.

Implements the per-run part of the interval-estimate toolkit recommended by Agarwal et al. 2021,
"Deep Reinforcement Learning at the Edge of the Statistical Precipice" (NeurIPS 2021); the estimators of a
``[S, T]`` score matrix (mean, median, IQM, optimality gap, average probability of improvement,
performance profiles) are in :mod:`jaxrl_policy.results.matrices`, the sample-efficiency statistics of
learning curves (AUC, env steps to a threshold) in :mod:`jaxrl_policy.results.efficiency`; both build on
the bootstrap and the :class:`Estimate` defined here. The definitions follow the paper's reference
library, rliable 1.2 (``rliable.metrics`` / ``rliable.library``), which the tests use as an oracle;
nothing here imports it.

Every bootstrap here resamples *runs* (seeds) -- with replacement, within each
task -- never episodes: the run is the independent unit of an RL experiment.

Shape legend
------------
S : number of seeds / independent runs
T : number of tasks (environments) in a 2-D score matrix
R : number of bootstrap replicates (``reps``)
K : number of values of a vector-valued statistic (e.g. thresholds of a profile)

A 1-D array ``[S]`` is one task's per-run scores; a 2-D array ``[S, T]`` holds
per-run scores for several tasks (columns), and is bootstrapped stratified by
task.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "iqm",
    "bootstrap_ci",
    "probability_of_improvement",
    "aggregate",
    "iqm_estimate",
    "Estimate",
]


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


def _check_finite_scalar(v: Any, name: str) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number, got {v!r}") from None
    if not np.isfinite(f):
        raise ValueError(f"{name} must be a finite number, got {v}")
    return f

