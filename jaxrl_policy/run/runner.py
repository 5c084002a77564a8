"""Run a config over several seeds — and several hyperparameter points — in host-visible chunks.

Shape legend: ``P`` points of a batch, ``S`` seeds, ``B = P·S`` runs in one program (point-major:
run ``p·S + s`` is point p, seed s), ``I`` iterations of a chunk, ``W`` log rows of a chunk.

A *batch* is one compiled program: P points that share every static field, differing only in
traced hyperparameters (``config.hparams``), each run with the same S seed keys (a paired
comparison). ``run`` is the batch of one point; ``sweep.run_sweep`` splits a sweep into
batches. Each point has its own run folder (the public contract in ../shared/ARCHITECTURE.md):

- ``config.json``: the resolved config of that point plus run metadata (seeds, versions, git,
  devices, command line, config hash);
- ``metrics.jsonl``: one line per seed and logged window (``iteration``, ``env_steps``,
  ``episode_return``, loss terms, diagnostics, ``wall_s``);
- ``summary.json``: ``algo``, ``env``, ``seeds``, ``total_timesteps``, ``final_return`` (per seed),
  ``final_return_iqm``, ``final_return_ci``, ``env_steps_per_s``, ``compile_s``, ``wall_s``, plus
  ``env_steps``, ``diagnostics`` (averaged over learning iterations and seeds; ``*_max`` are
  maxima) and, in a sweep, ``hparams`` (the point's swept values); ``status`` per seed (``ok`` /
  ``diverged``), ``divergence`` per seed (None, or the iteration, env steps, quantity and value),
  ``complete`` and ``env_steps_done`` (how far the run got).

Nothing is lost and nothing is silent (``rundir.py``): a folder that holds a run is refused unless
resumed or overwritten, a lock keeps a second process out, JSON files are replaced atomically and
``metrics.jsonl`` grows by whole lines, one write per chunk. After each chunk the host checks every
run for divergence (``DivergenceGuard``: a non-finite loss, gradient norm or parameter, or a loss /
gradient norm beyond its bound); a diverged batch stops after that chunk without checkpointing the
diverged state, and the summary says which seeds diverged, where and why.

Runs execute with ``jax.vmap`` inside one jit; the chunk program is compiled once and called
``num_chunks`` times, so progress and logs happen between chunks (``metrics.jsonl`` is flushed
after every chunk, so a crash keeps everything logged so far). Checkpoints hold the whole batch.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import sys
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from jaxrl_policy.core.config import BaseConfig, hparam_value
from jaxrl_policy.core.types import COUNTERS, DIAGNOSTICS
from jaxrl_policy.io import checkpoint
from jaxrl_policy.io.metadata import config_hash, run_metadata
from jaxrl_policy.io.rundir import (
    append_lines,
    atomic_write_json,
    fault_pause,
    open_run_folder,
    space_needed,
)
from jaxrl_policy.io.runfolder import truncate_metrics
from jaxrl_policy.loop.common import seed_keys
from jaxrl_policy.results import stats
from jaxrl_policy.run.build import build_loop, read_run_config, state_bytes
from jaxrl_policy.run.divergence import DEFAULT_GUARD, DivergenceGuard, find_divergence
from jaxrl_policy.run.mesh import (
    MeshShape,
    check_devices,
    choose_mesh,
    describe,
    fetch,
    is_writer,
    loop_state_specs,
    make_mesh,
    put,
)
from jaxrl_policy.run.mesh import shardings as mesh_shardings

FINAL_FRACTION = 0.05  # final_return: episodes that ended in the last 5% of the env-step budget


def stderr_note(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def stack_points(cfg: BaseConfig, points: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """The traced values of P points as arrays ``[P]`` in the program's dtypes (fields shared by all points)."""
    names = sorted(points[0]) if points else []
    for p in points:
        if sorted(p) != names:
            raise ValueError(f"points must all set the same traced fields: {names} vs {sorted(p)}")
    bad = [n for n in names if n not in cfg.TRACED]
    if bad:
        raise ValueError(f"{', '.join(bad)}: not traced {cfg.algo} fields")
    return {n: np.stack([hparam_value(n, p[n]) for p in points]) for n in names}


def run_metadata_for(cfg: BaseConfig, num_seeds: int, mesh: Any = None) -> dict[str, Any]:
    """What ``config.json`` holds: the resolved config, the seeds and the run metadata (mesh included)."""
    d = cfg.to_dict()
    run = {**run_metadata(), "num_seeds": num_seeds, "config_hash": config_hash(d)}
    if mesh is not None:
        run.update(describe(mesh))
    return {**d, "seeds": list(range(cfg.seed, cfg.seed + num_seeds)), "run": run}


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


def _json_float(x):
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x


_PROGRAMS: OrderedDict[Any, tuple] = OrderedDict()  # (cfg, shapes, mesh) -> (loop, init, chunk): in-process cache


def _programs(cfg: BaseConfig, mesh, keys, hp) -> tuple:
    """The loop and its compiled ``init`` / ``run_chunk`` programs for these inputs on this mesh.

    Compiled once per process for a (config, runs, swept fields, mesh): the batches of a sweep group,
    a crashed run's resume and repeated calls reuse them (most recent 8 kept).
    """
    key = (cfg, keys.shape, tuple(sorted(hp)), mesh.shape_tuple, tuple(d.id for d in mesh.devices.flat))
    if key in _PROGRAMS:
        _PROGRAMS.move_to_end(key)
        return _PROGRAMS[key]
    loop = build_loop(cfg)
    runs = NamedSharding(mesh, PartitionSpec("batch"))
    shapes = jax.eval_shape(jax.vmap(loop.init), keys, hp)
    state_sh = mesh_shardings(mesh, loop_state_specs(shapes))
    init = jax.jit(jax.vmap(loop.init), out_shardings=state_sh).lower(keys, hp).compile()
    chunk = jax.jit(jax.vmap(loop.run_chunk, in_axes=(0, None)), donate_argnums=0,
                    in_shardings=(state_sh, NamedSharding(mesh, PartitionSpec())), out_shardings=(state_sh, runs))
    abstract = jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh), shapes, state_sh)
    chunk_c = chunk.lower(abstract, jnp.int32(0)).compile()
    _PROGRAMS[key] = (loop, init, chunk_c)
    while len(_PROGRAMS) > 8:
        _PROGRAMS.popitem(last=False)
    return _PROGRAMS[key]


def run_batch(cfg: BaseConfig, points: list[dict[str, Any]], num_seeds: int, dirs: list[Path | None], *,
              state_dir: Path | None, log_rows: int = 200, progress: Callable[[str], None] | None = print,
              checkpoint_every_s: float | None = 60.0, resume: bool = False, label: str | None = None,
              hparams_of: Callable[[int], dict[str, Any]] | None = None, devices: int | None = None,
              mesh_shape: MeshShape | None = None, sinks: Sequence[Any] = (),
              guard: DivergenceGuard = DEFAULT_GUARD,
              note: Callable[[str], None] | None = stderr_note) -> list[dict[str, Any]]:
    """Train P points × S seeds of ``cfg`` as one program; returns one summary per point.

    ``points[p]`` holds point p's traced overrides (the same names for every point; ``[{}]`` for a
    plain run). ``dirs[p]`` is its run folder (or None: nothing written). The loop state of the whole
    batch is checkpointed in ``state_dir/checkpoints`` after a chunk once ``checkpoint_every_s``
    seconds have passed since the last one, and after the last chunk; ``resume=True`` continues
    from there (the folders must hold this batch's earlier progress). ``hparams_of(p)`` is what the point's
    summary reports as ``hparams`` (default: nothing). ``devices`` (default: all) and ``mesh_shape``
    (default: chosen by ``mesh.choose_mesh``) lay the B = P × S runs and each run's envs over a device
    mesh (``mesh.py``); a shape that does not divide raises ``MeshError`` before anything compiles. Only
    process 0 writes files. ``sinks`` (``jaxrl_policy.sinks``: TensorBoard, Weights & Biases) get
    ``write(run_name, rows)`` (the run folder's name) with the same rows as ``metrics.jsonl`` after
    every chunk (on process 0), so logging leaves the device once per chunk whatever the sinks are.

    ``guard``: when a run counts as diverged. If any run of the batch diverges, the batch stops after
    that chunk: its rows are logged, the diverged state is not checkpointed, ``note`` (default:
    stderr) gets one message naming the iteration, seeds, point, quantity and the last good
    checkpoint, and every summary says per seed ``status`` ok / diverged and how far the run got.
    Run folders are not locked or checked here (``run`` and ``sweep.run_sweep`` do that).
    """
    P, S = len(points), num_seeds
    if resume and (state_dir is None or not checkpoint.complete(state_dir)):
        raise ValueError(f"resume: {state_dir} has no complete checkpoint to resume from")
    exact = devices is not None or mesh_shape is not None or jax.process_count() > 1
    shape = choose_mesh(check_devices(devices), P * S, cfg.num_envs, mesh_shape, exact=exact)
    mesh = make_mesh(shape)
    writer = is_writer()
    dirs = [d if writer else None for d in dirs]  # only process 0 writes
    sinks = list(sinks) if writer else []
    seeds = list(range(cfg.seed, cfg.seed + S))
    if not resume:
        if writer and state_dir is not None:  # a new run (or sweep batch) never falls back to another's state
            shutil.rmtree(Path(state_dir) / checkpoint.DIR, ignore_errors=True)
        for p, d in enumerate(dirs):
            if d is not None:
                d.mkdir(parents=True, exist_ok=True)
                point_cfg = cfg.replace(**points[p]) if points[p] else cfg
                atomic_write_json(d / "config.json", run_metadata_for(point_cfg, S, mesh), indent=2)
                (d / "metrics.jsonl").write_bytes(b"")
    t_start = time.perf_counter()
    swept = stack_points(cfg, points) if points and points[0] else {}
    runs = NamedSharding(mesh, PartitionSpec("batch"))
    keys = put(np.tile(np.asarray(seed_keys(cfg.seed, S)), (P, 1)), runs)  # [B, 2]: every point has the same S keys
    hp = {k: put(np.repeat(v, S), runs) for k, v in swept.items()}  # [B]
    t0 = time.perf_counter()
    loop, init_c, chunk_c = _programs(cfg, mesh, keys, hp)
    state = init_c(keys, hp)
    compile_s = time.perf_counter() - t0  # ~0 when this process already compiled the same programs
    rows_per_chunk = max(1, math.ceil(log_rows / loop.num_chunks))
    total_steps = cfg.num_iterations * cfg.steps_per_iteration
    B = P * S
    hist = {"env_steps": np.zeros((0,), np.int32), "episode_return": np.zeros((B, 0), np.float32),
            "episodes": np.zeros((B, 0), np.int32), "eval_return": np.zeros((B, 0), np.float32)}
    diag_sum = np.array([[-np.inf if k.endswith("_max") else 0.0 for k in DIAGNOSTICS]] * P)  # [P, D]
    diag_n = np.zeros((P, len(DIAGNOSTICS)), np.int64)
    start, run_s = 0, 0.0
    if resume:
        assert state_dir is not None
        try:
            state, hist, meta, _ = checkpoint.restore_latest(state_dir, state, {k: v.dtype for k, v in hist.items()},
                                                             note=note)
        except checkpoint.CheckpointError as e:
            raise ValueError(f"resume: {e}") from None
        start, run_s = meta["chunks_done"], meta["run_s"]
        diag_sum, diag_n = np.asarray(meta["diag_sum"], np.float64), np.asarray(meta["diag_n"], np.int64)
        for d in dirs:
            if d is not None:
                truncate_metrics(d / "metrics.jsonl", start * loop.iterations_per_chunk)
        if progress is not None:
            progress(f"resuming {state_dir} from chunk {start}/{loop.num_chunks}")
    label = label or f"[{cfg.algo} {cfg.env_id} ×{S}]"
    last_save = time.perf_counter()
    diverged: list[dict | None] = [None] * (P * S)
    try:
        prev_grad_steps = np.zeros(P * S) if start == 0 else None  # gradient steps before the chunk
        for c in range(start, loop.num_chunks):
            t = time.perf_counter()
            state, m = chunk_c(state, jnp.int32(c))
            fault_pause("chunk", c + 1)  # crash tests: a kill lands while the chunk computes
            m = fetch(m)
            run_s += time.perf_counter() - t
            valid = min(loop.iterations_per_chunk, cfg.num_iterations - c * loop.iterations_per_chunk)
            m = {k: np.asarray(v)[:, :valid] for k, v in m.items()}  # drop the last chunk's skipped iterations
            m.setdefault("eval_return", np.full_like(m["episode_return"], np.nan))  # eval_episodes = 0
            hist = {"env_steps": np.concatenate([hist["env_steps"], m["env_steps"][0]]),
                    **{k: np.concatenate([hist[k], m[k]], 1) for k in ("episode_return", "episodes", "eval_return")}}
            for j, k in enumerate(DIAGNOSTICS):  # NaN where an iteration did not learn
                v = m[k].reshape(P, S * valid)
                ok = ~np.isnan(v)
                if k.endswith("_max"):
                    diag_sum[:, j] = np.maximum(diag_sum[:, j], np.where(ok, v, -np.inf).max(1))
                else:
                    diag_sum[:, j] += np.where(ok, v, 0.0).sum(1)
                    diag_n[:, j] += ok.sum(1)
            for p, d in enumerate(dirs):
                if d is not None:
                    part = {k: v[p * S:(p + 1) * S] for k, v in m.items()}
                    rows = window_rows(part, c * loop.iterations_per_chunk, rows_per_chunk, run_s, seeds)
                    append_lines(d / "metrics.jsonl", [json.dumps(r) for r in rows])  # whole lines, one write
                    for sink in sinks:
                        sink.write(d.name, rows)
            found = find_divergence(m, c * loop.iterations_per_chunk, guard, prev_grad_steps)
            prev_grad_steps = m["grad_steps"][:, -1] if "grad_steps" in m else None
            if any(x is not None for x in found):
                diverged = found
                if progress is not None:
                    progress(_progress_line(label, c, loop.num_chunks, m, P, S, total_steps, run_s, hparams_of))
                if note is not None:
                    ck = checkpoint.latest(state_dir) if state_dir is not None else None
                    note(_divergence_message(label, diverged, S, seeds, dirs, hparams_of, ck, c, loop.num_chunks))
                break
            last = c == loop.num_chunks - 1
            if state_dir is not None and checkpoint_every_s is not None and (
                    last or time.perf_counter() - last_save >= checkpoint_every_s):
                checkpoint.save(state_dir, c + 1, state, hist,
                                {"run_s": run_s, "diag_sum": diag_sum.tolist(), "diag_n": diag_n.tolist()})
                last_save = time.perf_counter()
            if progress is not None:
                progress(_progress_line(label, c, loop.num_chunks, m, P, S, total_steps, run_s, hparams_of))
    finally:
        for sink in sinks:
            sink.flush()
    agent = jax.tree.leaves(fetch(state.agent))  # every leaf [B, ...]
    evaluations = int((~np.isnan(hist["eval_return"][0])).sum()) if hist["eval_return"].shape[1] else 0
    eval_steps = cfg.eval_max_steps or loop.max_episode_steps or 0
    summaries = []
    wall_s = time.perf_counter() - t_start
    steps_done = int(hist["env_steps"][-1]) if hist["env_steps"].size else 0
    # complete: every iteration ran (a run learning from a dataset takes no env steps at all)
    complete = hist["env_steps"].size >= cfg.num_iterations
    for p in range(P):
        rows = slice(p * S, (p + 1) * S)
        # a run stopped early: its final return is over the last 5% of what ran
        fr = final_returns(hist["env_steps"], hist["episode_return"][rows], hist["episodes"][rows],
                           total_steps if complete else steps_done)
        agg = stats.aggregate(np.asarray(fr))
        # the evaluation after the last iteration: the greedy policy on the fixed evaluation episodes
        fe = [float(x) for x in hist["eval_return"][rows, -1]] if hist["eval_return"].shape[1] else [math.nan] * S
        agg_eval = stats.aggregate(np.asarray(fe))
        summary = {
            "algo": cfg.algo,
            "env": cfg.env_id,
            "seeds": seeds,
            "total_timesteps": cfg.total_timesteps,
            "env_steps": total_steps,
            "final_return": [_json_float(x) for x in fr],
            "final_return_iqm": _json_float(agg["iqm"]),
            "final_return_ci": [_json_float(x) for x in agg["iqm_ci"]],
            "final_eval_return": [_json_float(x) for x in fe],
            "final_eval_return_iqm": _json_float(agg_eval["iqm"]),
            "final_eval_return_ci": [_json_float(x) for x in agg_eval["iqm_ci"]],
            # evaluation episodes' env steps (not in the budget): evaluations × episodes × steps per episode
            "eval_env_steps": evaluations * cfg.eval_episodes * eval_steps,
            "env_steps_done": steps_done,  # 0 for a run that learns from a dataset
            "complete": complete,
            "status": ["ok" if x is None else "diverged" for x in diverged[rows]],
            "divergence": diverged[rows],
            # the whole program's rate (all points and seeds)
            "env_steps_per_s": round(steps_done * B / run_s) if run_s > 0 else None,
            "env_steps_per_s_per_seed": round(steps_done / run_s) if run_s > 0 else None,
            "compile_s": round(compile_s, 3),
            "wall_s": round(wall_s, 3),
            # spectrum diagnostics over every learning iteration and seed (max of the *_max ones)
            "diagnostics": {k: _json_float(float(diag_sum[p, j]) if k.endswith("_max") else
                                           (float(diag_sum[p, j] / diag_n[p, j]) if diag_n[p, j] else None))
                            for j, k in enumerate(DIAGNOSTICS)},
        }
        # fingerprints of each seed's final agent state (parameters, optimizer, target): equal digests,
        # bit-identical runs (same config, seeds, device count, CPU threads)
        summary["agent_sha256"] = [_digest([np.asarray(x)[b] for x in agent]) for b in range(p * S, (p + 1) * S)]
        if hparams_of is not None:
            summary["hparams"] = hparams_of(p)
        d = dirs[p]
        if d is not None:
            atomic_write_json(d / "summary.json", summary, indent=2)
        summaries.append(summary)
    return summaries


def _divergence_message(label, diverged, S, seeds, dirs, hparams_of, ck, c, num_chunks) -> str:
    """One message: which runs diverged where, what is kept, and what to try."""
    parts = []
    for b, x in enumerate(diverged):
        if x is None:
            continue
        p, s = divmod(b, S)
        where = f"seed {seeds[s]}"
        if len(dirs) > 1 or hparams_of is not None:
            name = dirs[p].name if dirs[p] is not None else f"point {p}"
            where += f" of {name} ({_fmt_point(hparams_of(p) if hparams_of else {})})"
        v = x["value"]
        parts.append(f"{where}: {x['quantity']} = {v if isinstance(v, str) else f'{v:.3g}'} at iteration "
                     f"{x['iteration']} (env steps {x['env_steps']:,})")
    kept = f"the last good checkpoint is {ck}" if ck is not None else "no checkpoint was written before it"
    return (f"{label} diverged: " + "; ".join(parts) + f". Stopped after chunk {c + 1}/{num_chunks}; the diverged "
            f"state is not checkpointed ({kept}); summary.json has status per seed. Lower the learning rate, "
            "rerun with --debug-nans to find the first NaN, or raise --divergence-loss / --divergence-grad-norm "
            "(0 disables) if these values are expected.")


def _digest(arrays: list[np.ndarray]) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def _progress_line(label, c, num_chunks, m, P, S, total_steps, run_s, hparams_of) -> str:
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
        best = "; ".join(f"{iqms[p]:.1f} ({_fmt_point(hparams_of(p) if hparams_of else {})})" for p in order)
        line += f"best return IQM {best}"
    return line + f"  {sps:,.0f} steps/s  ETA {eta:.0f}s"


def _fmt_point(hp: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in hp.items()) or "-"


def run(cfg: BaseConfig, num_seeds: int, out: str | os.PathLike | None, *, log_rows: int = 200,
        progress: Callable[[str], None] | None = print, checkpoint_every_s: float | None = 60.0,
        resume: bool = False, devices: int | None = None, mesh_shape: MeshShape | None = None,
        sinks: Sequence[Any] = (), overwrite: bool = False, guard: DivergenceGuard = DEFAULT_GUARD,
        note: Callable[[str], None] | None = stderr_note) -> dict[str, Any]:
    """Train ``num_seeds`` seeds of ``cfg``; write the run folder to ``out`` (if given); return the summary.

    With ``out`` and ``checkpoint_every_s``, the loop state of all seeds is checkpointed in
    ``out/checkpoints`` after a chunk once that many seconds have passed since the last checkpoint,
    and after the last chunk (``checkpoint.py``). ``resume=True`` continues the run in ``out`` from
    its latest checkpoint (``cfg`` and ``num_seeds`` must be the run's own; ``resume_run`` reads them
    from the folder). ``devices`` / ``mesh_shape`` / ``sinks`` / ``guard``: see ``run_batch``.

    ``out`` is checked before anything compiles (``rundir.open_run_folder``): writable, with room for
    the logs and three checkpoints, and locked for this process. A folder that already holds a run
    raises ``RunFolderError`` (a ``ValueError``) unless ``resume`` or ``overwrite`` (remove the old
    run first) is given.
    """
    out_dir = Path(out) if out is not None else None
    folder: Any = contextlib.nullcontext()
    if out_dir is not None and is_writer():
        def need() -> int:
            return space_needed_for(cfg, num_seeds, log_rows, checkpoint_every_s is not None)
        folder = open_run_folder(out_dir, resume=resume, overwrite=overwrite, need_bytes=need, depth=0, note=note)
    with folder:
        return run_batch(cfg, [{}], num_seeds, [out_dir], state_dir=out_dir, log_rows=log_rows, progress=progress,
                         checkpoint_every_s=checkpoint_every_s, resume=resume, devices=devices,
                         mesh_shape=mesh_shape, sinks=sinks, guard=guard, note=note)[0]


def space_needed_for(cfg: BaseConfig, runs: int, log_rows: int, checkpoints: bool) -> int:
    """``rundir.space_needed`` for ``runs`` runs of ``cfg``: the loop state's size comes from
    ``jax.eval_shape`` (traced, not compiled)."""
    return space_needed(state_bytes(cfg, runs, []) if checkpoints else 0, checkpoints, log_rows * runs)


def resume_run(out: str | os.PathLike, *, progress: Callable[[str], None] | None = print,
               checkpoint_every_s: float | None = 60.0, devices: int | None = None,
               mesh_shape: MeshShape | None = None, guard: DivergenceGuard = DEFAULT_GUARD,
               note: Callable[[str], None] | None = stderr_note) -> dict[str, Any]:
    """Continue the run in folder ``out`` from its latest checkpoint, with the config it was started with.

    The device count may differ from the run's (the checkpoint is restored onto the new mesh); results
    are then equal to the uninterrupted run up to float summation order, not bit-identical.
    """
    try:
        cfg, seeds, _ = read_run_config(out)
    except ValueError as e:
        raise ValueError(f"resume: {e}") from None
    return run(cfg, len(seeds), out, progress=progress, checkpoint_every_s=checkpoint_every_s, resume=True,
               devices=devices, mesh_shape=mesh_shape, guard=guard, note=note)
