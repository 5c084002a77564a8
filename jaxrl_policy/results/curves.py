"""Learning curves from a run's ``metrics.jsonl`` rows, and their IQM over seeds with a bootstrap CI.

:func:`binned_returns` gives each seed's training-return curve (episodes binned into equal windows of
env steps, gradient steps or wall seconds: :data:`X_AXES`), :func:`eval_curves` each seed's evaluation
curve at the logged evaluations; :func:`curve_with_ci` aggregates either over seeds with the
interquartile mean (IQM) and a percentile bootstrap confidence interval, following Agarwal et al. 2021,
"Deep Reinforcement Learning at the Edge of the Statistical Precipice" (NeurIPS 2021).

Shape legend
------------
S : number of seeds / independent runs
N : number of points on a learning curve (evaluation windows)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jaxrl_policy.results.stats import bootstrap_ci, iqm

__all__ = ["X_AXES", "curve_with_ci", "binned_returns", "eval_curves"]

X_AXES = {"env_steps": "env steps", "grad_steps": "gradient steps",
          "wall_s": "wall-clock seconds (compile excluded)"}


def curve_with_ci(
    steps: Any,
    returns: Any,
    reps: int = 1000,
    level: float = 0.95,
    seed: int | None = 0,
) -> dict[str, np.ndarray]:
    """Per-point IQM over seeds with a percentile bootstrap CI.

    At each point the seeds whose value is NaN (no episode ended in that
    window) are dropped; the IQM and the bootstrap CI over runs
    (Agarwal et al. 2021) are computed from the rest. A point where every
    seed is NaN gives NaN for ``iqm``, ``low`` and ``high``. Every point uses
    the same ``seed`` (common random numbers), so results are deterministic.

    Args:
      steps: x-axis values (env steps), ``[N]``.
      returns: per-seed returns, ``[S, N]`` (a ``[N]`` array is treated as
        ``S = 1``); may contain NaN.
      reps: bootstrap replicates per point.
      level: two-sided confidence level, e.g. 0.95.
      seed: bootstrap seed.

    Returns:
      dict with ``steps`` ``[N]``, ``iqm`` ``[N]``, ``low`` ``[N]``,
      ``high`` ``[N]`` (float64 numpy arrays).
    """
    x = np.asarray(steps, dtype=np.float64).reshape(-1)
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim == 1:
        r = r[None, :]
    if r.ndim != 2 or r.shape[1] != x.shape[0]:
        raise ValueError(
            f"returns must be [S, N] with N = len(steps) = {x.shape[0]}, got shape {r.shape}"
        )
    n = x.shape[0]
    mid = np.full(n, np.nan)
    low = np.full(n, np.nan)
    high = np.full(n, np.nan)
    for i in range(n):
        col = r[:, i]
        col = col[~np.isnan(col)]
        if col.size == 0:
            continue
        mid[i] = iqm(col)
        low[i], high[i] = bootstrap_ci(col, statistic=iqm, reps=reps, level=level, seed=seed)
    return {"steps": x, "iqm": mid, "low": low, "high": high}


def binned_returns(rows: Sequence[Mapping[str, Any]], bins: int = 50, x: str = "env_steps",
                   upto: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-seed training-return curves from metrics rows: ``(x [N], returns [S, N])``.

    Rows are grouped into ``bins`` equal windows of ``x`` (env steps, gradient steps or wall seconds) from
    0 to the largest value (or ``upto``; rows beyond it are left out); each seed's value in a window is
    the episode-weighted mean return of the episodes that ended there (NaN if none did). Points are the
    windows' right edges.
    """
    seeds = sorted({r["seed"] for r in rows})
    keep = [r for r in rows if r.get(x) is not None and (upto is None or r[x] <= upto)]
    xs = np.array([r[x] for r in keep], dtype=np.float64)
    top = float(upto) if upto is not None else (float(xs.max()) if xs.size else 1.0)
    edges = np.linspace(0.0, top if top > 0 else 1.0, bins + 1)
    out = np.full((len(seeds), bins), np.nan)
    num = np.zeros((len(seeds), bins))
    den = np.zeros((len(seeds), bins))
    for r in keep:
        ret, n = r.get("episode_return"), r.get("episodes") or 0
        if ret is None or n == 0:
            continue
        s = seeds.index(r["seed"])
        b = min(bins - 1, max(0, int(np.searchsorted(edges, r[x], side="left")) - 1))
        num[s, b] += ret * n
        den[s, b] += n
    np.divide(num, den, out=out, where=den > 0)
    return edges[1:], out


def eval_curves(rows: Sequence[Mapping[str, Any]], x: str = "env_steps", upto_env_steps: float | None = None,
                bins: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Per-seed evaluation curves: ``(x [N], eval_return [S, N])`` at the logged evaluations.

    The points are the values of ``x`` at which evaluations were logged (the same for every seed of a
    run: evaluations happen at fixed env steps); a seed without a value there gets NaN, and where several
    evaluations share one value of ``x`` (gradient steps before learning starts) the last one is kept. With more than
    ``2 * bins`` distinct points they are averaged into ``bins`` equal windows. ``upto_env_steps``
    leaves out evaluations after that many env steps (a matched budget). ``N = 0`` if the run has none.
    """
    seeds = sorted({r["seed"] for r in rows})
    keep = [r for r in rows if r.get("eval_return") is not None and r.get(x) is not None
            and (upto_env_steps is None or r["env_steps"] <= upto_env_steps)]
    xs = sorted({float(r[x]) for r in keep})
    if len(xs) > 2 * bins:
        top = xs[-1]
        edges = np.linspace(0.0, top, bins + 1)
        num, den = np.zeros((len(seeds), bins)), np.zeros((len(seeds), bins))
        for r in keep:
            b = min(bins - 1, max(0, int(np.searchsorted(edges, r[x], side="left")) - 1))
            num[seeds.index(r["seed"]), b] += r["eval_return"]
            den[seeds.index(r["seed"]), b] += 1
        out = np.full((len(seeds), bins), np.nan)
        np.divide(num, den, out=out, where=den > 0)
        return edges[1:], out
    col = {v: i for i, v in enumerate(xs)}
    out = np.full((len(seeds), len(xs)), np.nan)
    for r in keep:
        out[seeds.index(r["seed"]), col[float(r[x])]] = r["eval_return"]
    return np.asarray(xs, dtype=np.float64), out
