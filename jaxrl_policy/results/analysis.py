"""The statistics of a report, from run folders already read: a pure step that reads and writes nothing.

:func:`analyse_runs` takes the :class:`~jaxrl_policy.io.runfolder.Run` tuples of
``io/runfolder.read_runs`` and returns every number a report shows: per task × algorithm the final eval
and training returns, the AUC and the env steps to a threshold (IQM [95% CI] over seeds, a
:class:`Cell` each) at the task's matched env-step budget; the learning curves; the normalised aggregate
over tasks; the probability-of-improvement matrices and the performance profiles. ``results/tables.py``
and ``results/figures.py`` turn them into text and pictures, ``results/report.py`` writes the files.
The estimators are :mod:`jaxrl_policy.results.stats`, :mod:`~jaxrl_policy.results.matrices` and
:mod:`~jaxrl_policy.results.efficiency` (Agarwal et al. 2021), the normalisation
:mod:`jaxrl_policy.results.scores`.

Shape legend
------------
S : number of seeds / independent runs
N : number of points on a learning curve (evaluation windows)
T : number of tasks (environments)
K : number of thresholds ``tau`` of a performance profile
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from jaxrl_policy.io.runfolder import Run
from jaxrl_policy.results import scores as sc
from jaxrl_policy.results.curves import X_AXES, binned_returns, curve_with_ci, eval_curves
from jaxrl_policy.results.efficiency import auc, steps_to_threshold, threshold_estimates
from jaxrl_policy.results.matrices import performance_profile, probability_of_improvement_estimate
from jaxrl_policy.results.scores import NORMALIZATION
from jaxrl_policy.results.stats import iqm_estimate

__all__ = ["FINAL_FRACTION", "DEFAULT_THRESHOLD_FRACTION", "THRESHOLD_RULE", "SCORES", "Cell", "analyse_runs",
           "check_options", "default_threshold", "parse_thresholds", "resolve_thresholds", "poi_matrix"]

FINAL_FRACTION = 0.05  # the final training return: episodes that ended in the last 5% of the env-step budget
DEFAULT_THRESHOLD_FRACTION = 0.5
THRESHOLD_RULE = (
    f"default threshold of an env: random + {DEFAULT_THRESHOLD_FRACTION:g} × (reference − random) from "
    "jaxrl_policy.results.scores.NORMALIZATION, i.e. a normalised score of "
    f"{DEFAULT_THRESHOLD_FRACTION:g} (half-way from a uniform-random policy to gymnax's published PPO "
    "checkpoint); --threshold X (one env) or ENV=X (each env) overrides it"
)
SCORES = ("eval", "train")


def _is_missing(v: Any) -> bool:
    """None or NaN (shown as "—" in tables, left out of figures); text is not missing."""
    if v is None:
        return True
    try:
        return math.isnan(float(v))
    except (TypeError, ValueError):
        return False


def _value_label(v: Any) -> str:
    """A swept value as text: floats with ``:g``, sequences joined by ``x`` (``[64, 64]`` → ``64x64``)."""
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return "x".join(str(x) for x in v)
    return str(v)


def default_threshold(env_id: str) -> float | None:
    """The threshold ``steps to threshold`` uses for ``env_id`` without ``--threshold`` (None if it has no
    normalisation scores): :data:`THRESHOLD_RULE`."""

    e = NORMALIZATION.get(env_id)
    if e is None:
        return None
    return e.random + DEFAULT_THRESHOLD_FRACTION * (e.reference - e.random)


def parse_thresholds(values: Sequence[str]) -> float | dict[str, float] | None:
    """``["400"]`` → 400.0 (every env); ``["CartPole-v1=400", "Acrobot-v1=-100"]`` → a dict per env."""
    if not values:
        return None
    out: dict[str, float] = {}
    plain: list[float] = []
    for v in values:
        env, sep, num = v.rpartition("=")
        try:
            x = float(num)
        except ValueError:
            raise ValueError(f"--threshold {v!r}: must be a number X or ENV=X") from None
        if not math.isfinite(x):
            raise ValueError(f"--threshold {v!r}: must be finite")
        if sep:
            out[env] = x
        else:
            plain.append(x)
    if plain and (out or len(plain) > 1):
        raise ValueError("--threshold: give one number X (one env) or ENV=X for each env, not both")
    return plain[0] if plain else out


def check_options(x: str, score: str) -> None:
    """ValueError unless ``x`` is one of :data:`~jaxrl_policy.results.curves.X_AXES` and ``score`` one of
    :data:`SCORES`."""
    if x not in X_AXES:
        raise ValueError(f"x = {x!r}: must be one of {', '.join(X_AXES)}")
    if score not in SCORES:
        raise ValueError(f"score = {score!r}: must be one of {', '.join(SCORES)}")


def resolve_thresholds(threshold: float | Mapping[str, float] | None, tasks: Sequence[str]
                       ) -> dict[str, float | None]:
    """The threshold of each task: ``threshold`` (one number: one task only; a dict: per env) or
    :func:`default_threshold`; ValueError for an env without runs or one number for several envs."""
    if isinstance(threshold, Mapping):
        extra = [k for k in threshold if k not in tasks]
        if extra:
            raise ValueError(f"--threshold for {', '.join(extra)}: no run of that env (envs: {', '.join(tasks)})")
        return {t: (threshold[t] if t in threshold else default_threshold(t)) for t in tasks}
    if threshold is not None:
        if len(tasks) > 1:
            raise ValueError(f"--threshold {threshold:g}: one number for several envs ({', '.join(tasks)}); "
                             "returns of different envs are on different scales: give ENV=X for each env")
        return {tasks[0]: float(threshold)}
    return {t: default_threshold(t) for t in tasks}


def _check_aggregable(tasks: Sequence[str]) -> None:
    """Runs of several envs are aggregated on normalised scores: every env needs them."""
    unknown = [t for t in tasks if t not in sc.NORMALIZATION]
    if unknown:
        raise ValueError(
            f"runs of different envs ({', '.join(tasks)}) are aggregated on normalised scores, and "
            f"{', '.join(unknown)} {'has' if len(unknown) == 1 else 'have'} no normalisation scores "
            f"(known: {', '.join(sorted(sc.NORMALIZATION))}); report each env on its own, pass "
            "--no-aggregate (aggregate=False), or add random/reference scores to "
            "jaxrl_policy.results.scores.NORMALIZATION")


def _labels(runs: Sequence[Run]) -> list[str]:
    """A name per run, unique within its env: the algo, its swept values, then its folder if needed."""
    def hp_text(s: Mapping[str, Any]) -> str:
        hp = s.get("hparams") or {}
        return " ".join(f"{k}={_value_label(v)}" for k, v in hp.items())

    labels = [(r.summary["algo"] + (" " + hp_text(r.summary) if r.summary.get("hparams") else "")) for r in runs]
    for extra in (lambda r: r.path.name, lambda r: f"{r.path.parent.name}/{r.path.name}", lambda r: str(r.path)):
        keys = [(r.summary["env"], lab) for r, lab in zip(runs, labels, strict=True)]
        dup = {k for k in keys if keys.count(k) > 1}
        if not dup:
            break
        labels = [f"{lab} ({extra(r)})" if (r.summary["env"], lab) in dup else lab
                  for r, lab in zip(runs, labels, strict=True)]
    return labels


def _finite(x: Any) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    return a[np.isfinite(a)]


def _num(v: Any) -> float:
    return float("nan") if _is_missing(v) else float(v)


def _final_train(rows: Sequence[Mapping[str, Any]], seeds: list[int], budget: float) -> list[float]:
    """Per seed: episode-weighted mean return of the windows that end in the last :data:`FINAL_FRACTION`
    of ``budget``."""
    out = []
    for s in seeds:
        sel = [r for r in rows if r["seed"] == s and (1.0 - FINAL_FRACTION) * budget < r["env_steps"] <= budget
               and r.get("episode_return") is not None and (r.get("episodes") or 0) > 0]
        n = sum(r["episodes"] for r in sel)
        out.append(sum(r["episode_return"] * r["episodes"] for r in sel) / n if n else float("nan"))
    return out


def _final_eval(rows: Sequence[Mapping[str, Any]], seeds: list[int], budget: float) -> list[float]:
    """Per seed: the last evaluation at or before ``budget`` env steps."""
    out = []
    for s in seeds:
        sel = [r for r in rows if r["seed"] == s and r["env_steps"] <= budget and r.get("eval_return") is not None]
        out.append(float(max(sel, key=lambda r: r["env_steps"])["eval_return"]) if sel else float("nan"))
    return out


def _estimate(x: Any) -> dict[str, Any]:
    """IQM with its 95% stratified bootstrap CI over runs (NaN runs dropped): ``{iqm, ci, n}``."""
    e = iqm_estimate(x)
    return {k: e[k] for k in ("iqm", "ci", "n")}


class Cell(NamedTuple):
    """What the tables show for one (task, algorithm)."""

    task: str
    label: str
    seeds: int
    final_eval: dict[str, Any]
    final_train: dict[str, Any]
    auc: dict[str, Any]
    auc_values: np.ndarray  # [S] per-seed AUC (return units)
    auc_curve: str  # "eval" or "train": which curve the AUC and the steps to threshold are measured on
    hits: np.ndarray  # [S] env steps to the threshold, inf = not reached (empty without a threshold)
    hit_est: dict[str, Any] | None  # efficiency.threshold_estimates of hits
    budget: float  # env steps of the last point of the curve measured (within the matched budget)


def _requested(run: Run) -> float:
    """The run's env-step budget: ``total_timesteps`` of its summary (else the last logged env steps)."""
    t = run.summary.get("total_timesteps")
    return float(t) if isinstance(t, (int, float)) and t > 0 else float(max(r["env_steps"] for r in run.rows))


def _task_cells(task: str, runs: Sequence[Run], labels: Sequence[str], threshold: float | None,
                bins: int) -> tuple[list[Cell], dict[str, dict[str, np.ndarray]], float, list[str]]:
    """Statistics of each run of one task at the task's matched budget; also the per-seed final scores.

    The matched budget is the smallest ``total_timesteps`` of the task's runs. Runs with that budget are
    taken as they are (their summaries' final scores: runs end on whole iterations, so the env steps
    they ran differ by less than one iteration); longer runs are cut at it (scores from their logged
    windows at or before it).
    """
    budget = min(_requested(run) for run in runs)
    notes = []
    cells, scores = [], {}
    for run, label in zip(runs, labels, strict=True):
        seeds = sorted({r["seed"] for r in run.rows})
        s = run.summary
        matched = _requested(run) == budget
        upto = None if matched else budget
        if matched and s.get("final_return") is not None and len(s["final_return"]) == len(seeds):
            train = [_num(v) for v in s["final_return"]]
        else:
            train = _final_train(run.rows, seeds, budget)
        if matched and s.get("final_eval_return") is not None and len(s["final_eval_return"]) == len(seeds):
            ev = [_num(v) for v in s["final_eval_return"]]
        else:
            ev = _final_eval(run.rows, seeds, budget)
        if not matched:
            notes.append(f"{task} / {label}: ran {_requested(run):,.0f} env steps; its scores are taken at the "
                         f"matched budget of {budget:,.0f} (from its logged windows)")
        scores[label] = {"eval": np.asarray(ev), "train": np.asarray(train)}
        steps, curves = eval_curves(run.rows, "env_steps", upto, bins)
        kind = "eval"
        if steps.size < 2 or np.isnan(curves).all():
            steps, curves = binned_returns(run.rows, bins, "env_steps", upto)
            kind = "train"
        area = auc(steps, curves) if steps.size >= 2 else np.full(len(seeds), np.nan)
        hits, hit_est = np.zeros(0), None
        if threshold is not None and steps.size:
            hits = steps_to_threshold(steps, curves, threshold)
            hit_est = threshold_estimates(hits)
        last = float(steps[-1]) if steps.size else budget
        cells.append(Cell(task, label, len(seeds), _estimate(ev), _estimate(train), _estimate(area),
                           np.asarray(area, dtype=np.float64), kind, hits, hit_est, last))
    return cells, scores, budget, notes


def _complete(scores: Mapping[str, Mapping[str, Mapping[str, np.ndarray]]], tasks: Sequence[str], label: str,
              which: str) -> np.ndarray | None:
    """``[S, T]`` finite scores of ``label`` on ``tasks`` (the first S finite runs of each task, S the
    smallest count), or None if a task has none."""
    cols = [_finite(scores[t][label][which]) if label in scores[t] else np.zeros(0) for t in tasks]
    s = min(c.size for c in cols)
    if s == 0:
        return None
    return np.stack([c[:s] for c in cols], axis=1)


def poi_matrix(score_by_label: Mapping[str, Any], reps: int = 2000, seed: int | None = 0
               ) -> dict[tuple[str, str], Any]:
    """Probability of improvement of every algorithm X over every other Y, with a 95% CI.

    ``{(x, y): Estimate}`` from :func:`jaxrl_policy.results.matrices.probability_of_improvement_estimate`
    on the per-run scores ``[S, T]`` (or ``[S]``, one task) of each label: P(a run of X scores higher
    than a run of Y on a task), averaged over tasks, with a stratified bootstrap over runs.
    """
    mats = {k: (np.asarray(v, dtype=np.float64)[:, None] if np.ndim(v) == 1 else np.asarray(v, dtype=np.float64))
            for k, v in score_by_label.items()}
    return {(x, y): probability_of_improvement_estimate(mats[x], mats[y], reps=reps, seed=seed)
            for x in mats for y in mats if x != y}


def _profile(mat: np.ndarray, taus: np.ndarray) -> dict[str, np.ndarray]:
    e = performance_profile(mat, taus)
    return {"taus": taus, "point": e.point, "low": e.low, "high": e.high}


def _taus(values: Sequence[np.ndarray]) -> np.ndarray:
    allv = np.concatenate([np.asarray(v, dtype=np.float64).reshape(-1) for v in values])
    lo, hi = float(allv.min()), float(allv.max())
    pad = 0.05 * (hi - lo) if hi > lo else max(1.0, abs(hi)) * 0.05
    return np.linspace(lo - pad, hi + pad, 201)


def _curves(rows: Sequence[Mapping[str, Any]], bins: int, x: str) -> dict[str, Any]:
    """A run's plotted curves against ``x``: ``{"train": curve, "eval": curve or None}`` (curve_with_ci)."""
    tr = binned_returns(rows, bins, x)
    ev = eval_curves(rows, x, None, bins)
    return {"train": curve_with_ci(*tr), "eval": curve_with_ci(*ev) if ev[0].size else None}


def _aggregate_rows(tasks: Sequence[str], order: Sequence[str], scores: Mapping[str, Any], cells: Sequence[Cell]
                    ) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """The normalised aggregate over tasks of each label present on every task: ``(rows, labels, notes)``.

    A row: ``{"label", "eval", "train", "auc"}`` (IQM [95% CI] of the normalised scores of all runs of
    all tasks; ``auc`` None if a task has no AUC) and ``"hits"`` (``"k/n runs reached"`` their task's
    threshold, ``"—"`` without thresholds).
    """
    full = [lab for lab in order if all(lab in scores[t] for t in tasks)]
    left = [lab for lab in order if lab not in full]
    notes = [f"not in the aggregate over tasks (not run on every task): {', '.join(left)}"] if left else []
    by_label = {(c.task, c.label): c for c in cells}
    rows: list[dict[str, Any]] = []
    for lab in full:
        row: dict[str, Any] = {"label": lab}
        for kind in ("eval", "train"):
            row[kind] = _estimate(sc.normalize_tasks({t: scores[t][lab][kind] for t in tasks})[0])
        aucs = {t: by_label[(t, lab)].auc_values for t in tasks}
        row["auc"] = _estimate(sc.normalize_tasks(aucs)[0]) if all(a.size for a in aucs.values()) else None
        hits = [by_label[(t, lab)].hits for t in tasks if by_label[(t, lab)].hit_est is not None]
        k, n = sum(int(np.isfinite(h).sum()) for h in hits), sum(h.size for h in hits)
        row["hits"] = f"{k}/{n} runs reached" if n else "—"
        rows.append(row)
    return rows, full, notes


def _panels(tasks: Sequence[str], order: Sequence[str], scores: Mapping[str, Any], full: Sequence[str],
            multi: bool, score: str, score_name: str) -> tuple[list[Any], list[Any], list[str]]:
    """POI matrices and performance profiles: one panel over all tasks (normalised, ``multi``), else one
    per task. ``(poi_panels, profile_panels, notes)``: a POI panel is ``(name, {(x, y): Estimate},
    labels)``, a profile panel ``(name, x label, {label: {"taus", "point", "low", "high"} [K]})``."""
    poi_panels: list[tuple[str, dict[tuple[str, str], Any], list[str]]] = []
    profile_panels: list[tuple[str, str, dict[str, dict[str, np.ndarray]]]] = []
    notes: list[str] = []
    groups = [(f"{len(tasks)} tasks (normalised)", list(tasks), list(full))] if multi else \
        [(t, [t], [lab for lab in order if lab in scores[t]]) for t in tasks]
    for name, ts, labs in groups:
        mats = {lab: m for lab in labs if (m := _complete(scores, ts, lab, score)) is not None}
        dropped = [lab for lab in labs if lab not in mats]
        if dropped:
            notes.append(f"{name}: no finite {score_name} for {', '.join(dropped)} (left out of POI and profiles)")
        if len(mats) >= 2:
            poi_panels.append((name, poi_matrix(mats), list(mats)))
        if mats:
            if multi:
                norm = {lab: np.stack([sc.normalize(m[:, j], t) for j, t in enumerate(ts)], axis=1)
                        for lab, m in mats.items()}
                taus = _taus(list(norm.values()))
                profile_panels.append((name, f"normalised {score_name} τ",
                                       {lab: _profile(m, taus) for lab, m in norm.items()}))
            else:
                taus = _taus(list(mats.values()))
                profile_panels.append((name, f"{score_name} τ", {lab: _profile(m, taus) for lab, m in mats.items()}))
    return poi_panels, profile_panels, notes


def analyse_runs(runs: Sequence[Run], *, bins: int = 50, x: str = "env_steps",
                 threshold: float | Mapping[str, float] | None = None, aggregate: bool = True,
                 score: str = "eval") -> dict[str, Any]:
    """Every number of a report on ``runs`` (read by ``io/runfolder.read_runs``); reads and writes nothing.

    The options are :func:`jaxrl_policy.results.report.report_runs`'s, which says what each number is.

    Returns:
      ``{"runs", "labels", "order", "tasks", "thresholds", "budgets", "cells", "scores", "curves",
      "aggregate", "poi_panels", "profile_panels", "x", "score", "score_name", "notes"}``: ``runs`` the
      runs' summaries; ``labels`` a name per run, unique within its env, ``order`` the distinct ones;
      ``thresholds[task]`` and ``budgets[task]`` (the matched env-step budget); ``cells`` a :class:`Cell`
      per task × algorithm; ``scores[task][label]`` the per-seed final ``{"eval", "train"}`` scores
      ``[S]``; ``curves[task][label]`` the ``{"train", "eval"}`` curves against ``x`` (``[N]`` arrays of
      :func:`~jaxrl_policy.results.curves.curve_with_ci`); ``aggregate`` the normalised rows over tasks
      (empty for one task or ``aggregate=False``); ``poi_panels`` and ``profile_panels`` (see
      :func:`_panels`); ``score`` the final score of the POI and profiles (``"train"`` when no run logged
      an evaluation) and ``score_name`` its name; ``notes`` what the reader should know (torn lines,
      cut budgets, left-out runs).

    Raises:
      ValueError: a bad ``x`` or ``score``; envs without normalisation scores mixed with
        ``aggregate=True``; a threshold for an env without runs, or one number for several envs.
    """
    check_options(x, score)
    labels = _labels(runs)
    order = list(dict.fromkeys(labels))
    tasks = list(dict.fromkeys(r.summary["env"] for r in runs))
    if aggregate and len(tasks) > 1:
        _check_aggregable(tasks)
    thresholds = resolve_thresholds(threshold, tasks)
    torn = [str(r.path / "metrics.jsonl") for r in runs if r.torn]
    notes = [f"skipped a torn last line (a crash mid-write) in {', '.join(torn)}"] if torn else []
    cells: list[Cell] = []
    scores: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    curves: dict[str, dict[str, dict[str, Any]]] = {}
    budgets: dict[str, float] = {}
    for t in tasks:
        idx = [i for i, r in enumerate(runs) if r.summary["env"] == t]
        t_cells, scores[t], budgets[t], t_notes = _task_cells(t, [runs[i] for i in idx], [labels[i] for i in idx],
                                                              thresholds[t], bins)
        cells += t_cells
        notes += t_notes
        curves[t] = {labels[i]: _curves(runs[i].rows, bins, x) for i in idx}
    if score == "eval" and all(np.isnan(v["eval"]).all() for t in tasks for v in scores[t].values()):
        score = "train"
        notes.append("no run logged an evaluation: the POI matrix and profiles use the final training return")
    score_name = "final eval return" if score == "eval" else "final training return"
    multi = aggregate and len(tasks) > 1
    agg_rows, full, agg_notes = _aggregate_rows(tasks, order, scores, cells) if multi else ([], [], [])
    poi_panels, profile_panels, panel_notes = _panels(tasks, order, scores, full, multi, score, score_name)
    return {"runs": [r.summary for r in runs], "labels": labels, "order": order, "tasks": tasks,
            "thresholds": thresholds, "budgets": budgets, "cells": cells, "scores": scores, "curves": curves,
            "aggregate": agg_rows, "poi_panels": poi_panels, "profile_panels": profile_panels, "x": x,
            "score": score, "score_name": score_name, "notes": notes + agg_notes + panel_notes}
