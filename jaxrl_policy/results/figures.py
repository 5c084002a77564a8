"""The figures of a report: learning curves with CI bands, final scores, probability-of-improvement
matrices and performance profiles, as PNG and PDF.

matplotlib is optional (``pip install "jaxrl-policy[plots]"``) and imported only inside the functions
that draw; they use the non-interactive Agg canvas directly (no pyplot global state, safe in headless
runs). Without it they raise ImportError saying how to install it.

Shape legend
------------
N : number of points on a learning curve (evaluation windows)
K : number of thresholds ``tau`` of a performance profile
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxrl_policy.results.analysis import _is_missing
from jaxrl_policy.results.curves import X_AXES

__all__ = ["plot_curves", "plot_returns", "plot_final_scores", "plot_poi", "plot_profiles"]


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
    :func:`~jaxrl_policy.results.curves.curve_with_ci`). NaN points show as gaps. Uses the non-interactive
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


def _tx(text: Any) -> str:
    """Text for matplotlib shown as written (a ``$`` would start mathtext)."""
    return str(text).replace("$", r"\$")


def _colors(labels: Sequence[str]) -> dict[str, Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(labels) <= 10 else "tab20"]
    return {lab: cmap(i % cmap.N) for i, lab in enumerate(labels)}


def _figure(width: float, height: float):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError('figures need matplotlib; install it with: pip install "jaxrl-policy[plots]"') from e
    fig = Figure(figsize=(width, height), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, out: Path, stem: str) -> list[str]:
    paths = []
    for ext in ("png", "pdf"):
        p = out / f"{stem}.{ext}"
        fig.savefig(p)
        paths.append(str(p))
    return paths


def _legend_below(fig, labels: Sequence[str], colors: Mapping[str, Any], extra: Sequence[Any] = ()) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=colors[lab], linewidth=2, label=_tx(lab)) for lab in labels] + list(extra)
    wide = sum(len(str(h.get_label())) + 6 for h in handles) > 110  # one row unless it would not fit
    fig.legend(handles=handles, loc="outside lower center", ncols=min(3, len(handles)) if wide else len(handles),
               fontsize="small", frameon=False)


def _plot_band(ax, c: Mapping[str, np.ndarray], color: Any, label: str | None = None, **kw: Any) -> None:
    """The IQM line over the points that have one (connected across missing ones) and its CI band."""
    x, y, lo, hi = (np.asarray(c[k], dtype=np.float64) for k in ("steps", "iqm", "low", "high"))
    ok = ~np.isnan(y)
    ax.plot(x[ok], y[ok], color=color, linewidth=1.6, label=label, **kw)
    ok = ok & ~np.isnan(lo) & ~np.isnan(hi)
    ax.fill_between(x[ok], lo[ok], hi[ok], color=color, alpha=0.2, linewidth=0)


def plot_returns(curves: Mapping[str, Mapping[str, Mapping[str, Any]]], out: Path, labels: Sequence[str],
                 x: str = "env_steps", title: str | None = None, stem: str = "returns") -> list[str]:
    """(a) Return vs ``x``: a row per task, training episodes (left) and evaluations (right), IQM over
    seeds with 95% CI bands. ``curves[task][label] = {"train": curve, "eval": curve}`` (curve_with_ci)."""
    tasks = list(curves)
    has_eval = any(c.get("eval") is not None for t in tasks for c in curves[t].values())
    cols = 2 if has_eval else 1
    fig = _figure(5.2 * cols, 3.3 * len(tasks) + 0.7)
    colors = _colors(labels)
    for i, task in enumerate(tasks):
        for j, kind in enumerate(("train", "eval")[:cols]):
            ax = fig.add_subplot(len(tasks), cols, i * cols + j + 1)
            for lab, c in curves[task].items():
                if c.get(kind) is not None:
                    _plot_band(ax, c[kind], colors[lab])
            what = "training episodes" if kind == "train" else "evaluation (greedy policy)"
            ax.set_title(_tx(f"{task}: {what}"), fontsize="medium")
            ax.set_xlabel(X_AXES[x])
            ax.set_ylabel("return (IQM over seeds)")
            ax.grid(True, alpha=0.3)
    _legend_below(fig, [lab for lab in labels if any(lab in curves[t] for t in tasks)], colors)
    if title:
        fig.suptitle(_tx(title))
    return _save(fig, out, stem)


def plot_final_scores(panels: Sequence[tuple[str, str, Mapping[str, Mapping[str, Any]]]], out: Path,
                      labels: Sequence[str], stem: str = "final_scores") -> list[str]:
    """(b) Final-score IQM with 95% CI bars: a panel per task (and the normalised aggregate); each algorithm
    a row, the final eval return (filled circle) and final training return (open square)."""
    from matplotlib.lines import Line2D

    longest = max((len(lab) for lab in labels), default=1)  # every panel names its algorithms
    fig = _figure(min((3.4 + 0.075 * longest) * len(panels), 18), 0.55 * len(labels) + 1.8)
    colors = _colors(labels)
    for k, (name, xlabel, est) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), k + 1)
        shown = [lab for lab in labels if lab in est]
        for i, lab in enumerate(shown):
            for kind, dy, marker, face in (("eval", -0.12, "o", colors[lab]), ("train", 0.12, "s", "white")):
                e = est[lab][kind]
                if e is None or _is_missing(e["iqm"]):
                    continue
                lo, hi = e["ci"]
                ax.errorbar([e["iqm"]], [i + dy], xerr=[[e["iqm"] - lo], [hi - e["iqm"]]], fmt=marker,
                            color=colors[lab], markerfacecolor=face, capsize=3, markersize=6)
        ax.set_yticks(range(len(shown)), [_tx(lab) for lab in shown])
        ax.set_ylim(len(shown) - 0.5, -0.5)
        ax.set_title(_tx(name), fontsize="medium")
        ax.set_xlabel(xlabel)
        ax.grid(True, axis="x", alpha=0.3)
    marks = [Line2D([], [], color="0.3", marker="o", linestyle="none", label="final eval return (greedy)"),
             Line2D([], [], color="0.3", marker="s", markerfacecolor="white", linestyle="none",
                    label="final training return")]
    fig.legend(handles=marks, loc="outside lower center", ncols=2, fontsize="small", frameon=False)
    fig.suptitle("Final score: IQM over seeds, 95% CI", fontsize="medium")
    return _save(fig, out, stem)


def plot_poi(panels: Sequence[tuple[str, Mapping[tuple[str, str], Any], Sequence[str]]], out: Path,
             score_name: str, stem: str = "poi") -> list[str]:
    """(c) Probability-of-improvement matrices: cell (X, Y) = P(X > Y) with its 95% CI."""
    n = max(len(p[2]) for p in panels)
    size = 1.1 * n + 1.8
    fig = _figure(min(size * len(panels) + 1.5, 20), size + 0.6)
    for k, (name, poi, labs) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), k + 1)
        m = np.full((len(labs), len(labs)), np.nan)
        for i, x in enumerate(labs):
            for j, y in enumerate(labs):
                if (x, y) in poi:
                    m[i, j] = poi[(x, y)].point
        im = ax.imshow(m, cmap="RdBu", vmin=0.0, vmax=1.0)
        for i, x in enumerate(labs):
            for j, y in enumerate(labs):
                if (x, y) in poi:
                    e = poi[(x, y)]
                    dark = abs(e.point - 0.5) > 0.3
                    ax.text(j, i, f"{e.point:.2f}\n[{e.low:.2f}, {e.high:.2f}]", ha="center", va="center",
                            fontsize="x-small" if n > 4 else "small", color="white" if dark else "black")
        ax.set_xticks(range(len(labs)), [_tx(lab) for lab in labs], rotation=30, ha="right")
        ax.set_yticks(range(len(labs)), [_tx(lab) for lab in labs])
        ax.set_xlabel("algorithm Y")
        ax.set_ylabel("algorithm X")
        ax.set_title(_tx(name), fontsize="medium")
    fig.colorbar(im, ax=fig.axes, shrink=0.8, label="P(X > Y)")
    fig.suptitle(f"Probability of improvement, {score_name} (95% CI)", fontsize="medium")
    return _save(fig, out, stem)


def plot_profiles(panels: Sequence[tuple[str, str, Mapping[str, Mapping[str, np.ndarray]]]], out: Path,
                  labels: Sequence[str], stem: str = "profiles") -> list[str]:
    """(d) Performance profiles: fraction of runs scoring above τ, with 95% CI bands."""
    fig = _figure(min(4.6 * len(panels), 18), 4.0)
    colors = _colors(labels)
    for k, (name, xlabel, prof) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), k + 1)
        for lab in labels:
            if lab in prof:
                p = prof[lab]
                ax.plot(p["taus"], p["point"], color=colors[lab], linewidth=1.6, drawstyle="steps-post")
                ax.fill_between(p["taus"], p["low"], p["high"], color=colors[lab], alpha=0.2, linewidth=0,
                                step="post")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("fraction of runs with score > τ")
        ax.set_title(_tx(name), fontsize="medium")
        ax.grid(True, alpha=0.3)
    _legend_below(fig, [lab for lab in labels if any(lab in p[2] for p in panels)], colors)
    fig.suptitle("Performance profiles (95% CI bands)", fontsize="medium")
    return _save(fig, out, stem)
