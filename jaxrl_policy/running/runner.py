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
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from jaxrl_policy.core.config import BaseConfig, hparam_value
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
from jaxrl_policy.running import programs as compiled
from jaxrl_policy.running.build import read_run_config, state_bytes
from jaxrl_policy.running.divergence import DEFAULT_GUARD, DivergenceGuard, find_divergence
from jaxrl_policy.running.history import History, divergence_message, point_summary, progress_line, window_rows
from jaxrl_policy.running.mesh import (
    MeshShape,
    check_devices,
    choose_mesh,
    describe,
    fetch,
    is_writer,
    make_mesh,
    put,
)


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
    return {n: np.stack([hparam_value(type(cfg), n, p[n]) for p in points]) for n in names}


def run_metadata_for(cfg: BaseConfig, num_seeds: int, mesh: Any = None) -> dict[str, Any]:
    """What ``config.json`` holds: the resolved config, the seeds and the run metadata (mesh included)."""
    d = cfg.to_dict()
    run = {**run_metadata(), "num_seeds": num_seeds, "config_hash": config_hash(d)}
    if mesh is not None:
        run.update(describe(mesh))
    return {**d, "seeds": list(range(cfg.seed, cfg.seed + num_seeds)), "run": run}


class RunOptions(NamedTuple):
    """How a batch runs and reports, besides what it trains: the options ``run``, ``resume_run``, ``run_batch``
    and ``sweep.run_sweep`` pass down.

    ``log_rows``: metrics.jsonl windows per seed over the run; ``progress``: one line per chunk (None:
    silent); ``checkpoint_every_s``: seconds between checkpoints (None: none); ``devices`` / ``mesh_shape``:
    the device mesh (``mesh.py``; default: all devices, shape chosen by ``choose_mesh``); ``sinks``:
    TensorBoard / W&B writers (``io/sinks.py``) given each chunk's rows; ``guard``: when a run counts as
    diverged; ``note``: where warnings and the divergence message go (stderr).
    """

    log_rows: int = 200
    progress: Callable[[str], None] | None = print
    checkpoint_every_s: float | None = 60.0
    devices: int | None = None
    mesh_shape: MeshShape | None = None
    sinks: Sequence[Any] = ()
    guard: DivergenceGuard = DEFAULT_GUARD
    note: Callable[[str], None] | None = stderr_note


DEFAULT_OPTIONS = RunOptions()


def _open_outputs(cfg: BaseConfig, points: list[dict[str, Any]], S: int, dirs: list[Path | None],
                  state_dir: Path | None, mesh) -> None:
    """A new batch: no checkpoint of another run to fall back to; each point's config.json and an empty log."""
    if state_dir is not None:
        shutil.rmtree(Path(state_dir) / checkpoint.DIR, ignore_errors=True)
    for p, d in enumerate(dirs):
        if d is not None:
            d.mkdir(parents=True, exist_ok=True)
            point_cfg = cfg.replace(**points[p]) if points[p] else cfg
            atomic_write_json(d / "config.json", run_metadata_for(point_cfg, S, mesh), indent=2)
            (d / "metrics.jsonl").write_bytes(b"")


def _log_chunk(m: dict[str, np.ndarray], dirs: list[Path | None], S: int, first_iteration: int, rows: int,
               run_s: float, seeds: list[int], sinks: Sequence[Any]) -> None:
    """Each point's rows of one chunk: appended to its metrics.jsonl (whole lines, one write) and given to the sinks."""
    for p, d in enumerate(dirs):
        if d is not None:
            part = {k: v[p * S:(p + 1) * S] for k, v in m.items()}
            lines = window_rows(part, first_iteration, rows, run_s, seeds)
            append_lines(d / "metrics.jsonl", [json.dumps(r) for r in lines])
            for sink in sinks:
                sink.write(d.name, lines)


class _Batch(NamedTuple):
    """What stays fixed while a batch's chunks run."""

    cfg: BaseConfig
    loop: Any  # loop.common.Loop
    chunk: Callable  # the compiled run_chunk
    P: int
    S: int
    seeds: list[int]
    dirs: list[Path | None]
    sinks: list[Any]
    state_dir: Path | None
    opts: RunOptions
    label: str
    hparams_of: Callable[[int], dict[str, Any]] | None


def run_batch(cfg: BaseConfig, points: list[dict[str, Any]], num_seeds: int, dirs: list[Path | None], *,
              state_dir: Path | None, opts: RunOptions = DEFAULT_OPTIONS, resume: bool = False,
              label: str | None = None, hparams_of: Callable[[int], dict[str, Any]] | None = None
              ) -> list[dict[str, Any]]:
    """Train P points × S seeds of ``cfg`` as one program; returns one summary per point.

    ``points[p]`` holds point p's traced overrides (the same names for every point; ``[{}]`` for a plain
    run); ``dirs[p]`` its run folder (None: nothing written). The loop state of the whole batch is
    checkpointed in ``state_dir/checkpoints`` (``opts.checkpoint_every_s``, and after the last chunk);
    ``resume=True`` continues from there. ``hparams_of(p)``: what point p's summary reports as
    ``hparams``. Only process 0 writes. If a run diverges (``opts.guard``), the batch stops after that
    chunk: its rows are logged, the diverged state is not checkpointed, ``opts.note`` gets one message,
    and every summary says per seed ``status`` ok / diverged. Run folders are locked and checked by the
    callers (``run``, ``sweep.run_sweep``), not here.
    """
    P, S = len(points), num_seeds
    if resume and (state_dir is None or not checkpoint.complete(state_dir)):
        raise ValueError(f"resume: {state_dir} has no complete checkpoint to resume from")
    exact = opts.devices is not None or opts.mesh_shape is not None or jax.process_count() > 1
    mesh = make_mesh(choose_mesh(check_devices(opts.devices), P * S, cfg.num_envs, opts.mesh_shape, exact=exact,
                                 env_id=cfg.env_id))
    writer = is_writer()
    dirs = [d if writer else None for d in dirs]  # only process 0 writes
    if not resume and writer:  # a new run (or sweep batch) never falls back to another's state
        _open_outputs(cfg, points, S, dirs, state_dir, mesh)
    t_start = time.perf_counter()
    swept = stack_points(cfg, points) if points and points[0] else {}
    runs = NamedSharding(mesh, PartitionSpec("batch"))
    keys = put(np.tile(np.asarray(seed_keys(cfg.seed, S)), (P, 1)), runs)  # [B, 2]: every point has the same S keys
    hp = {k: put(np.repeat(v, S), runs) for k, v in swept.items()}  # [B]
    t0 = time.perf_counter()
    loop, init_c, chunk_c = compiled.programs(cfg, mesh, keys, hp)
    state = init_c(keys, hp)
    compile_s = time.perf_counter() - t0  # ~0 when this process already compiled the same programs
    batch = _Batch(cfg, loop, chunk_c, P, S, list(range(cfg.seed, cfg.seed + S)), dirs,
                   list(opts.sinks) if writer else [], state_dir, opts, label or f"[{cfg.algo} {cfg.env_id} ×{S}]",
                   hparams_of)
    hist, start, run_s = History(P, S), 0, 0.0
    if resume:
        state, start, run_s = _restore(batch, state, hist)
    state, diverged, run_s = _run_chunks(batch, state, hist, start, run_s)
    agent = jax.tree.leaves(fetch(state.agent))  # every leaf [B, ...]
    timing = {"run_s": run_s, "compile_s": compile_s, "wall_s": time.perf_counter() - t_start}
    eval_steps = cfg.eval_max_steps or loop.max_episode_steps or 0
    summaries = []
    for p in range(P):
        summary = point_summary(cfg, p, hist, agent, seeds=batch.seeds, diverged=diverged, timing=timing,
                                eval_steps=eval_steps)
        if hparams_of is not None:
            summary["hparams"] = hparams_of(p)
        d = dirs[p]
        if d is not None:
            atomic_write_json(d / "summary.json", summary, indent=2)
        summaries.append(summary)
    return summaries


def _restore(b: _Batch, state: Any, hist: History) -> tuple[Any, int, float]:
    """Continue from the latest usable checkpoint: ``(state, chunks done, run seconds)``; the logs lose the rows
    written after it."""
    assert b.state_dir is not None
    try:
        state, arrays, meta, _ = checkpoint.restore_latest(b.state_dir, state, hist.dtypes(), note=b.opts.note)
    except checkpoint.CheckpointError as e:
        raise ValueError(f"resume: {e}") from None
    hist.restore(arrays, meta)
    start = meta["chunks_done"]
    for d in b.dirs:
        if d is not None:
            truncate_metrics(d / "metrics.jsonl", start * b.loop.iterations_per_chunk)
    if b.opts.progress is not None:
        b.opts.progress(f"resuming {b.state_dir} from chunk {start}/{b.loop.num_chunks}")
    return state, start, meta["run_s"]


def _run_chunks(b: _Batch, state: Any, hist: History, start: int, run_s: float
                ) -> tuple[Any, list[dict | None], float]:
    """Chunks ``start …`` of the batch: log, check for divergence, checkpoint, report progress after each.
    Returns ``(state, divergence per run, run seconds)``."""
    cfg, loop, opts, P, S = b.cfg, b.loop, b.opts, b.P, b.S
    ipc = loop.iterations_per_chunk
    rows_per_chunk = max(1, math.ceil(opts.log_rows / loop.num_chunks))
    total_steps = cfg.num_iterations * cfg.steps_per_iteration
    last_save = time.perf_counter()
    diverged: list[dict | None] = [None] * (P * S)
    try:
        prev_grad_steps = np.zeros(P * S) if start == 0 else None  # gradient steps before the chunk
        for c in range(start, loop.num_chunks):
            t = time.perf_counter()
            state, m = b.chunk(state, jnp.int32(c))
            fault_pause("chunk", c + 1)  # crash tests: a kill lands while the chunk computes
            m = fetch(m)
            run_s += time.perf_counter() - t
            valid = min(ipc, cfg.num_iterations - c * ipc)
            m = {k: np.asarray(v)[:, :valid] for k, v in m.items()}  # drop the last chunk's skipped iterations
            m.setdefault("eval_return", np.full_like(m["episode_return"], np.nan))  # eval_episodes = 0
            hist.append(m)
            _log_chunk(m, b.dirs, S, c * ipc, rows_per_chunk, run_s, b.seeds, b.sinks)
            found = find_divergence(m, c * ipc, opts.guard, prev_grad_steps)
            prev_grad_steps = m["grad_steps"][:, -1] if "grad_steps" in m else None
            line = (progress_line(b.label, c, loop.num_chunks, m, P, S, total_steps, run_s, b.hparams_of)
                    if opts.progress is not None else "")
            if any(x is not None for x in found):
                diverged = found
                if opts.progress is not None:
                    opts.progress(line)
                if opts.note is not None:
                    ck = checkpoint.latest(b.state_dir) if b.state_dir is not None else None
                    opts.note(divergence_message(b.label, diverged, S, b.seeds, b.dirs, b.hparams_of, ck, c,
                                                 loop.num_chunks))
                break
            if b.state_dir is not None and opts.checkpoint_every_s is not None and (
                    c == loop.num_chunks - 1 or time.perf_counter() - last_save >= opts.checkpoint_every_s):
                checkpoint.save(b.state_dir, c + 1, state, hist.arrays, hist.meta(run_s))
                last_save = time.perf_counter()
            if opts.progress is not None:
                opts.progress(line)
    finally:
        for sink in b.sinks:
            sink.flush()
    return state, diverged, run_s


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
    opts = RunOptions(log_rows=log_rows, progress=progress, checkpoint_every_s=checkpoint_every_s, devices=devices,
                      mesh_shape=mesh_shape, sinks=sinks, guard=guard, note=note)
    with folder:
        return run_batch(cfg, [{}], num_seeds, [out_dir], state_dir=out_dir, opts=opts, resume=resume)[0]


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
