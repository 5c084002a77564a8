"""The text of a report: markdown tables (runs, scores, probability of improvement, notes), the booktabs
LaTeX table and the JSON document of every number, from :func:`jaxrl_policy.results.analysis.analyse_runs`.

Numbers are IQM [95% CI] over seeds; None / NaN are shown as "—" (markdown) or "--" (LaTeX) and stored
as null (JSON), env steps to a threshold never reached as "> budget" ("inf" in JSON).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jaxrl_policy.results.analysis import FINAL_FRACTION, THRESHOLD_RULE, Cell, _is_missing
from jaxrl_policy.results.curves import X_AXES

__all__ = ["FINAL_RETURN_NOTE", "summary_markdown", "poi_markdown", "latex_escape", "table_tex", "report_markdown",
           "report_doc"]

FINAL_RETURN_NOTE = (
    f"Final return: mean undiscounted return of training episodes that ended in the last {100 * FINAL_FRACTION:g}% "
    "of the env-step budget; IQM over seeds, 95% stratified bootstrap CI."
)


def _fmt(v: Any, spec: str) -> str:
    """Format a number with ``spec``; None / NaN become an em dash."""
    if _is_missing(v):
        return "—"
    try:
        return format(float(v), spec)
    except (TypeError, ValueError):
        return str(v)


def _fmt_int(v: Any) -> str:
    """Integer with thousands separators (``1234567.8`` → ``1,234,568``)."""
    if _is_missing(v):
        return "—"
    return f"{round(float(v)):,}"


def _cell(s: Any) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def summary_markdown(runs: Sequence[Mapping[str, Any]]) -> str:
    """Markdown table of run results, one row per (algo, env) run group.

    Args:
      runs: list of dicts with keys ``algo``, ``env``, ``seeds`` (list of
        int), ``total_timesteps`` (env-step budget per seed; ``env_steps``, the steps
        actually run in whole iterations, is shown when present),
        ``final_return`` (list, one value per seed; NaN allowed),
        ``final_return_iqm``, ``final_return_ci`` (``[low, high]``),
        ``env_steps_per_s``, ``compile_s``, ``wall_s``. Missing keys or
        None/NaN values are shown as "—".

    Returns:
      A markdown string: header, separator, one row per run, then a blank
      line and a note saying what "final return" means. Returns are shown
      with 1 decimal, env steps and env-steps/s as integers with thousands
      separators, seconds with 1 decimal.
    """
    header = [
        "algo",
        "env",
        "seeds",
        "env steps",
        "final return IQM [95% CI]",
        "per-seed final returns",
        "env-steps/s",
        "compile s",
        "wall s",
    ]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] * 2 + ["--:"] * 2 + ["---"] * 2 + ["--:"] * 3) + "|",
    ]
    for run in runs:
        seeds = run.get("seeds") or []
        seeds_s = ", ".join(str(int(s)) for s in seeds) if len(seeds) else "—"
        ci = run.get("final_return_ci")
        if ci is not None and len(ci) == 2:
            ci_s = f" [{_fmt(ci[0], '.1f')}, {_fmt(ci[1], '.1f')}]"
        else:
            ci_s = ""
        final = _fmt(run.get("final_return_iqm"), ".1f") + ci_s
        per_seed = run.get("final_return") or []
        per_seed_s = ", ".join(_fmt(v, ".1f") for v in per_seed) if len(per_seed) else "—"
        row = [
            _cell(run.get("algo", "—")),
            _cell(run.get("env", "—")),
            seeds_s,
            _fmt_int(run.get("env_steps", run.get("total_timesteps"))),  # steps run (whole iterations)
            final,
            per_seed_s,
            _fmt_int(run.get("env_steps_per_s")),
            _fmt(run.get("compile_s"), ".1f"),
            _fmt(run.get("wall_s"), ".1f"),
        ]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n\n" + FINAL_RETURN_NOTE + "\n"


def _fmt_ci(e: Mapping[str, Any], spec: str) -> str:
    if e is None or _is_missing(e.get("iqm")):
        return "—"
    return f"{_fmt(e['iqm'], spec)} [{_fmt(e['ci'][0], spec)}, {_fmt(e['ci'][1], spec)}]"


def _fmt_steps_value(v: float, budget: float) -> str:
    return f"> {budget:,.0f}" if math.isinf(v) else f"{v:,.0f}"


def _fmt_hits(c: Cell) -> str:
    """IQM [95% CI] of the env steps to the threshold; runs that never reached it shown honestly."""
    if c.hit_est is None:
        return "—"
    n = c.hits.size
    k = int(np.isfinite(c.hits).sum())
    if k == 0:
        return f"> {c.budget:,.0f} (0/{n} runs reached)"
    e = c.hit_est["iqm"]
    text = (f"{_fmt_steps_value(e.point, c.budget)} [{_fmt_steps_value(e.low, c.budget)}, "
            f"{_fmt_steps_value(e.high, c.budget)}]")
    return text if k == n else f"{text} ({k}/{n} runs reached)"


def poi_markdown(poi: Mapping[tuple[str, str], Any], labels: Sequence[str]) -> str:
    """The POI matrix as a markdown table: row X, column Y, cell P(X > Y) [95% CI]."""
    head = ["P(row > column)", *labels]
    lines = ["| " + " | ".join(_cell(h) for h in head) + " |", "|---|" + "--:|" * len(labels)]
    for x in labels:
        cells = [_cell(x)]
        for y in labels:
            e = poi.get((x, y))
            cells.append("—" if e is None else f"{e.point:.2f} [{e.low:.2f}, {e.high:.2f}]")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "[": "{[}",
                 "]": "{]}", "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}"}


def latex_escape(text: Any) -> str:
    """Text safe in a LaTeX table cell: the ten special characters, brackets (so that a cell after ``\\\\``
    is not read as its optional argument), ``<``, ``>``, ``|``; ``—`` (missing) becomes ``--``."""
    s = "".join(LATEX_SPECIAL.get(ch, ch) for ch in str(text))
    return s.replace("—", "--").replace("×", r"$\times$").replace("−", "-")


def _tex_num(text: str) -> str:
    """Numbers for LaTeX text mode: a minus sign, not a hyphen."""
    return text.replace("-", "$-$")


def _tex_ci(e: Mapping[str, Any] | None, spec: str) -> str:
    if e is None or _is_missing(e.get("iqm")):
        return "--"
    return _tex_num(f"{_fmt(e['iqm'], spec)} [{_fmt(e['ci'][0], spec)}, {_fmt(e['ci'][1], spec)}]")


def _tex_hits(c: Cell) -> str:
    return latex_escape(_fmt_hits(c)).replace(r"\textgreater{} ", "$>$ ").replace("{[}", "[").replace("{]}", "]")


def table_tex(cells: Sequence[Cell], aggregate_rows: Sequence[Mapping[str, Any]] = (),
              thresholds: Mapping[str, float | None] | None = None) -> str:
    """A booktabs table (``\\toprule``/``\\midrule``/``\\bottomrule``): one row per algorithm × task with
    IQM [95% CI] of the final eval and training returns, the AUC and the env steps to the threshold, then
    the normalised aggregate over tasks. Needs ``\\usepackage{booktabs}``."""
    thresholds = thresholds or {}
    head = ["Task", "Algorithm", "Final eval return", "Final training return", "AUC (eval)",
            "Env steps to threshold"]
    lines = ["% jaxrl-policy report: IQM [95% CI] over seeds (stratified percentile bootstrap over runs).",
             "% Needs \\usepackage{booktabs}.",
             "\\begin{tabular}{llrrrr}", "\\toprule",
             " & ".join(head) + r" \\", "\\midrule"]
    task = None
    for c in cells:
        if task is not None and c.task != task:
            lines.append("\\midrule")
        thr = thresholds.get(c.task)
        name = latex_escape(c.task) + (f" ($\\geq$ {_tex_num(f'{thr:.4g}')})" if thr is not None else "")
        row = [name if c.task != task else "", latex_escape(c.label), _tex_ci(c.final_eval, ".1f"),
               _tex_ci(c.final_train, ".1f"), _tex_ci(c.auc, ".1f") + ("" if c.auc_curve == "eval" else "$^*$"),
               _tex_hits(c)]
        task = c.task
        lines.append(" & ".join(row) + r" \\")
    if aggregate_rows:
        lines.append("\\midrule")
        for i, a in enumerate(aggregate_rows):
            row = ["Aggregate (normalised)" if i == 0 else "", latex_escape(a["label"]), _tex_ci(a["eval"], ".2f"),
                   _tex_ci(a["train"], ".2f"), _tex_ci(a["auc"], ".2f"), latex_escape(a["hits"])]
            lines.append(" & ".join(row) + r" \\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    if any(c.auc_curve == "train" for c in cells):
        lines.append("% $^*$: no evaluations logged; AUC and steps to threshold on the training-return curve.")
    return "\n".join(lines) + "\n"


def _jf(v: Any) -> Any:
    v = float(v)
    return v if math.isfinite(v) else ("inf" if v == math.inf else None)


def _est_doc(e: Mapping[str, Any] | None) -> Any:
    if e is None:
        return None
    return {"iqm": _jf(e["iqm"]), "ci": [_jf(v) for v in e["ci"]], "n": int(e["n"])}


def report_doc(a: Mapping[str, Any]) -> dict[str, Any]:
    """Every number of the report (``a``: :func:`~jaxrl_policy.results.analysis.analyse_runs`), JSON-safe
    (NaN → null, never reached → "inf")."""
    return {
        "x": a["x"], "score": a["score"], "thresholds": a["thresholds"],
        "cells": [{"task": c.task, "algo": c.label, "seeds": c.seeds, "budget_env_steps": c.budget,
                   "final_eval_return": _est_doc(c.final_eval), "final_return": _est_doc(c.final_train),
                   "auc": _est_doc(c.auc), "auc_curve": c.auc_curve,
                   "steps_to_threshold": [_jf(h) for h in c.hits],
                   "steps_to_threshold_iqm": None if c.hit_est is None else [_jf(v) for v in c.hit_est["iqm"]],
                   "fraction_reached": None if c.hit_est is None else
                   [_jf(v) for v in c.hit_est["fraction_reached"]]}
                  for c in a["cells"]],
        "aggregate": [{"label": r["label"], "final_eval_return": _est_doc(r["eval"]),
                       "final_return": _est_doc(r["train"]), "auc": _est_doc(r["auc"]), "steps_to_threshold": r["hits"]}
                      for r in a["aggregate"]],
        "poi": [{"panel": name, "x": x, "y": y, "p": _jf(e.point), "ci": [_jf(e.low), _jf(e.high)]}
                for name, poi, _ in a["poi_panels"] for (x, y), e in poi.items()],
    }


def _scores_table(tasks: Sequence[str], cells: Sequence[Cell], agg_rows: Sequence[Mapping[str, Any]],
                  thresholds: Mapping[str, float | None]) -> str:
    """The markdown table of final scores and sample efficiency: a row per task × algorithm, then the
    normalised aggregate rows."""
    head = ["task", "algo", "seeds", "final eval return", "final training return", "AUC (eval)",
            "env steps to threshold"]
    lines = ["| " + " | ".join(head) + " |", "|---|---|--:|--:|--:|--:|--:|"]
    for c in cells:
        thr = thresholds.get(c.task)
        task = f"{c.task} (≥ {thr:.4g})" if thr is not None else c.task
        lines.append("| " + " | ".join(_cell(v) for v in (
            task, c.label, c.seeds, _fmt_ci(c.final_eval, ".1f"), _fmt_ci(c.final_train, ".1f"),
            _fmt_ci(c.auc, ".1f") + ("" if c.auc_curve == "eval" else " *"), _fmt_hits(c))) + " |")
    for r in agg_rows:
        lines.append("| " + " | ".join(_cell(v) for v in (
            f"aggregate over {len(tasks)} tasks (normalised)", r["label"], "—", _fmt_ci(r["eval"], ".2f"),
            _fmt_ci(r["train"], ".2f"), _fmt_ci(r["auc"], ".2f") if r["auc"] else "—", r["hits"])) + " |")
    return "\n".join(lines) + "\n"


def _definitions(a: Mapping[str, Any]) -> list[str]:
    """The notes saying what each number of the report is."""
    defs = [
        "IQM: interquartile mean over seeds; [95% CI]: percentile bootstrap over runs (seeds), stratified by "
        "task (Agarwal et al. 2021).",
        "Scores are compared at a matched env-step budget per task, the smallest total_timesteps of its runs "
        "(runs stop on whole iterations, a few steps short of it): "
        + ", ".join(f"{t} {b:,.0f}" for t, b in a["budgets"].items()) + ".",
        "final eval return: each seed's last evaluation (greedy policy, fixed evaluation episodes).",
        f"final training return: mean undiscounted return of training episodes that ended in the last "
        f"{100 * FINAL_FRACTION:g}% of the env-step budget.",
        "AUC (eval): area under each seed's evaluation curve divided by its env-step range, i.e. the mean "
        "eval return over training (same units as the return; higher = more sample-efficient).",
        "env steps to threshold: the first evaluation at or above the threshold (≥ in the task column); "
        "\"> N\" = not reached by the last evaluation, at N env steps; k/n: the runs that reached it. "
        + THRESHOLD_RULE[0].upper() + THRESHOLD_RULE[1:] + ".",
        f"Learning curves are drawn against {X_AXES[a['x']]}.",
    ]
    if any(c.auc_curve == "train" for c in a["cells"]):
        defs.append("*: the run logged no evaluations; AUC and steps to threshold use its training-return curve.")
    if a["aggregate"]:
        defs.append("aggregate: scores normalised per env, (score − random) / (reference − random) from "
                    "jaxrl_policy.results.scores (0 = uniform-random policy, 1 = gymnax's published PPO checkpoint), "
                    "IQM over all runs of all tasks; the steps column counts the runs that reached their "
                    "task's threshold.")
    return defs


def report_markdown(a: Mapping[str, Any]) -> str:
    """``summary.md`` of a report (``a``: :func:`~jaxrl_policy.results.analysis.analyse_runs`): the runs
    table, the scores table, the POI matrices and the notes."""
    tasks, runs = a["tasks"], a["runs"]
    labels_n = len({c.label for c in a["cells"]})
    parts = [f"# Report: {', '.join(tasks)} ({labels_n} algorithm{'s' if labels_n != 1 else ''}, "
             f"{len(runs)} run folder{'s' if len(runs) != 1 else ''})\n",
             "## Runs\n", summary_markdown(runs),
             "## Final score and sample efficiency (IQM [95% CI] over seeds)\n",
             _scores_table(tasks, a["cells"], a["aggregate"], a["thresholds"])]
    for name, poi, labs in a["poi_panels"]:
        parts.append(f"## Probability of improvement: {name}, {a['score_name']}\n")
        parts.append("P(a run of the row's algorithm scores higher than a run of the column's"
                     + (", averaged over tasks" if len(tasks) > 1 and "tasks" in name else "")
                     + "), 95% stratified bootstrap CI over runs.\n")
        parts.append(poi_markdown(poi, labs))
    parts.append("## Notes\n")
    parts.append("\n".join(f"- {d}" for d in _definitions(a) + a["notes"]) + "\n")
    return "\n".join(parts)
