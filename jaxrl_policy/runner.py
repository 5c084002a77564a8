"""Run a config over several seeds in host-visible chunks and write the run folder.

Shape legend: ``S`` seeds, ``I`` iterations of a chunk, ``W`` log rows (windows) of a chunk.

The run folder holds (the public contract in ARCHITECTURE.md):

- ``config.json``: the resolved config plus run metadata (seeds, versions, devices, command line);
- ``metrics.jsonl``: one line per seed and logged window (``iteration``, ``env_steps``,
  ``episode_return``, loss terms, diagnostics, ``wall_s``);
- ``summary.json``: ``algo``, ``env``, ``seeds``, ``total_timesteps``, ``final_return`` (per seed),
  ``final_return_iqm``, ``final_return_ci``, ``env_steps_per_s``, ``compile_s``, ``wall_s``, plus
  ``env_steps`` and ``diagnostics`` (the spectrum diagnostics averaged over learning iterations
  and seeds; ``*_max`` ones are maxima).

Seeds run with ``jax.vmap`` inside one jit; the chunk function is compiled once and called
``num_chunks`` times, so progress and logs happen between chunks (``metrics.jsonl`` is flushed
after every chunk, so a crash keeps everything logged so far).
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl_policy import stats
from jaxrl_policy.config import BaseConfig
from jaxrl_policy.loop import make_loop
from jaxrl_policy.metadata import config_hash, run_metadata
from jaxrl_policy.types import DIAGNOSTICS

FINAL_FRACTION = 0.05  # final_return: episodes that ended in the last 5% of the env-step budget


def seed_keys(seed: int, num_seeds: int) -> jax.Array:
    """Seed i uses PRNGKey(seed + i), so seed i of a multi-seed run equals a 1-seed run with seed + i."""
    return jax.vmap(jax.random.PRNGKey)(jnp.arange(seed, seed + num_seeds, dtype=jnp.uint32))


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
                elif k in ("grad_steps",):
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


def _json_float(x):
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x


def _truncate_metrics(path: Path, iterations_done: int) -> None:
    """Drop log rows written after the checkpoint a run resumes from."""
    if not path.exists():
        return
    keep = [line for line in path.read_text().splitlines()
            if line.strip() and json.loads(line)["iteration"] <= iterations_done]
    path.write_text("".join(line + "\n" for line in keep))


def run(cfg: BaseConfig, num_seeds: int, out: str | os.PathLike | None, *, log_rows: int = 200,
        progress: Callable[[str], None] | None = print, checkpoint_every_s: float | None = 60.0,
        resume: bool = False) -> dict[str, Any]:
    """Train ``num_seeds`` seeds of ``cfg``; write the run folder to ``out`` (if given); return the summary.

    With ``out`` and ``checkpoint_every_s``, the loop state of all seeds is checkpointed after a
    chunk once that many seconds have passed since the last checkpoint, and after the last chunk
    (``checkpoint.py``). ``resume=True`` continues the run in ``out`` from its latest checkpoint
    (``cfg`` and ``num_seeds`` must be the run's own; ``resume_run`` reads them from the folder).
    """
    from jaxrl_policy import checkpoint

    out_dir = Path(out) if out is not None else None
    if resume and (out_dir is None or checkpoint.latest(out_dir) is None):
        raise ValueError(f"resume: {out_dir} has no complete checkpoint to resume from")
    seeds = list(range(cfg.seed, cfg.seed + num_seeds))
    if out_dir is not None and not resume:
        out_dir.mkdir(parents=True, exist_ok=True)
        d = cfg.to_dict()
        meta = {**run_metadata(), "num_seeds": num_seeds, "config_hash": config_hash(d)}
        (out_dir / "config.json").write_text(json.dumps({**d, "seeds": seeds, "run": meta}, indent=2))
    loop = make_loop(cfg)
    t_start = time.perf_counter()
    keys = seed_keys(cfg.seed, num_seeds)
    init = jax.jit(jax.vmap(loop.init))
    chunk = jax.jit(jax.vmap(loop.run_chunk, in_axes=(0, None)), donate_argnums=0)
    t0 = time.perf_counter()
    init_c = init.lower(keys).compile()
    state = init_c(keys)
    chunk_c = chunk.lower(state, jnp.int32(0)).compile()
    compile_s = time.perf_counter() - t0
    rows_per_chunk = max(1, math.ceil(log_rows / loop.num_chunks))
    total_steps = cfg.num_iterations * cfg.steps_per_iteration
    hist = {"env_steps": np.zeros((0,), np.int32), "episode_return": np.zeros((num_seeds, 0), np.float32),
            "episodes": np.zeros((num_seeds, 0), np.int32)}
    diag_sum = {k: (-np.inf if k.endswith("_max") else 0.0) for k in DIAGNOSTICS}
    diag_n = dict.fromkeys(DIAGNOSTICS, 0)
    start, run_s = 0, 0.0
    if resume:
        assert out_dir is not None
        ck = checkpoint.latest(out_dir)
        assert ck is not None
        state, hist, meta = checkpoint.restore(ck, state, {k: v.dtype for k, v in hist.items()})
        start, run_s = meta["chunks_done"], meta["run_s"]
        diag_sum, diag_n = meta["diag_sum"], meta["diag_n"]
        _truncate_metrics(out_dir / "metrics.jsonl", start * loop.iterations_per_chunk)
        if progress is not None:
            progress(f"resuming {out_dir} from chunk {start}/{loop.num_chunks}")
    label = f"[{cfg.algo} {cfg.env_id} ×{num_seeds}]"
    metrics_file = open(out_dir / "metrics.jsonl", "a" if resume else "w") if out_dir is not None else None
    last_save = time.perf_counter()
    try:
        for c in range(start, loop.num_chunks):
            t = time.perf_counter()
            state, m = chunk_c(state, jnp.int32(c))
            m = jax.device_get(m)
            run_s += time.perf_counter() - t
            m = {k: np.asarray(v) for k, v in m.items()}
            valid = min(loop.iterations_per_chunk, cfg.num_iterations - c * loop.iterations_per_chunk)
            m = {k: v[:, :valid] for k, v in m.items()}  # drop the last chunk's skipped iterations
            hist = {"env_steps": np.concatenate([hist["env_steps"], m["env_steps"][0]]),
                    **{k: np.concatenate([hist[k], m[k]], 1) for k in ("episode_return", "episodes")}}
            for k in DIAGNOSTICS:  # NaN where an iteration did not learn
                v = m[k][~np.isnan(m[k])]
                if v.size and k.endswith("_max"):
                    diag_sum[k] = max(diag_sum[k], float(v.max()))
                elif v.size:
                    diag_sum[k] += float(v.sum())
                    diag_n[k] += v.size
            if metrics_file is not None:
                for row in window_rows(m, c * loop.iterations_per_chunk, rows_per_chunk, run_s, seeds):
                    metrics_file.write(json.dumps(row) + "\n")
                metrics_file.flush()
            last = c == loop.num_chunks - 1
            if out_dir is not None and checkpoint_every_s is not None and (
                    last or time.perf_counter() - last_save >= checkpoint_every_s):
                checkpoint.save(out_dir, c + 1, state, hist,
                                {"run_s": run_s, "diag_sum": diag_sum, "diag_n": diag_n})
                last_save = time.perf_counter()
            if progress is not None:
                done = int(m["env_steps"][0, -1])
                eps = m["episodes"].sum(1)
                per_seed = np.where(eps > 0, np.nansum(np.nan_to_num(m["episode_return"]) * m["episodes"], 1)
                                    / np.maximum(eps, 1), np.nan)
                ret = stats.iqm(per_seed[~np.isnan(per_seed)]) if np.any(~np.isnan(per_seed)) else float("nan")
                sps = done * num_seeds / run_s
                eta = (total_steps - done) * num_seeds / sps
                progress(f"{label} chunk {c + 1}/{loop.num_chunks}  env steps {done:,}/{total_steps:,} "
                         f"({100 * done / total_steps:.0f}%)  return IQM {ret:.1f}  {sps:,.0f} steps/s  ETA {eta:.0f}s")
    finally:
        if metrics_file is not None:
            metrics_file.close()
    fr = final_returns(hist["env_steps"], hist["episode_return"], hist["episodes"], total_steps)
    agg = stats.aggregate(np.asarray(fr))
    summary = {
        "algo": cfg.algo,
        "env": cfg.env_id,
        "seeds": seeds,
        "total_timesteps": cfg.total_timesteps,
        "env_steps": total_steps,
        "final_return": [_json_float(x) for x in fr],
        "final_return_iqm": _json_float(agg["iqm"]),
        "final_return_ci": [_json_float(x) for x in agg["iqm_ci"]],
        "env_steps_per_s": round(total_steps * num_seeds / run_s),
        "env_steps_per_s_per_seed": round(total_steps / run_s),
        "compile_s": round(compile_s, 3),
        "wall_s": round(time.perf_counter() - t_start, 3),
        # spectrum diagnostics over every learning iteration and seed (max of the *_max ones)
        "diagnostics": {k: _json_float(v if k.endswith("_max") else (v / diag_n[k] if diag_n[k] else np.nan))
                        for k, v in diag_sum.items()},
    }
    if out_dir is not None:
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def resume_run(out: str | os.PathLike, *, progress: Callable[[str], None] | None = print,
               checkpoint_every_s: float | None = 60.0) -> dict[str, Any]:
    """Continue the run in folder ``out`` from its latest checkpoint, with the config it was started with."""
    from jaxrl_policy.config import config_from_dict
    out = Path(out)
    if not (out / "config.json").exists():
        raise ValueError(f"resume: {out} is not a run folder (no config.json)")
    d = json.loads((out / "config.json").read_text())
    seeds = d.pop("seeds")
    d.pop("run", None)
    cfg = config_from_dict(d)
    return run(cfg, len(seeds), out, progress=progress, checkpoint_every_s=checkpoint_every_s, resume=True)
