"""``jaxrl-policy report``: run folders → tables and figures, in three steps.

:func:`report_runs` reads the run folders (:func:`jaxrl_policy.io.runfolder.read_runs`), computes every
number (:func:`jaxrl_policy.results.analysis.analyse_runs`, pure) and writes the files
(:func:`write_report`: ``results/tables.py``'s markdown, LaTeX and JSON, ``results/figures.py``'s
figures). Learning curves are aggregated over seeds with the interquartile mean (IQM) and a percentile
bootstrap confidence interval, following Agarwal et al. 2021, "Deep Reinforcement Learning at the Edge
of the Statistical Precipice" (NeurIPS 2021). A sweep folder's own report is
``results/sweep_report.py``, every logged window as a DataFrame ``results/frame.py``. matplotlib is
optional and only imported inside the functions that draw (``pip install "jaxrl-policy[plots]"``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jaxrl_policy.io.runfolder import read_runs
from jaxrl_policy.results.analysis import analyse_runs, check_options
from jaxrl_policy.results.figures import plot_final_scores, plot_poi, plot_profiles, plot_returns
from jaxrl_policy.results.tables import report_doc, report_markdown, table_tex

__all__ = ["report_runs", "write_report"]


def report_runs(run_dirs: str | os.PathLike | Sequence[str | os.PathLike], out: str | os.PathLike, *,
                bins: int = 50, plot_name: str = "returns.png", title: str | None = None, x: str = "env_steps",
                threshold: float | Mapping[str, float] | None = None, aggregate: bool = True,
                score: str = "eval", figures: bool = True) -> dict[str, Any]:
    """Tables and figures from run folders (compare and sweep folders are expanded to their runs).

    Writes into ``out``:

    - ``summary.json`` (``{"runs": [...]}``, the runs' summaries) and ``report.json`` (every number
      below);
    - ``summary.md``: the runs table, then per task × algorithm the final eval return, final training
      return, AUC and env steps to the threshold (IQM [95% CI] over seeds), the normalised aggregate
      over tasks, the probability-of-improvement matrix with CIs, and notes saying what each number is;
    - ``table.tex``: the same per task × algorithm numbers as a booktabs table;
    - figures as PNG and PDF (with matplotlib): ``returns`` (a: training and evaluation return vs
      ``x``, IQM and 95% CI bands; the PNG is ``plot_name``), ``final_scores`` (b), ``poi`` (c) and
      ``profiles`` (d).

    Budget accounting: curves are drawn against ``x`` (``env_steps``, ``grad_steps`` or ``wall_s``);
    scores are compared at a matched env-step budget: on each task, the smallest number of env steps any
    of its runs logged (the runs' own final scores when they all ran the same budget).

    Scores: ``final eval return`` is each seed's last evaluation (the greedy policy on fixed evaluation
    episodes); ``final training return`` the mean return of training episodes that ended in the last 5%
    of the budget (:data:`~jaxrl_policy.results.analysis.FINAL_FRACTION`). The AUC is the area under each
    seed's evaluation curve divided by its env-step range (the mean eval return over training;
    :func:`jaxrl_policy.results.efficiency.auc`); env steps to the threshold are the first evaluation at
    or above it (:func:`jaxrl_policy.results.efficiency.steps_to_threshold`; runs that never get there
    count as ``> budget``). Runs without evaluations use their training-return curve (marked).
    ``score`` (``"eval"`` or ``"train"``) picks the final score of the POI matrix and profiles.

    Several tasks: scores are normalised per env (:mod:`jaxrl_policy.results.scores`) and aggregated over
    tasks (IQM, stratified bootstrap), for the algorithms present on every task; profiles use normalised
    scores. ``aggregate=False`` reports each task on its own.

    Returns:
      ``{"runs", "markdown", "plot", "figures", "table", "cells", "aggregate", "poi", "tasks",
      "thresholds", "curves"}``: ``plot`` is the returns PNG (None without matplotlib), ``figures`` every
      figure file, ``cells`` the per task × algorithm statistics, ``poi`` the matrix of the first POI
      panel as ``{(x, y): Estimate}``, ``curves[task][label]`` the plotted ``{"train", "eval"}`` curves.

    Raises:
      ValueError: naming the path or envs and the rule: see :func:`jaxrl_policy.io.runfolder.find_run_dirs`,
        :func:`~jaxrl_policy.io.runfolder.read_metrics`; envs without normalisation scores mixed with
        ``aggregate=True``; a threshold for several envs.
    """
    check_options(x, score)
    runs = read_runs(run_dirs)
    a = analyse_runs(runs, bins=bins, x=x, threshold=threshold, aggregate=aggregate, score=score)
    w = write_report(out, a, figures=figures, plot_name=plot_name, title=title)
    poi = a["poi_panels"][0][1] if a["poi_panels"] else {}
    return {"runs": a["runs"], "markdown": w["markdown"], "plot": w["plot"], "figures": w["figures"],
            "table": w["table"], "cells": a["cells"], "aggregate": a["aggregate"], "poi": poi, "tasks": a["tasks"],
            "thresholds": a["thresholds"], "curves": a["curves"]}


def write_report(out: str | os.PathLike, a: Mapping[str, Any], *, figures: bool = True,
                 plot_name: str = "returns.png", title: str | None = None) -> dict[str, Any]:
    """Write the report of ``a`` (:func:`~jaxrl_policy.results.analysis.analyse_runs`) into ``out``
    (created): ``summary.json``, ``summary.md``, ``table.tex``, ``report.json`` and, with ``figures``
    and matplotlib, the figures (:func:`report_runs` says which).

    Returns:
      ``{"markdown", "table", "figures", "plot"}``: the text of ``summary.md`` and ``table.tex``, every
      figure file, the returns PNG (None without figures).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    md = report_markdown(a)
    tex = table_tex(a["cells"], a["aggregate"], a["thresholds"])
    (out / "summary.json").write_text(json.dumps({"runs": a["runs"]}, indent=2))
    (out / "summary.md").write_text(md)
    (out / "table.tex").write_text(tex)
    (out / "report.json").write_text(json.dumps(report_doc(a), indent=2))
    figs, plot = _write_figures(a, out, plot_name, title) if figures else ([], None)
    return {"markdown": md, "table": tex, "figures": figs, "plot": plot}


def _final_score_panels(a: Mapping[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """The panels of the final-score figure: one per task (final return), then the normalised aggregate."""
    est = {t: {c.label: {"eval": c.final_eval, "train": c.final_train} for c in a["cells"] if c.task == t}
           for t in a["tasks"]}
    panels = [(t, "final return", est[t]) for t in a["tasks"]]
    if a["aggregate"]:
        panels.append((f"aggregate over {len(a['tasks'])} tasks", "normalised score",
                       {r["label"]: {"eval": r["eval"], "train": r["train"]} for r in a["aggregate"]}))
    return panels


def _write_figures(a: Mapping[str, Any], out: Path, plot_name: str, title: str | None) -> tuple[list[str], str | None]:
    """The figures as PNG and PDF: ``(files, the returns PNG)``; none, with a note, without matplotlib."""
    figs: list[str] = []
    plot = None
    try:
        stem = Path(plot_name).stem
        figs += plot_returns(a["curves"], out, a["order"], a["x"], title, stem=stem)
        plot = str(out / f"{stem}.png")
        figs += plot_final_scores(_final_score_panels(a), out, a["order"])
        if a["poi_panels"]:
            figs += plot_poi(a["poi_panels"], out, a["score_name"])
        if a["profile_panels"]:
            figs += plot_profiles(a["profile_panels"], out, a["order"])
    except ImportError as e:  # matplotlib is an optional extra
        print(f"note: no figures written ({e})")
    return figs, plot
