"""Every logged window of run folders as one tidy pandas DataFrame: :func:`load_runs`
(``jaxrl_policy.load_runs``).

pandas is optional (``pip install "jaxrl-policy[plots]"``) and imported only inside :func:`load_runs`.
The folders are found and read by :mod:`jaxrl_policy.io.runfolder`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from jaxrl_policy.io.runfolder import read_runs

__all__ = ["load_runs"]


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
      ValueError: naming the path and the rule (see :func:`jaxrl_policy.io.runfolder.find_run_dirs`,
        :func:`~jaxrl_policy.io.runfolder.read_metrics`).
      ImportError: if pandas is not installed (``pip install "jaxrl-policy[plots]"``).
    """
    try:
        import pandas as pd
    except ImportError as e:
        raise ImportError('load_runs needs pandas; install it with: pip install "jaxrl-policy[plots]"') from e
    runs = read_runs(paths)
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
