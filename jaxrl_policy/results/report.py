"""Turn run folders into learning curves, markdown and LaTeX tables, figures and a DataFrame.

Learning curves are aggregated over seeds with the interquartile mean (IQM)
and a percentile bootstrap confidence interval, following Agarwal et al. 2021,
"Deep Reinforcement Learning at the Edge of the Statistical Precipice"
(NeurIPS 2021); final scores, the probability of improvement, performance
profiles, the area under the curve and env steps to a threshold come from
:mod:`jaxrl_policy.stats`, per-task normalisation from :mod:`jaxrl_policy.scores`.
:func:`report_runs` is ``jaxrl-policy report``; :func:`load_runs` gives every
logged window as one pandas DataFrame. matplotlib and pandas are optional and
only imported inside the functions that need them (``pip install
"jaxrl-policy[plots]"``).

Shape legend
------------
S : number of seeds / independent runs
N : number of points on a learning curve (evaluation windows)
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from jaxrl_policy.results import scores as sc
from jaxrl_policy.results import stats
from jaxrl_policy.results.scores import NORMALIZATION
from jaxrl_policy.results.stats import bootstrap_ci, iqm

__all__ = ["curve_with_ci", "summary_markdown", "plot_curves", "report_runs", "report_sweep", "load_runs",
           "find_run_dirs", "read_run", "read_metrics", "poi_matrix", "table_tex", "latex_escape",
           "default_threshold", "parse_thresholds", "FINAL_RETURN_NOTE", "THRESHOLD_RULE", "X_AXES"]

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


# ---- run folders: finding, reading, checking ------------------------------------------------

FOLDER_RULE = (
    "a run folder holds config.json, metrics.jsonl and summary.json; a compare folder holds run folders "
    "and a summary.json with \"runs\"; a sweep folder holds sweep.json and p000/ … run folders"
)


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of a ``metrics.jsonl``; a torn last line (a crash mid-write) is skipped.

    Lenient (reading stops at the first line that is not JSON); :func:`read_metrics` is the checked form
    that ``report`` and :func:`load_runs` use.
    """
    rows = []
    with open(path) as f:
        for line in f:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break
    return rows


def read_metrics(path: str | os.PathLike) -> tuple[list[dict[str, Any]], bool]:
    """Rows of a ``metrics.jsonl`` and whether a torn last line was skipped.

    The runner writes whole lines, one write per chunk, so a crash can leave at most the last line
    incomplete: that line is skipped. Anything else is refused.

    Raises:
      ValueError: naming the file, if a line other than the last is not a JSON object, or if the
        file has no complete line.
    """
    lines = Path(path).read_text().split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    rows: list[dict[str, Any]] = []
    torn = False
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise json.JSONDecodeError("not a JSON object", line, 0)
        except json.JSONDecodeError as e:
            if i == len(lines) - 1:
                torn = True  # a crash mid-write: the last line is incomplete
                break
            raise ValueError(f"{path}: line {i + 1} is not a JSON object ({e.msg}); only the last line of a "
                             "metrics.jsonl may be incomplete (a crash mid-write)") from None
        rows.append(row)
    if not rows:
        raise ValueError(f"{path}: no complete line (a metrics.jsonl needs at least one whole JSON line per seed "
                         "and logged window; the run may have stopped before its first chunk ended)")
    return rows, torn


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}); the file may be half-written") from None


def find_run_dirs(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """Run folders of ``paths``: run folders as they are, compare and sweep folders expanded to theirs.

    A compare folder (``summary.json`` with ``"runs"``) gives its sub-folders in the order of its runs;
    a sweep folder (``sweep.json``) its finished points ``p000/ …``. Duplicates are dropped.

    Raises:
      ValueError: naming the path and the rule, for an empty list, a path that does not exist, a folder
        that is not a run, compare or sweep folder, or a run folder without ``metrics.jsonl``.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    given = [Path(p) for p in paths]
    if not given:
        raise ValueError(f"no folders given: pass at least one run, compare or sweep folder ({FOLDER_RULE})")
    out: list[Path] = []
    for p in given:
        if not p.exists():
            raise ValueError(f"{p}: no such folder")
        if not p.is_dir():
            raise ValueError(f"{p}: not a folder ({FOLDER_RULE})")
        if (p / "sweep.json").exists():
            subs = sorted(q.parent for q in p.glob("p[0-9][0-9][0-9]*/summary.json"))
            if not subs:
                raise ValueError(f"{p}: a sweep folder without a finished point (no p*/summary.json)")
            out += subs
        elif (p / "summary.json").exists():
            doc = _read_json(p / "summary.json")
            if isinstance(doc, dict) and "runs" in doc:  # a compare folder: its runs are its sub-folders
                order = [r.get("algo") for r in doc["runs"] if isinstance(r, dict)]
                subs = sorted((q.parent for q in p.glob("*/summary.json")),
                              key=lambda q: (order.index(q.name) if q.name in order else len(order), q.name))
                if not subs:
                    raise ValueError(f"{p}: a compare folder (summary.json with \"runs\") without run folders "
                                     "inside (no */summary.json)")
                out += subs
            else:
                out.append(p)
        else:
            inside = sorted(q.parent.name for q in p.glob("*/summary.json"))
            hint = f"; it holds run folders ({', '.join(inside[:5])}{' …' if len(inside) > 5 else ''}): pass " \
                "those" if inside else ""
            raise ValueError(f"{p}: not a run folder (no summary.json): {FOLDER_RULE}{hint}")
    seen: set[Path] = set()
    unique = []
    for d in out:
        key = d.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(d)
        if not (d / "metrics.jsonl").exists():
            raise ValueError(f"{d}: not a complete run folder (summary.json but no metrics.jsonl): {FOLDER_RULE}")
    return unique


class Run(NamedTuple):
    """One run folder read back: its path, ``summary.json``, ``metrics.jsonl`` rows (and whether a torn
    last line was skipped)."""

    path: Path
    summary: dict[str, Any]
    rows: list[dict[str, Any]]
    torn: bool


def read_run(d: str | os.PathLike) -> Run:
    """Read one run folder; ValueError naming the folder if it is not a complete one."""
    d = Path(d)
    if not (d / "summary.json").exists():
        raise ValueError(f"{d}: not a run folder (no summary.json): {FOLDER_RULE}")
    if not (d / "metrics.jsonl").exists():
        raise ValueError(f"{d}: not a complete run folder (no metrics.jsonl): {FOLDER_RULE}")
    summary = _read_json(d / "summary.json")
    if not isinstance(summary, dict) or "runs" in summary:
        raise ValueError(f"{d}: summary.json of a compare folder, not of a run (pass it to find_run_dirs)")
    missing = [k for k in ("algo", "env") if k not in summary]
    if missing:
        raise ValueError(f"{d / 'summary.json'}: missing {', '.join(missing)} (every run summary names its algo "
                         "and env)")
    rows, torn = read_metrics(d / "metrics.jsonl")
    bad = [k for k in ("seed", "env_steps") if k not in rows[0]]
    if bad:
        raise ValueError(f"{d / 'metrics.jsonl'}: rows have no {', '.join(bad)} (not a metrics.jsonl of a run)")
    return Run(d, summary, rows, torn)


def load_runs(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> Any:
    """Every logged window of every run as one tidy pandas DataFrame.

    ``df = jaxrl_policy.load_runs(["runs/compare-CartPole-v1", "runs/sweep-ppo"])``

    One row per (run folder, seed, logged window). Columns: ``algo``, ``env``, ``seed``, ``run`` (the
    run folder's path), ``hp_<name>`` for each swept hyperparameter (a sweep point's ``hparams``; NaN
    for runs without it), ``iteration``, ``env_steps``, ``grad_steps``, ``wall_s`` (seconds of the run's
    program up to the end of the window's chunk, compile excluded; one value per chunk, shared by the
    seeds and by the points of a sweep batch), ``episode_return`` (training episodes that ended in the
    window; NaN if none), ``eval_return`` (greedy policy on the fixed evaluation episodes; NaN in windows
    without an evaluation), then every other metric of ``metrics.jsonl`` (losses, diagnostics, …) in the
    order first seen. Columns whose values are all integers (``seed``, ``iteration``, ``env_steps``,
    ``episodes``) are int64, other numeric columns float64 (None → NaN).

    Args:
      paths: run, compare (expanded to its runs) or sweep (expanded to its points) folders, or one.

    Raises:
      ValueError: naming the path and the rule (see :func:`find_run_dirs`, :func:`read_metrics`).
      ImportError: if pandas is not installed (``pip install "jaxrl-policy[plots]"``).
    """
    try:
        import pandas as pd
    except ImportError as e:
        raise ImportError('load_runs needs pandas; install it with: pip install "jaxrl-policy[plots]"') from e
    runs = [read_run(d) for d in find_run_dirs(paths)]
    hp_names: list[str] = []
    for r in runs:
        hp_names += [k for k in (r.summary.get("hparams") or {}) if k not in hp_names]
    first = ["algo", "env", "seed", "run", *(f"hp_{k}" for k in hp_names), "iteration", "env_steps", "grad_steps",
             "wall_s", "episode_return", "eval_return"]
    records = []
    rest: list[str] = []
    for r in runs:
        hp = r.summary.get("hparams") or {}
        meta = {"algo": r.summary["algo"], "env": r.summary["env"], "run": str(r.path),
                **{f"hp_{k}": (tuple(v) if isinstance(v, list) else v) for k, v in hp.items()}}
        for row in r.rows:
            rest += [k for k in row if k not in first and k not in rest]
            records.append({**row, **meta})
    df = pd.DataFrame.from_records(records, columns=first + rest)
    for c in df.columns:
        if c in ("algo", "env", "run"):
            continue
        values = df[c].tolist()
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            df[c] = df[c].astype("int64")  # seed, iteration, env_steps, episodes
        elif all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values):
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    return df


# ---- run folders -> curves ---------------------------------------------------------------------

X_AXES = {"env_steps": "env steps", "grad_steps": "gradient steps",
          "wall_s": "wall-clock seconds (compile excluded)"}


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


# ---- run folders -> statistics, tables, figures ---------------------------------------------------

DEFAULT_THRESHOLD_FRACTION = 0.5
THRESHOLD_RULE = (
    f"default threshold of an env: random + {DEFAULT_THRESHOLD_FRACTION:g} × (reference − random) from "
    "jaxrl_policy.scores.NORMALIZATION, i.e. a normalised score of "
    f"{DEFAULT_THRESHOLD_FRACTION:g} (half-way from a uniform-random policy to gymnax's published PPO "
    "checkpoint); --threshold X (one env) or ENV=X (each env) overrides it"
)
SCORES = ("eval", "train")


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
    """Per seed: episode-weighted mean return of the windows that end in the last 5% of ``budget``."""
    out = []
    for s in seeds:
        sel = [r for r in rows if r["seed"] == s and 0.95 * budget < r["env_steps"] <= budget
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
    e = stats.iqm_estimate(x)
    return {k: e[k] for k in ("iqm", "ci", "n")}


class _Cell(NamedTuple):
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
    hit_est: dict[str, Any] | None  # stats.threshold_estimates of hits
    budget: float  # env steps of the last point of the curve measured (within the matched budget)


def _requested(run: Run) -> float:
    """The run's env-step budget: ``total_timesteps`` of its summary (else the last logged env steps)."""
    t = run.summary.get("total_timesteps")
    return float(t) if isinstance(t, (int, float)) and t > 0 else float(max(r["env_steps"] for r in run.rows))


def _task_cells(task: str, runs: Sequence[Run], labels: Sequence[str], threshold: float | None,
                bins: int) -> tuple[list[_Cell], dict[str, dict[str, np.ndarray]], float, list[str]]:
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
        auc = stats.auc(steps, curves) if steps.size >= 2 else np.full(len(seeds), np.nan)
        hits, hit_est = np.zeros(0), None
        if threshold is not None and steps.size:
            hits = stats.steps_to_threshold(steps, curves, threshold)
            hit_est = stats.threshold_estimates(hits)
        last = float(steps[-1]) if steps.size else budget
        cells.append(_Cell(task, label, len(seeds), _estimate(ev), _estimate(train), _estimate(auc),
                           np.asarray(auc, dtype=np.float64), kind, hits, hit_est, last))
    return cells, scores, budget, notes


def _fmt_ci(e: Mapping[str, Any], spec: str) -> str:
    if e is None or _is_missing(e.get("iqm")):
        return "—"
    return f"{_fmt(e['iqm'], spec)} [{_fmt(e['ci'][0], spec)}, {_fmt(e['ci'][1], spec)}]"


def _fmt_steps_value(v: float, budget: float) -> str:
    return f"> {budget:,.0f}" if math.isinf(v) else f"{v:,.0f}"


def _fmt_hits(c: _Cell) -> str:
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

    ``{(x, y): stats.Estimate}`` from :func:`jaxrl_policy.stats.probability_of_improvement_estimate`
    on the per-run scores ``[S, T]`` (or ``[S]``, one task) of each label: P(a run of X scores higher
    than a run of Y on a task), averaged over tasks, with a stratified bootstrap over runs.
    """
    mats = {k: (np.asarray(v, dtype=np.float64)[:, None] if np.ndim(v) == 1 else np.asarray(v, dtype=np.float64))
            for k, v in score_by_label.items()}
    return {(x, y): stats.probability_of_improvement_estimate(mats[x], mats[y], reps=reps, seed=seed)
            for x in mats for y in mats if x != y}


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


def _tex_hits(c: _Cell) -> str:
    return latex_escape(_fmt_hits(c)).replace(r"\textgreater{} ", "$>$ ").replace("{[}", "[").replace("{]}", "]")


def table_tex(cells: Sequence[_Cell], aggregate_rows: Sequence[Mapping[str, Any]] = (),
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


def _profile(mat: np.ndarray, taus: np.ndarray) -> dict[str, np.ndarray]:
    e = stats.performance_profile(mat, taus)
    return {"taus": taus, "point": e.point, "low": e.low, "high": e.high}


def _taus(values: Sequence[np.ndarray]) -> np.ndarray:
    allv = np.concatenate([np.asarray(v, dtype=np.float64).reshape(-1) for v in values])
    lo, hi = float(allv.min()), float(allv.max())
    pad = 0.05 * (hi - lo) if hi > lo else max(1.0, abs(hi)) * 0.05
    return np.linspace(lo - pad, hi + pad, 201)


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
    of the budget. The AUC is the area under each seed's evaluation curve divided by its env-step range
    (the mean eval return over training; :func:`jaxrl_policy.stats.auc`); env steps to the threshold are
    the first evaluation at or above it (:func:`jaxrl_policy.stats.steps_to_threshold`; runs that never
    get there count as ``> budget``). Runs without evaluations use their training-return curve (marked).
    ``score`` (``"eval"`` or ``"train"``) picks the final score of the POI matrix and profiles.

    Several tasks: scores are normalised per env (:mod:`jaxrl_policy.scores`) and aggregated over tasks
    (IQM, stratified bootstrap), for the algorithms present on every task; profiles use normalised
    scores. ``aggregate=False`` reports each task on its own.

    Returns:
      ``{"runs", "markdown", "plot", "figures", "table", "cells", "aggregate", "poi", "tasks",
      "thresholds", "curves"}``: ``plot`` is the returns PNG (None without matplotlib), ``figures`` every
      figure file, ``cells`` the per task × algorithm statistics, ``poi`` the matrix of the first POI
      panel as ``{(x, y): Estimate}``, ``curves[task][label]`` the plotted ``{"train", "eval"}`` curves.

    Raises:
      ValueError: naming the path or envs and the rule: see :func:`find_run_dirs`, :func:`read_metrics`;
        envs without normalisation scores mixed with ``aggregate=True``; a threshold for several envs.
    """

    if x not in X_AXES:
        raise ValueError(f"x = {x!r}: must be one of {', '.join(X_AXES)}")
    if score not in SCORES:
        raise ValueError(f"score = {score!r}: must be one of {', '.join(SCORES)}")
    runs = [read_run(d) for d in find_run_dirs(run_dirs)]
    labels = _labels(runs)
    order = list(dict.fromkeys(labels))
    tasks = list(dict.fromkeys(r.summary["env"] for r in runs))
    if aggregate and len(tasks) > 1:
        unknown = [t for t in tasks if t not in sc.NORMALIZATION]
        if unknown:
            raise ValueError(
                f"runs of different envs ({', '.join(tasks)}) are aggregated on normalised scores, and "
                f"{', '.join(unknown)} {'has' if len(unknown) == 1 else 'have'} no normalisation scores "
                f"(known: {', '.join(sorted(sc.NORMALIZATION))}); report each env on its own, pass "
                "--no-aggregate (aggregate=False), or add random/reference scores to jaxrl_policy.scores.NORMALIZATION")
    if isinstance(threshold, Mapping):
        extra = [k for k in threshold if k not in tasks]
        if extra:
            raise ValueError(f"--threshold for {', '.join(extra)}: no run of that env (envs: {', '.join(tasks)})")
        thresholds = {t: (threshold[t] if t in threshold else default_threshold(t)) for t in tasks}
    elif threshold is not None:
        if len(tasks) > 1:
            raise ValueError(f"--threshold {threshold:g}: one number for several envs ({', '.join(tasks)}); "
                             "returns of different envs are on different scales: give ENV=X for each env")
        thresholds = {tasks[0]: float(threshold)}
    else:
        thresholds = {t: default_threshold(t) for t in tasks}

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    torn = [str(r.path / "metrics.jsonl") for r in runs if r.torn]
    if torn:
        notes.append(f"skipped a torn last line (a crash mid-write) in {', '.join(torn)}")
    cells: list[_Cell] = []
    scores: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    curves: dict[str, dict[str, dict[str, Any]]] = {}
    budgets: dict[str, float] = {}
    for t in tasks:
        idx = [i for i, r in enumerate(runs) if r.summary["env"] == t]
        t_cells, t_scores, budgets[t], t_notes = _task_cells(t, [runs[i] for i in idx], [labels[i] for i in idx],
                                                     thresholds[t], bins)
        cells += t_cells
        scores[t] = t_scores
        notes += t_notes
        curves[t] = {}
        for i in idx:
            tr = binned_returns(runs[i].rows, bins, x)
            ev = eval_curves(runs[i].rows, x, None, bins)
            curves[t][labels[i]] = {"train": curve_with_ci(*tr),
                                    "eval": curve_with_ci(*ev) if ev[0].size else None}
    all_eval_missing = all(np.isnan(v["eval"]).all() for t in tasks for v in scores[t].values())
    if score == "eval" and all_eval_missing:
        score = "train"
        notes.append("no run logged an evaluation: the POI matrix and profiles use the final training return")
    score_name = "final eval return" if score == "eval" else "final training return"

    # aggregate over tasks (normalised), for the labels present on every task
    multi = aggregate and len(tasks) > 1
    agg_rows: list[dict[str, Any]] = []
    full = [lab for lab in order if all(lab in scores[t] for t in tasks)] if multi else []
    if multi:
        left = [lab for lab in order if lab not in full]
        if left:
            notes.append(f"not in the aggregate over tasks (not run on every task): {', '.join(left)}")
        by_label = {(c.task, c.label): c for c in cells}
        for lab in full:
            row: dict[str, Any] = {"label": lab}
            for kind in ("eval", "train"):
                row[kind] = _estimate(sc.normalize_tasks({t: scores[t][lab][kind] for t in tasks})[0])
            aucs = {t: by_label[(t, lab)].auc_values for t in tasks}
            row["auc"] = _estimate(sc.normalize_tasks(aucs)[0]) if all(a.size for a in aucs.values()) else None
            hits = [by_label[(t, lab)].hits for t in tasks if by_label[(t, lab)].hit_est is not None]
            k, n = sum(int(np.isfinite(h).sum()) for h in hits), sum(h.size for h in hits)
            row["hits"] = f"{k}/{n} runs reached" if n else "—"
            agg_rows.append(row)

    # POI and profiles: one panel over all tasks (aggregate), else one per task
    poi_panels: list[tuple[str, dict[tuple[str, str], Any], list[str]]] = []
    profile_panels: list[tuple[str, str, dict[str, dict[str, np.ndarray]]]] = []
    groups = [(f"{len(tasks)} tasks (normalised)", list(tasks), full)] if multi else \
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

    md = _report_markdown(runs, tasks, cells, agg_rows, poi_panels, thresholds, budgets, notes, score_name, x)
    tex = table_tex(cells, agg_rows, thresholds)
    (out / "summary.json").write_text(json.dumps({"runs": [r.summary for r in runs]}, indent=2))
    (out / "summary.md").write_text(md)
    (out / "table.tex").write_text(tex)
    (out / "report.json").write_text(json.dumps(_report_doc(cells, agg_rows, poi_panels, thresholds, x, score),
                                                indent=2))
    figs: list[str] = []
    plot = None
    if figures:
        try:
            stem = Path(plot_name).stem
            figs += plot_returns(curves, out, order, x, title, stem=stem)
            plot = str(out / f"{stem}.png")
            est = {t: {c.label: {"eval": c.final_eval, "train": c.final_train} for c in cells if c.task == t}
                   for t in tasks}
            panels = [(t, "final return", est[t]) for t in tasks]
            if agg_rows:
                panels.append((f"aggregate over {len(tasks)} tasks", "normalised score",
                               {a["label"]: {"eval": a["eval"], "train": a["train"]} for a in agg_rows}))
            figs += plot_final_scores(panels, out, order)
            if poi_panels:
                figs += plot_poi(poi_panels, out, score_name)
            if profile_panels:
                figs += plot_profiles(profile_panels, out, order)
        except ImportError as e:  # matplotlib is an optional extra
            print(f"note: no figures written ({e})")
    poi = poi_panels[0][1] if poi_panels else {}
    return {"runs": [r.summary for r in runs], "markdown": md, "plot": plot, "figures": figs, "table": tex,
            "cells": cells, "aggregate": agg_rows, "poi": poi, "tasks": tasks, "thresholds": thresholds,
            "curves": curves}


def _jf(v: Any) -> Any:
    v = float(v)
    return v if math.isfinite(v) else ("inf" if v == math.inf else None)


def _est_doc(e: Mapping[str, Any] | None) -> Any:
    if e is None:
        return None
    return {"iqm": _jf(e["iqm"]), "ci": [_jf(v) for v in e["ci"]], "n": int(e["n"])}


def _report_doc(cells, agg_rows, poi_panels, thresholds, x, score) -> dict[str, Any]:
    """Every number of the report, JSON-safe (NaN → null, never reached → "inf")."""
    return {
        "x": x, "score": score, "thresholds": thresholds,
        "cells": [{"task": c.task, "algo": c.label, "seeds": c.seeds, "budget_env_steps": c.budget,
                   "final_eval_return": _est_doc(c.final_eval), "final_return": _est_doc(c.final_train),
                   "auc": _est_doc(c.auc), "auc_curve": c.auc_curve,
                   "steps_to_threshold": [_jf(h) for h in c.hits],
                   "steps_to_threshold_iqm": None if c.hit_est is None else [_jf(v) for v in c.hit_est["iqm"]],
                   "fraction_reached": None if c.hit_est is None else
                   [_jf(v) for v in c.hit_est["fraction_reached"]]}
                  for c in cells],
        "aggregate": [{"label": a["label"], "final_eval_return": _est_doc(a["eval"]),
                       "final_return": _est_doc(a["train"]), "auc": _est_doc(a["auc"]), "steps_to_threshold": a["hits"]}
                      for a in agg_rows],
        "poi": [{"panel": name, "x": a, "y": b, "p": _jf(e.point), "ci": [_jf(e.low), _jf(e.high)]}
                for name, poi, _ in poi_panels for (a, b), e in poi.items()],
    }


def _report_markdown(runs, tasks, cells, agg_rows, poi_panels, thresholds, budgets, notes, score_name, x) -> str:
    labels_n = len({c.label for c in cells})
    parts = [f"# Report: {', '.join(tasks)} ({labels_n} algorithm{'s' if labels_n != 1 else ''}, "
             f"{len(runs)} run folder{'s' if len(runs) != 1 else ''})\n",
             "## Runs\n", summary_markdown([r.summary for r in runs]),
             "## Final score and sample efficiency (IQM [95% CI] over seeds)\n"]
    head = ["task", "algo", "seeds", "final eval return", "final training return", "AUC (eval)",
            "env steps to threshold"]
    lines = ["| " + " | ".join(head) + " |", "|---|---|--:|--:|--:|--:|--:|"]
    for c in cells:
        thr = thresholds.get(c.task)
        task = f"{c.task} (≥ {thr:.4g})" if thr is not None else c.task
        lines.append("| " + " | ".join(_cell(v) for v in (
            task, c.label, c.seeds, _fmt_ci(c.final_eval, ".1f"), _fmt_ci(c.final_train, ".1f"),
            _fmt_ci(c.auc, ".1f") + ("" if c.auc_curve == "eval" else " *"), _fmt_hits(c))) + " |")
    for a in agg_rows:
        lines.append("| " + " | ".join(_cell(v) for v in (
            f"aggregate over {len(tasks)} tasks (normalised)", a["label"], "—", _fmt_ci(a["eval"], ".2f"),
            _fmt_ci(a["train"], ".2f"), _fmt_ci(a["auc"], ".2f") if a["auc"] else "—", a["hits"])) + " |")
    parts.append("\n".join(lines) + "\n")
    for name, poi, labs in poi_panels:
        parts.append(f"## Probability of improvement: {name}, {score_name}\n")
        parts.append("P(a run of the row's algorithm scores higher than a run of the column's"
                     + (", averaged over tasks" if len(tasks) > 1 and "tasks" in name else "")
                     + "), 95% stratified bootstrap CI over runs.\n")
        parts.append(poi_markdown(poi, labs))
    defs = [
        "IQM: interquartile mean over seeds; [95% CI]: percentile bootstrap over runs (seeds), stratified by "
        "task (Agarwal et al. 2021).",
        "Scores are compared at a matched env-step budget per task, the smallest total_timesteps of its runs "
        "(runs stop on whole iterations, a few steps short of it): "
        + ", ".join(f"{t} {b:,.0f}" for t, b in budgets.items()) + ".",
        "final eval return: each seed's last evaluation (greedy policy, fixed evaluation episodes).",
        "final training return: mean undiscounted return of training episodes that ended in the last 5% of the "
        "env-step budget.",
        "AUC (eval): area under each seed's evaluation curve divided by its env-step range, i.e. the mean "
        "eval return over training (same units as the return; higher = more sample-efficient).",
        "env steps to threshold: the first evaluation at or above the threshold (≥ in the task column); "
        "\"> N\" = not reached by the last evaluation, at N env steps; k/n: the runs that reached it. "
        + THRESHOLD_RULE[0].upper() + THRESHOLD_RULE[1:] + ".",
        f"Learning curves are drawn against {X_AXES[x]}.",
    ]
    if any(c.auc_curve == "train" for c in cells):
        defs.append("*: the run logged no evaluations; AUC and steps to threshold use its training-return curve.")
    if agg_rows:
        defs.append("aggregate: scores normalised per env, (score − random) / (reference − random) from "
                    "jaxrl_policy.scores (0 = uniform-random policy, 1 = gymnax's published PPO checkpoint), "
                    "IQM over all runs of all tasks; the steps column counts the runs that reached their "
                    "task's threshold.")
    parts.append("## Notes\n")
    parts.append("\n".join(f"- {d}" for d in defs + notes) + "\n")
    return "\n".join(parts)


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
