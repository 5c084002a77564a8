"""What the host keeps of a batch between chunks, and what it writes from it: log rows, messages, summaries.

Shape legend: ``P`` points of a batch, ``S`` seeds, ``B = P·S`` runs (point-major), ``I`` iterations of a
chunk (or of the whole run, in the history), ``W`` log rows of a chunk, ``D`` diagnostics.

``History`` is checkpointed with the loop state (its arrays as ``hist``, the diagnostic sums and the run
seconds in ``meta.json``), so a resumed run reports exactly what an uninterrupted one would.
"""
from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np

from jaxrl_policy.core.config import BaseConfig
from jaxrl_policy.core.types import COUNTERS, DIAGNOSTICS
from jaxrl_policy.results import stats
from jaxrl_policy.results.analysis import FINAL_FRACTION

HIST_KEYS = ("episode_return", "episodes", "eval_return")  # [B, I] histories (besides env_steps [I])


class History:
    """Per-iteration returns, episodes and evaluations of every run, and the spectrum diagnostics summed per point."""

    def __init__(self, P: int, S: int):
        self.P, self.S = P, S
        B = P * S
        self.arrays = {"env_steps": np.zeros((0,), np.int32), "episode_return": np.zeros((B, 0), np.float32),
                       "episodes": np.zeros((B, 0), np.int32), "eval_return": np.zeros((B, 0), np.float32)}
        self.diag_sum = np.array([[-np.inf if k.endswith("_max") else 0.0 for k in DIAGNOSTICS]] * P)  # [P, D]
        self.diag_n = np.zeros((P, len(DIAGNOSTICS)), np.int64)

    def dtypes(self) -> dict[str, Any]:
        return {k: v.dtype for k, v in self.arrays.items()}

    def restore(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Continue from a checkpoint's ``hist`` and ``meta.json``."""
        self.arrays = arrays
        self.diag_sum = np.asarray(meta["diag_sum"], np.float64)
        self.diag_n = np.asarray(meta["diag_n"], np.int64)

    def meta(self, run_s: float) -> dict[str, Any]:
        """What a checkpoint's ``meta.json`` keeps of it."""
        return {"run_s": run_s, "diag_sum": self.diag_sum.tolist(), "diag_n": self.diag_n.tolist()}

    def append(self, m: dict[str, np.ndarray]) -> None:
        """Add one chunk's metrics ``[B, I]`` (diagnostics are NaN where an iteration did not learn)."""
        a = self.arrays
        self.arrays = {"env_steps": np.concatenate([a["env_steps"], m["env_steps"][0]]),
                       **{k: np.concatenate([a[k], m[k]], 1) for k in HIST_KEYS}}
        valid = m["env_steps"].shape[1]
        for j, k in enumerate(DIAGNOSTICS):
            v = m[k].reshape(self.P, self.S * valid)
            ok = ~np.isnan(v)
            if k.endswith("_max"):
                self.diag_sum[:, j] = np.maximum(self.diag_sum[:, j], np.where(ok, v, -np.inf).max(1))
            else:
                self.diag_sum[:, j] += np.where(ok, v, 0.0).sum(1)
                self.diag_n[:, j] += ok.sum(1)

    def diagnostics(self, p: int) -> dict[str, float | None]:
        """Point p's diagnostics over every learning iteration and seed (max of the ``*_max`` ones)."""
        return {k: json_float(float(self.diag_sum[p, j]) if k.endswith("_max") else
                              (float(self.diag_sum[p, j] / self.diag_n[p, j]) if self.diag_n[p, j] else None))
                for j, k in enumerate(DIAGNOSTICS)}


def _windows(n: int, rows: int) -> list[np.ndarray]:
    return [w for w in np.array_split(np.arange(n), max(1, min(rows, n))) if w.size]


def window_rows(m: dict[str, np.ndarray], first_iteration: int, rows: int, wall_s: float, seeds: list[int]):
    """Aggregate per-iteration metrics ``[S, I]`` into ``W`` rows per seed.

    Episode statistics are weighted by the number of episodes that ended in each iteration;
    ``*_max`` keys take the max, counters the last value, everything else the NaN-aware mean.
    """
    out = []
    S, n = m["episodes"].shape
    for w in _windows(n, rows):
        eps = m["episodes"][:, w].astype(np.float64)
        tot = eps.sum(1)
        for s in range(S):
            row: dict[str, Any] = {"seed": seeds[s], "iteration": int(first_iteration + w[-1] + 1),
                                   "env_steps": int(m["env_steps"][s, w[-1]])}
            for k, v in m.items():
                if k in ("env_steps",):
                    continue
                x = v[s, w].astype(np.float64)
                if k in ("episode_return", "episode_length"):
                    val = float(np.nansum(np.nan_to_num(x) * eps[s]) / tot[s]) if tot[s] > 0 else None
                elif k == "episodes":
                    val = int(tot[s])
                elif k in COUNTERS:
                    val = float(x[-1])
                elif np.all(np.isnan(x)):
                    val = None
                elif k.endswith("_max"):
                    val = float(np.nanmax(x))
                else:
                    val = float(np.nanmean(x))
                row[k] = None if val is None or (isinstance(val, float) and not math.isfinite(val)) else val
            row["wall_s"] = round(wall_s, 3)
            out.append(row)
    return out


def final_returns(env_steps: np.ndarray, returns: np.ndarray, episodes: np.ndarray, budget: int) -> list[float]:
    """Per seed: episode-weighted mean return over iterations whose env steps exceed 95% of the budget."""
    sel = env_steps > (1.0 - FINAL_FRACTION) * budget  # [I]
    out = []
    for s in range(returns.shape[0]):
        e = episodes[s, sel].astype(np.float64)
        r = np.nan_to_num(returns[s, sel].astype(np.float64))
        out.append(float((r * e).sum() / e.sum()) if e.sum() > 0 else float("nan"))
    return out


def json_float(x):
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x



def point_summary(cfg: BaseConfig, p: int, hist: History, agent_leaves: list[np.ndarray], *, seeds: list[int],
                  diverged: list[dict | None], timing: dict[str, float], eval_steps: int) -> dict[str, Any]:
    """Point p's ``summary.json`` (the public contract of ``runner.py``'s docstring): final returns with their
    IQM and CI, the final evaluation, how far the run got, its status, rates, diagnostics and agent digests.

    ``timing``: ``run_s`` (the chunks' seconds, all points), ``compile_s``, ``wall_s``."""
    S, B = hist.S, hist.P * hist.S
    a = hist.arrays
    rows = slice(p * S, (p + 1) * S)
    total_steps = cfg.num_iterations * cfg.steps_per_iteration
    steps_done = int(a["env_steps"][-1]) if a["env_steps"].size else 0
    # complete: every iteration ran (a run learning from a dataset takes no env steps at all)
    complete = a["env_steps"].size >= cfg.num_iterations
    # a run stopped early: its final return is over the last 5% of what ran
    fr = final_returns(a["env_steps"], a["episode_return"][rows], a["episodes"][rows],
                       total_steps if complete else steps_done)
    agg = stats.aggregate(np.asarray(fr))
    # the evaluation after the last iteration: the greedy policy on the fixed evaluation episodes
    fe = [float(x) for x in a["eval_return"][rows, -1]] if a["eval_return"].shape[1] else [math.nan] * S
    agg_eval = stats.aggregate(np.asarray(fe))
    evaluations = int((~np.isnan(a["eval_return"][0])).sum()) if a["eval_return"].shape[1] else 0
    run_s = timing["run_s"]
    return {
        "algo": cfg.algo,
        "env": cfg.env_id,
        "seeds": seeds,
        "total_timesteps": cfg.total_timesteps,
        "env_steps": total_steps,
        "final_return": [json_float(x) for x in fr],
        "final_return_iqm": json_float(agg["iqm"]),
        "final_return_ci": [json_float(x) for x in agg["iqm_ci"]],
        "final_eval_return": [json_float(x) for x in fe],
        "final_eval_return_iqm": json_float(agg_eval["iqm"]),
        "final_eval_return_ci": [json_float(x) for x in agg_eval["iqm_ci"]],
        # evaluation episodes' env steps (not in the budget): evaluations × episodes × steps per episode
        "eval_env_steps": evaluations * cfg.eval_episodes * eval_steps,
        "env_steps_done": steps_done,  # 0 for a run that learns from a dataset
        "complete": complete,
        "status": ["ok" if x is None else "diverged" for x in diverged[rows]],
        "divergence": diverged[rows],
        # the whole program's rate (all points and seeds)
        "env_steps_per_s": round(steps_done * B / run_s) if run_s > 0 else None,
        "env_steps_per_s_per_seed": round(steps_done / run_s) if run_s > 0 else None,
        "compile_s": round(timing["compile_s"], 3),
        "wall_s": round(timing["wall_s"], 3),
        # spectrum diagnostics over every learning iteration and seed (max of the *_max ones)
        "diagnostics": hist.diagnostics(p),
        # fingerprints of each seed's final agent state (parameters, optimizer, target): equal digests,
        # bit-identical runs (same config, seeds, device count, CPU threads)
        "agent_sha256": [digest([np.asarray(x)[b] for x in agent_leaves]) for b in range(p * S, (p + 1) * S)],
    }


def divergence_message(label, diverged, S, seeds, dirs, hparams_of, ck, c, num_chunks) -> str:
    """One message: which runs diverged where, what is kept, and what to try."""
    parts = []
    for b, x in enumerate(diverged):
        if x is None:
            continue
        p, s = divmod(b, S)
        where = f"seed {seeds[s]}"
        if len(dirs) > 1 or hparams_of is not None:
            name = dirs[p].name if dirs[p] is not None else f"point {p}"
            where += f" of {name} ({fmt_point(hparams_of(p) if hparams_of else {})})"
        v = x["value"]
        parts.append(f"{where}: {x['quantity']} = {v if isinstance(v, str) else f'{v:.3g}'} at iteration "
                     f"{x['iteration']} (env steps {x['env_steps']:,})")
    kept = f"the last good checkpoint is {ck}" if ck is not None else "no checkpoint was written before it"
    return (f"{label} diverged: " + "; ".join(parts) + f". Stopped after chunk {c + 1}/{num_chunks}; the diverged "
            f"state is not checkpointed ({kept}); summary.json has status per seed. Lower the learning rate, "
            "rerun with --debug-nans to find the first NaN, or raise --divergence-loss / --divergence-grad-norm "
            "(0 disables) if these values are expected.")


def digest(arrays: list[np.ndarray]) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def progress_line(label, c, num_chunks, m, P, S, total_steps, run_s, hparams_of) -> str:
    done = int(m["env_steps"][0, -1])
    eps = m["episodes"].sum(1)
    per_run = np.where(eps > 0, np.nansum(np.nan_to_num(m["episode_return"]) * m["episodes"], 1)
                       / np.maximum(eps, 1), np.nan).reshape(P, S)
    iqms = [stats.iqm(r[~np.isnan(r)]) if np.any(~np.isnan(r)) else float("nan") for r in per_run]
    sps = done * P * S / run_s
    eta = (total_steps - done) * P * S / sps if sps > 0 else float("nan")  # (offline runs take no env steps)
    line = (f"{label} chunk {c + 1}/{num_chunks}  env steps {done:,}/{total_steps:,} "
            f"({100 * done / total_steps:.0f}%)  ")
    if P == 1:
        line += f"return IQM {iqms[0]:.1f}"
        if "eval_return" in m and not np.all(np.isnan(m["eval_return"][:, -1])):
            ev = m["eval_return"][:, -1]
            line += f" (eval {stats.iqm(ev[~np.isnan(ev)]):.1f})"
    else:  # a sweep batch: the best points so far, by this chunk's return IQM over seeds
        order = [p for p in np.argsort(-np.nan_to_num(np.asarray(iqms), nan=-np.inf))[:3]]
        best = "; ".join(f"{iqms[p]:.1f} ({fmt_point(hparams_of(p) if hparams_of else {})})" for p in order)
        line += f"best return IQM {best}"
    return line + f"  {sps:,.0f} steps/s  ETA {eta:.0f}s"


def fmt_point(hp: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in hp.items()) or "-"
