"""Sample efficiency of learning curves (numpy only): the area under the curve (:func:`auc`) and the env
steps until a run first reaches a score (:func:`steps_to_threshold`, summarised with bootstrap CIs over
runs by :func:`threshold_estimates`). rliable has neither; the bootstrap is
:mod:`jaxrl_policy.results.stats`'s (runs resampled within each task, never episodes).

Shape legend
------------
S : number of seeds / independent runs
T : number of tasks (environments), an optional middle axis of the curves
N : number of points on a learning curve (evaluation steps)
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from jaxrl_policy.results.stats import (
    Estimate,
    _as_float_array,
    _bootstrap_columns,
    _check_finite_scalar,
    _check_reps_level,
    iqm,
)

__all__ = ["auc", "steps_to_threshold", "threshold_estimates"]


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
    finite point gets NaN (which :func:`~jaxrl_policy.results.stats.aggregate` then drops).

    One value per run: aggregate with ``aggregate(auc(...))`` (IQM and a
    bootstrap CI that resamples runs, stratified by task for ``[S, T]``) or
    :func:`~jaxrl_policy.results.matrices.interval_estimates`.

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
      reps, level, seed: as in :func:`~jaxrl_policy.results.stats.bootstrap_ci`.

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
