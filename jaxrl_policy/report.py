"""Turn run results into learning curves, markdown tables and plots (numpy only).

Learning curves are aggregated over seeds with the interquartile mean (IQM)
and a percentile bootstrap confidence interval, following Agarwal et al. 2021,
"Deep Reinforcement Learning at the Edge of the Statistical Precipice"
(NeurIPS 2021). matplotlib is optional and only imported inside
:func:`plot_curves` (install with ``pip install "jaxrl-policy[plots]"``).

Shape legend
------------
S : number of seeds / independent runs
N : number of points on a learning curve (evaluation windows)
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jaxrl_policy.stats import bootstrap_ci, iqm

__all__ = ["curve_with_ci", "summary_markdown", "plot_curves", "report_runs", "report_sweep", "FINAL_RETURN_NOTE"]

FINAL_RETURN_NOTE = (
    "Final return: mean undiscounted return of training episodes that ended in the last 5% "
    "of the env-step budget; IQM over seeds, 95% stratified bootstrap CI."
)


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


def _is_missing(v: Any) -> bool:
    if v is None:
        return True
    try:
        return math.isnan(float(v))
    except (TypeError, ValueError):
        return False


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


def plot_curves(
    curves: Mapping[str, Mapping[str, Any]],
    path: str | os.PathLike[str],
    title: str | None = None,
    xlabel: str = "env steps",
    ylabel: str = "episode return",
) -> str:
    """Plot IQM learning curves with shaded bootstrap-CI bands to a file.

    One line per label plus a translucent ``[low, high]`` band (the
    IQM + percentile bootstrap CI of Agarwal et al. 2021, as produced by
    :func:`curve_with_ci`). NaN points show as gaps. Uses the non-interactive
    Agg canvas directly (no pyplot global state, safe in headless runs).

    Args:
      curves: maps a label (algo name) to a dict with ``steps`` ``[N]``,
        ``iqm`` ``[N]``, ``low`` ``[N]``, ``high`` ``[N]``.
      path: output file; the format follows its extension (e.g. ``.png``).
        Parent directories are created.
      title: optional figure title.
      xlabel, ylabel: axis labels.

    Returns:
      ``str(path)``.

    Raises:
      ImportError: if matplotlib is not installed.
    """
    try:
        # The Agg canvas is used directly (not via pyplot), so the process-wide
        # backend of an interactive session is left untouched.
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError(
            'plot_curves needs matplotlib; install it with: pip install "jaxrl-policy[plots]"'
        ) from e

    fig = Figure(figsize=(6, 4), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for label, c in curves.items():
        x = np.asarray(c["steps"], dtype=np.float64)
        y = np.asarray(c["iqm"], dtype=np.float64)
        (line,) = ax.plot(x, y, label=str(label), linewidth=1.5)
        if "low" in c and "high" in c:
            lo = np.asarray(c["low"], dtype=np.float64)
            hi = np.asarray(c["high"], dtype=np.float64)
            ok = ~(np.isnan(lo) | np.isnan(hi))
            ax.fill_between(x, lo, hi, where=ok, color=line.get_color(), alpha=0.2, linewidth=0)
    if title:
        ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if curves:
        ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    out = os.fspath(path)
    parent = os.path.dirname(out)
    if parent:
        os.makedirs(parent, exist_ok=True)
    fig.savefig(out)
    return str(out)


# ---- run folders -> curves, tables, plots ------------------------------------------------


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of a ``metrics.jsonl``; a torn last line (a crash mid-write) is skipped."""
    import json

    rows = []
    with open(path) as f:
        for line in f:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break
    return rows


def binned_returns(rows: Sequence[Mapping[str, Any]], bins: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Per-seed learning curves from metrics rows: ``(steps [N], returns [S, N])``.

    Rows are grouped into ``bins`` equal env-step windows; each seed's value in a window is the
    episode-weighted mean return of the episodes that ended there (NaN if none did).
    """
    seeds = sorted({r["seed"] for r in rows})
    steps = np.array([r["env_steps"] for r in rows], dtype=np.float64)
    top = steps.max() if steps.size else 1.0
    edges = np.linspace(0.0, top, bins + 1)
    out = np.full((len(seeds), bins), np.nan)
    num = np.zeros((len(seeds), bins))
    den = np.zeros((len(seeds), bins))
    for r in rows:
        ret, n = r.get("episode_return"), r.get("episodes") or 0
        if ret is None or n == 0:
            continue
        s = seeds.index(r["seed"])
        b = min(bins - 1, max(0, int(np.searchsorted(edges, r["env_steps"], side="left")) - 1))
        num[s, b] += ret * n
        den[s, b] += n
    np.divide(num, den, out=out, where=den > 0)
    return edges[1:], out


def report_runs(run_dirs: Sequence[str | os.PathLike], out: str | os.PathLike, *, bins: int = 50,
                plot_name: str = "returns.png", title: str | None = None) -> dict[str, Any]:
    """Read run folders (each with ``summary.json`` and ``metrics.jsonl``) and write, into ``out``:
    ``summary.json`` (``{"runs": [...]}``), ``summary.md`` and a plot of return vs env steps with
    95% CI bands (if matplotlib is installed). Returns ``{"runs", "markdown", "plot"}``.
    """
    import json
    from pathlib import Path

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs, curves = [], {}
    dirs = list(map(Path, run_dirs))
    summaries = [json.loads((d / "summary.json").read_text()) for d in dirs]
    algos = [r["algo"] for r in summaries]
    for d, summary in zip(dirs, summaries, strict=True):
        runs.append(summary)
        steps, rets = binned_returns(read_jsonl(d / "metrics.jsonl"), bins)
        # several runs of one algorithm (e.g. a knob sweep): name every curve by its folder
        label = summary["algo"] if algos.count(summary["algo"]) == 1 else f"{summary['algo']} ({d.name})"
        curves[label] = curve_with_ci(steps, rets)
    md = summary_markdown(runs)
    (out / "summary.json").write_text(json.dumps({"runs": runs}, indent=2))
    (out / "summary.md").write_text(md + "\n")
    plot = None
    try:
        envs = sorted({r["env"] for r in runs})
        plot = plot_curves(curves, out / plot_name, title=title or ", ".join(envs))
    except ImportError as e:  # matplotlib is an optional extra
        print(f"note: no plot written ({e})")
    return {"runs": runs, "markdown": md, "plot": plot}


# ---- sweeps: final return and diagnostics against each swept field ---------------------------

SWEEP_DIAGNOSTICS = ("data_age", "ratio_max", "ess", "policy_kl")  # the IS diagnostics a sweep plot shows


def _value_label(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return "x".join(str(x) for x in v)
    return str(v)


def sweep_markdown(runs: Sequence[Mapping[str, Any]], fields: Sequence[str], best: int) -> str:
    """One row per point: its swept values, final return IQM [95% CI], per-seed returns, diagnostics."""
    head = ["point", *fields, "final return IQM [95% CI]", "per-seed", *SWEEP_DIAGNOSTICS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, r in enumerate(runs):
        hp = r.get("hparams", {})
        ci = r.get("final_return_ci") or [None, None]
        diag = r.get("diagnostics", {})
        cells = [f"p{i:03d}" + (" ★" if i == best else ""), *(_value_label(hp.get(f, "—")) for f in fields),
                 f"{_fmt(r.get('final_return_iqm'), '.1f')} [{_fmt(ci[0], '.1f')}, {_fmt(ci[1], '.1f')}]",
                 " ".join(_fmt(x, ".0f") for x in r.get("final_return", [])),
                 *(_fmt(diag.get(k), ".4g") for k in SWEEP_DIAGNOSTICS)]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n\n★: the best point (highest final-return IQM). " + FINAL_RETURN_NOTE + "\n"


def plot_sweep(runs: Sequence[Mapping[str, Any]], fields: Sequence[str], axes: Mapping[str, str],
               path: str | os.PathLike, title: str | None = None) -> str:
    """One column per swept field: final return (IQM with 95% CI bars) in the first row, the IS
    diagnostics that were measured (data age, ρ max, ESS, KL) in the rows below. Points that differ in
    other fields are separate lines; ``axes[field] == "log"`` draws that x axis logarithmically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = ["final_return"] + [k for k in SWEEP_DIAGNOSTICS
                               if any(r.get("diagnostics", {}).get(k) is not None for r in runs)]
    ylabels = {"final_return": "final return (IQM, 95% CI)", "data_age": "data age (grad steps)",
               "ratio_max": "max importance ratio ρ", "ess": "effective sample size",
               "policy_kl": "KL(acting‖learning)"}
    fig = Figure(figsize=(4.2 * len(fields), 2.6 * len(rows)), dpi=120)
    FigureCanvasAgg(fig)
    for col, f in enumerate(fields):
        others = [g for g in fields if g != f]
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(runs):
            hp = r.get("hparams", {})
            groups.setdefault(", ".join(f"{g}={_value_label(hp.get(g))}" for g in others), []).append(i)
        values = [runs[i].get("hparams", {}).get(f) for i in range(len(runs))]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        cats = sorted({_value_label(v) for v in values}) if not numeric else []
        for row, key in enumerate(rows):
            ax = fig.add_subplot(len(rows), len(fields), row * len(fields) + col + 1)
            for label, ids in groups.items():
                ids = sorted(ids, key=lambda i: values[i] if numeric else cats.index(_value_label(values[i])))
                x = [values[i] if numeric else cats.index(_value_label(values[i])) for i in ids]
                if key == "final_return":
                    y = np.array([runs[i].get("final_return_iqm") for i in ids], dtype=float)
                    ci = np.array([runs[i].get("final_return_ci") or [np.nan, np.nan] for i in ids], dtype=float)
                    err = np.abs(np.stack([y - ci[:, 0], ci[:, 1] - y]))
                    ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=label or None)
                else:
                    y = np.array([runs[i].get("diagnostics", {}).get(key) for i in ids], dtype=float)
                    ax.plot(x, y, marker="o", label=label or None)
            if numeric and axes.get(f) == "log" and min(values) > 0:
                ax.set_xscale("log")
            if not numeric:
                ax.set_xticks(range(len(cats)), cats)
            ax.set_ylabel(ylabels[key], fontsize="small")
            ax.grid(True, alpha=0.3)
            if row == len(rows) - 1:
                ax.set_xlabel(f)
            if row == 0 and len(groups) > 1:
                ax.legend(fontsize="x-small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = os.fspath(path)
    fig.savefig(out)
    return out


def report_sweep(sweep_dir: str | os.PathLike, out: str | os.PathLike | None = None) -> dict[str, Any]:
    """``summary.md`` (a row per point, the best marked) and ``sweep.png`` (return and IS diagnostics
    against each swept field) for a sweep folder. Returns ``{"runs", "markdown", "plot", "best"}``."""
    import json
    from pathlib import Path

    d = Path(sweep_dir)
    out = Path(out) if out is not None else d
    doc = json.loads((d / "sweep.json").read_text())
    runs = json.loads((d / "summary.json").read_text())["runs"]
    fields = sorted({k for p in doc["points"] for k in p})
    scores = [r["final_return_iqm"] if r.get("final_return_iqm") is not None else -np.inf for r in runs]
    best = int(np.argmax(scores))
    md = (f"Sweep of {doc['algo']} on {doc['env']}: {len(runs)} points × {len(doc['seeds'])} seeds.\n\n"
          + sweep_markdown(runs, fields, best))
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text(md)
    plot = None
    try:
        plot = plot_sweep(runs, fields, doc.get("axes", {}), out / "sweep.png",
                          title=f"{doc['algo']} on {doc['env']}: {len(doc['seeds'])} seeds per point")
    except ImportError as e:  # matplotlib is an optional extra
        print(f"note: no plot written ({e})")
    return {"runs": runs, "markdown": md, "plot": plot, "best": best}
