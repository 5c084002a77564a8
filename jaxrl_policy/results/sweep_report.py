"""The report of a sweep folder: ``summary.md`` (a row per point, the best marked) and ``sweep.png``
(final return and the importance-sampling diagnostics against each swept field).

Reads the sweep's own ``sweep.json`` and ``summary.json`` (one entry per point, written by
``running/sweep.py``); matplotlib is optional and imported only inside :func:`plot_sweep`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxrl_policy.results.analysis import _value_label
from jaxrl_policy.results.tables import FINAL_RETURN_NOTE, _cell, _fmt

__all__ = ["SWEEP_DIAGNOSTICS", "sweep_markdown", "plot_sweep", "report_sweep"]

SWEEP_DIAGNOSTICS = ("data_age", "ratio_max", "ess", "policy_kl")  # the IS diagnostics a sweep plot shows


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
