"""Sweeps in one compile: P hyperparameter points × S seeds as one XLA program per static combination.

Shape legend: ``P`` points, ``S`` seeds, ``G`` compile groups (combinations of static values),
``N`` points per batch (``max_parallel``).

A point is a dict of config fields. Traced fields (``cfg.TRACED``: learning rate, γ, λ, clip ε,
coefficients, ε schedule, τ, ρ̄, c̄, policy lag, …) are data of the compiled program, so points
that differ only in them share one compile; static fields (env, sizes, counts, buffer sizes)
shape the program, so each combination of their values is a *group* with its own compile, run
one after another. Every point of every group starts from the same seed keys (paired
comparison: point p, seed i has the same initial parameters and env states for every p).

Each group runs in batches of at most ``max_parallel`` points (default: what fits in half the
device's free memory, estimated from the vmapped state); the last batch is padded with copies of
its last point so every batch of a group has the same shape and reuses the compiled program.

The sweep folder::

    DIR/sweep.json      base config, every point, groups and batches, seeds, axes, command line
    DIR/p000/ …         one run folder per point (config.json with that point's values,
                        metrics.jsonl, summary.json with its ``hparams``)
    DIR/checkpoints/    the loop state of the batch in progress (resume continues it)
    DIR/summary.json    {"runs": [...]}: every point's summary; ``jaxrl-policy report DIR`` reads it
"""
from __future__ import annotations

import contextlib
import dataclasses
import difflib
import itertools
import json
import math
import os
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import jax
import numpy as np

from jaxrl_policy.core.config import BaseConfig, ConfigError, deferred_validation
from jaxrl_policy.io import checkpoint
from jaxrl_policy.io.rundir import atomic_write_json, atomic_write_text, fmt_bytes, open_run_folder, space_needed
from jaxrl_policy.running.build import config_from_dict, state_bytes
from jaxrl_policy.running.divergence import DivergenceGuard
from jaxrl_policy.running.mesh import check_devices, choose_mesh, is_writer
from jaxrl_policy.running.runner import RunOptions, run_batch, stderr_note

SAFETY = 3.0  # working memory of a program ≈ SAFETY × its carried state (activations, gradients, copies)


class SweepError(ValueError):
    """A sweep specification or point failed validation (the message names field, value and rule)."""


# ---------------------------------------------------------------------------------------------
# parsing points: --grid, --points FILE, --random N --range
# ---------------------------------------------------------------------------------------------
def _field_type(cls: type[BaseConfig], name: str):
    hints = typing.get_type_hints(cls)
    if name not in hints or name not in {f.name for f in dataclasses.fields(cls)}:
        names = [f.name for f in dataclasses.fields(cls)]
        close = difflib.get_close_matches(name, names, n=2)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise SweepError(f"{name}: not a {cls.algo} config field{hint}")
    return hints[name]


def parse_value(cls: type[BaseConfig], name: str, text: str) -> Any:
    """A command-line value for field ``name`` of ``cls``, by the field's type.

    bool: true/false/1/0/yes/no; int (1e4 allowed when whole); float; ``none`` for optional
    fields; tuples of ints as ``64x64``; strings and literals as written.
    """
    tp = _field_type(cls, name)
    t = text.strip()
    args = typing.get_args(tp)
    if type(None) in args:
        if t.lower() in ("none", "null"):
            return None
        tp = next(a for a in args if a is not type(None))
    try:
        if tp is bool:
            low = t.lower()
            if low in ("true", "1", "yes"):
                return True
            if low in ("false", "0", "no"):
                return False
            raise ValueError
        if tp is int:
            v = float(t)
            if not v.is_integer():
                raise ValueError
            return int(v)
        if tp is float:
            return float(t)
        if typing.get_origin(tp) is tuple:
            return tuple(int(x) for x in t.lower().split("x"))
        if typing.get_origin(tp) is typing.Literal:
            if t not in typing.get_args(tp):
                raise ValueError
            return t
    except ValueError:
        kind = {bool: "a boolean (true/false)", int: "an integer", float: "a number"}.get(
            tp, f"one of {typing.get_args(tp)}" if typing.get_origin(tp) is typing.Literal else
            "integers joined by x (e.g. 64x64)" if typing.get_origin(tp) is tuple else str(tp))
        raise SweepError(f"{name} = {text!r}: must be {kind}") from None
    return t


def parse_grid(cls: type[BaseConfig], specs: list[str]) -> dict[str, list[Any]]:
    """``["learning_rate=1e-4,3e-4", "ent_coef=0,0.01"]`` → ``{field: [values]}``."""
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not values.strip():
            raise SweepError(f"--grid {spec!r}: must be FIELD=V1,V2,... with at least one value")
        if name in grid:
            raise SweepError(f"--grid {name}: given twice")
        grid[name] = [parse_value(cls, name, v) for v in values.split(",")]
    return grid


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The product of the grid's values, the first field varying slowest."""
    names = list(grid)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(grid[n] for n in names))]


RANGE_KINDS = ("log", "lin", "int", "choice")


def parse_range(cls: type[BaseConfig], spec: str) -> tuple[str, str, list[Any]]:
    """``learning_rate=log:1e-5:1e-2`` | ``ent_coef=lin:0:0.05`` | ``policy_lag=int:0:16`` | ``loss=choice:a,b``."""
    name, sep, rest = spec.partition("=")
    name = name.strip().replace("-", "_")
    kind, _, args = rest.partition(":")
    if not sep or kind not in RANGE_KINDS:
        raise SweepError(f"--range {spec!r}: must be FIELD=KIND:..., KIND one of {', '.join(RANGE_KINDS)}")
    if kind == "choice":
        return name, kind, [parse_value(cls, name, v) for v in args.split(",")]
    parts = args.split(":")
    if len(parts) != 2:
        raise SweepError(f"--range {spec!r}: {kind} needs LOW:HIGH")
    try:
        lo, hi = float(parts[0]), float(parts[1])
    except ValueError:
        raise SweepError(f"--range {spec!r}: LOW and HIGH must be numbers") from None
    if not lo < hi or (kind == "log" and lo <= 0):
        rule = "LOW < HIGH" + (" and LOW > 0 on a log scale" if kind == "log" else "")
        raise SweepError(f"--range {spec!r}: needs {rule}")
    _field_type(cls, name)
    return name, kind, [lo, hi]


def random_points(cls: type[BaseConfig], ranges: list[tuple[str, str, list[Any]]], n: int,
                  seed: int = 0) -> list[dict[str, Any]]:
    """``n`` points drawn independently per field (log-uniform, uniform, uniform integers, choices)."""
    rng = np.random.default_rng(seed)
    points: list[dict[str, Any]] = [{} for _ in range(n)]
    for name, kind, args in ranges:
        if kind == "log":
            vals = np.exp(rng.uniform(np.log(args[0]), np.log(args[1]), n)).tolist()
        elif kind == "lin":
            vals = rng.uniform(args[0], args[1], n).tolist()
        elif kind == "int":
            vals = rng.integers(int(args[0]), int(args[1]) + 1, n).tolist()
        else:
            vals = [args[i] for i in rng.integers(0, len(args), n)]
        tp = _field_type(cls, name)
        for p, v in zip(points, vals, strict=True):
            p[name] = int(round(v)) if tp is int and kind != "choice" else v
    return points


def load_points(path: str | os.PathLike) -> list[dict[str, Any]]:
    """A JSON file holding a non-empty list of objects (field → value)."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as e:
        raise SweepError(f"--points {path}: cannot be read ({e.strerror})") from None
    except json.JSONDecodeError as e:
        raise SweepError(f"--points {path}: not JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(data, list) or not data or not all(isinstance(p, dict) for p in data):
        raise SweepError(f"--points {path}: must be a non-empty JSON list of objects (field → value)")
    return data


def axis_scales(points: list[dict[str, Any]], log_fields: frozenset[str] | set[str] = frozenset()) -> dict[str, str]:
    """``log`` for fields drawn log-uniformly or whose positive grid values span ≥ 10×, else ``linear``."""
    out = {}
    for name in sorted({k for p in points for k in p}):
        vals = [p[name] for p in points if name in p]
        nums = [v for v in vals if isinstance(v, (int, float)) and not isinstance(v, bool)]
        span = len(nums) == len(vals) and min(nums, default=0) > 0 and max(nums) / min(nums) >= 10
        out[name] = "log" if name in log_fields or span else "linear"
    return out


# ---------------------------------------------------------------------------------------------
# planning: validate every point, group by static fields
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Group:
    """Points that share one compiled program."""

    cfg: BaseConfig  # the group's config: static values applied (V-trace: max_policy_lag covers the points)
    point_ids: list[int]
    traced: list[str]  # traced fields the points set (the program's swept inputs)

    def point_config(self, point: dict[str, Any]) -> BaseConfig:
        return self.cfg.replace(**{k: point[k] for k in self.traced if k in point})


@dataclass(frozen=True)
class SweepPlan:
    base: BaseConfig
    points: list[dict[str, Any]]
    groups: list[Group]

    def static_label(self, g: Group) -> str:
        static = sorted({k for i in g.point_ids for k in self.points[i]} - set(self.base.TRACED))
        return ", ".join(f"{k}={getattr(g.cfg, k)}" for k in static) or "-"


def plan_sweep(base: BaseConfig, points: list[dict[str, Any]]) -> SweepPlan:
    """Validate every point against ``base`` (one error naming point, field, value and rule for all
    problems) and group the points by their static values."""
    if not points:
        raise SweepError("the sweep has no points (an empty grid?)")
    cls = type(base)
    problems: list[str] = []
    names = {f.name for f in dataclasses.fields(cls)}
    for i, p in enumerate(points):
        unknown = [k for k in p if k not in names]
        for k in unknown:
            close = difflib.get_close_matches(k, sorted(names), n=2)
            problems.append(f"point {i}: {k}: not a {base.algo} config field"
                            + (f"; did you mean {' or '.join(close)}?" if close else ""))
        if unknown:
            continue
        with deferred_validation():
            cfg = dataclasses.replace(base, **p)
        try:
            cfg.validate()
        except ConfigError as e:
            desc = ", ".join(f"{k}={v}" for k, v in p.items())
            problems += [f"point {i} ({desc}): {n} = {v!r}: {rule}" for n, v, rule in e.problems]
    if problems:
        raise SweepError(f"invalid {base.algo} sweep ({len(problems)} problem(s)):\n  " + "\n  ".join(problems))
    static_names = [n for n in base.static_fields() if any(n in p for p in points)]
    by_static: dict[tuple, list[int]] = {}
    for i, p in enumerate(points):
        key = tuple(_hashable(p.get(n, getattr(base, n))) for n in static_names)
        by_static.setdefault(key, []).append(i)
    groups = []
    for key, ids in by_static.items():
        cfg = base.replace(**dict(zip(static_names, key, strict=True)))
        traced = sorted({k for i in ids for k in points[i]} & cfg.TRACED)
        for name in traced:
            # a traced field whose static maximum sizes a buffer (V-trace: policy_lag ≤ max_policy_lag, the
            # ring of past parameters): left at None, the maximum covers every point of the group
            cap = f"max_{name}"
            if hasattr(cfg, cap) and getattr(cfg, cap) is None:
                cfg = cfg.replace(**{cap: max(int(points[i].get(name, getattr(cfg, name))) for i in ids)})
        groups.append(Group(cfg=cfg, point_ids=ids, traced=traced))
    return SweepPlan(base=base, points=points, groups=groups)


def _hashable(v):
    return tuple(v) if isinstance(v, list) else v


# ---------------------------------------------------------------------------------------------
# memory: the size of the vmapped state, and how many points fit at once
# ---------------------------------------------------------------------------------------------
def available_memory_bytes() -> int:
    """Free memory of the first device: the accelerator's limit minus what is in use, or the host's
    available RAM for the CPU backend."""
    dev = jax.devices()[0]
    if dev.platform != "cpu":
        stats = dev.memory_stats() or {}
        if "bytes_limit" in stats:
            return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def batch_sizes(plan: SweepPlan, num_seeds: int, max_parallel: int | None,
                memory: int | None = None) -> list[dict[str, Any]]:
    """Per group: state bytes per point and the batch size, checked against the device's memory."""
    memory = available_memory_bytes() if memory is None else memory
    budget = memory // 2
    out, too_big = [], []
    for g in plan.groups:
        per_point = state_bytes(g.cfg, num_seeds, g.traced)
        need = int(SAFETY * per_point)
        if need > budget:
            too_big.append(f"{plan.static_label(g)}: one point × {num_seeds} seeds needs ~{fmt_bytes(need)} "
                           f"(state {fmt_bytes(per_point)} × {SAFETY:g}), more than half the free device memory "
                           f"({fmt_bytes(memory)} free)")
            continue
        fit = max(1, budget // max(need, 1))
        n = min(len(g.point_ids), max_parallel or fit)
        out.append({"state_bytes_per_point": per_point, "points_per_batch": n, "fits": int(fit)})
    if too_big:
        raise SweepError("the sweep does not fit on the device:\n  " + "\n  ".join(too_big))
    return out


# ---------------------------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------------------------
def point_dir(out: Path, i: int) -> Path:
    return out / f"p{i:03d}"


def run_sweep(base: BaseConfig, points: list[dict[str, Any]], num_seeds: int, out: str | os.PathLike, *,
              max_parallel: int | None = None, progress: Callable[[str], None] | None = print,
              checkpoint_every_s: float | None = 60.0, resume: bool = False, log_rows: int = 200,
              log_fields: frozenset[str] | set[str] = frozenset(), command: str | None = None,
              devices: int | None = None, mesh_shape: Any = None, sinks: Any = (), overwrite: bool = False,
              guard: Any = None, note: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run every point × ``num_seeds`` seeds; write the sweep folder; return ``{"runs": [...]}``.

    ``resume=True`` skips points whose ``summary.json`` exists and continues the batch in
    progress from ``DIR/checkpoints`` (the plan is read back from ``DIR/sweep.json``). A folder
    that already holds a sweep or runs is refused (``rundir.RunFolderError``) unless ``resume`` or
    ``overwrite`` is given; the folder is locked for this process while the sweep runs. ``guard``
    (``runner.DivergenceGuard``): a batch in which a point diverges stops after that chunk, its
    points' summaries say so, and the sweep goes on with the next batch.
    """
    out = Path(out)
    plan = plan_sweep(base, points)
    sizes = batch_sizes(plan, num_seeds, max_parallel)
    batches = []
    for g, size in zip(plan.groups, sizes, strict=True):
        n = size["points_per_batch"]
        for j in range(0, len(g.point_ids), n):
            ids = g.point_ids[j:j + n]
            batches.append({"group": plan.groups.index(g), "points": ids, "pad": n - len(ids)})
    exact = devices is not None or mesh_shape is not None or jax.process_count() > 1
    for b in batches:  # every program's runs and envs must divide over the mesh: checked before anything runs
        choose_mesh(check_devices(devices), (len(b["points"]) + b["pad"]) * num_seeds,
                    plan.groups[b["group"]].cfg.num_envs, mesh_shape, exact=exact,
                    env_id=plan.groups[b["group"]].cfg.env_id)
    doc = {"algo": base.algo, "env": base.env_id, "base": base.to_dict(), "points": points,
           "seeds": list(range(base.seed, base.seed + num_seeds)), "axes": axis_scales(points, log_fields),
           "groups": [{"static": plan.static_label(g), "points": g.point_ids, "traced": g.traced, **s}
                      for g, s in zip(plan.groups, sizes, strict=True)],
           "batches": batches, "command": command}
    if progress is not None:
        for gi, (g, s) in enumerate(zip(plan.groups, sizes, strict=True)):
            progress(f"sweep group {gi + 1}/{len(plan.groups)} ({plan.static_label(g)}): {len(g.point_ids)} points, "
                     f"traced {', '.join(g.traced) or '-'}; vmapped state {fmt_bytes(s['state_bytes_per_point'])} "
                     f"per point × {num_seeds} seeds, {s['points_per_batch']} points per program "
                     f"({fmt_bytes(s['points_per_batch'] * s['state_bytes_per_point'])})")
    writer = is_writer()
    opts = RunOptions(log_rows=log_rows, progress=progress, checkpoint_every_s=checkpoint_every_s, devices=devices,
                      mesh_shape=mesh_shape, sinks=sinks, guard=guard if guard is not None else DivergenceGuard(),
                      note=note if note is not None else stderr_note)
    folder: Any = contextlib.nullcontext()
    if writer:
        state = max(s["state_bytes_per_point"] * s["points_per_batch"] for s in sizes)
        need = space_needed(state if checkpoint_every_s is not None else 0, checkpoint_every_s is not None,
                            log_rows * num_seeds * len(points))
        folder = open_run_folder(out, resume=resume, overwrite=overwrite, need_bytes=need, depth=1, note=opts.note)
    with folder:
        if writer and not resume:
            atomic_write_json(out / "sweep.json", doc, indent=2, default=str)
        return _run_batches(plan, points, batches, num_seeds, out, resume, writer, opts)


def _run_batches(plan: SweepPlan, points: list[dict[str, Any]], batches: list[dict[str, Any]], num_seeds: int,
                 out: Path, resume: bool, writer: bool, opts: RunOptions) -> dict[str, Any]:
    base = plan.base
    summaries: dict[int, dict[str, Any]] = {}
    for bi, b in enumerate(batches):
        g = plan.groups[b["group"]]
        ids = b["points"] + [b["points"][-1]] * b["pad"]
        dirs = [point_dir(out, i) for i in b["points"]] + [None] * b["pad"]
        if resume and all((point_dir(out, i) / "summary.json").exists() for i in b["points"]):
            for i in b["points"]:
                summaries[i] = json.loads((point_dir(out, i) / "summary.json").read_text())
            continue
        cont = resume and checkpoint.latest(out) is not None and _checkpoint_batch(out) == bi
        label = (f"[sweep {base.algo} {base.env_id} batch {bi + 1}/{len(batches)}: "
                 f"{len(b['points'])} points × {num_seeds} seeds]")
        pts = [{k: points[i][k] for k in g.traced if k in points[i]} for i in ids]
        pts = [{k: p.get(k, getattr(g.cfg, k)) for k in g.traced} for p in pts]
        if writer:
            _mark_batch(out, bi)

        def hparams_of(p, pts=pts, ids=ids, traced=tuple(g.traced)):
            return dict(pts[p]) | {k: _plain(points[ids[p]][k]) for k in points[ids[p]] if k not in traced}

        res = run_batch(g.cfg, pts, num_seeds, dirs, state_dir=out, opts=opts, resume=cont, label=label,
                        hparams_of=hparams_of)
        summaries.update(zip(b["points"], res, strict=False))  # (the padding's summaries are dropped)
    runs = [summaries[i] for i in range(len(points))]
    if writer:
        atomic_write_json(out / "summary.json", {"runs": runs}, indent=2)
    return {"runs": runs}


def _plain(v):
    return list(v) if isinstance(v, tuple) else v


def _mark_batch(out: Path, bi: int) -> None:
    atomic_write_text(out / "BATCH", str(bi))


def _checkpoint_batch(out: Path) -> int | None:
    try:
        return int((out / "BATCH").read_text())
    except (OSError, ValueError):
        return None


def resume_sweep(out: str | os.PathLike, *, progress: Callable[[str], None] | None = print,
                 checkpoint_every_s: float | None = 60.0, guard: Any = None, devices: int | None = None,
                 mesh_shape: Any = None) -> dict[str, Any]:
    """Continue the sweep in ``out`` with the plan it was started with."""
    out = Path(out)
    path = out / "sweep.json"
    if not path.exists():
        raise SweepError(f"resume: {out} is not a sweep folder (no sweep.json)")
    doc = json.loads(path.read_text())
    base = config_from_dict(doc["base"])
    points = [{k: tuple(v) if isinstance(v, list) else v for k, v in p.items()} for p in doc["points"]]
    max_parallel = max(b["points_per_batch"] for b in doc["groups"])
    return run_sweep(base, points, len(doc["seeds"]), out, max_parallel=max_parallel, progress=progress,
                     checkpoint_every_s=checkpoint_every_s, resume=True,
                     log_fields={k for k, v in doc["axes"].items() if v == "log"}, guard=guard, devices=devices,
                     mesh_shape=mesh_shape)


def best_point(sweep_dir: str | os.PathLike) -> tuple[int, dict[str, Any]]:
    """Index and summary of the point with the highest final-return IQM (ties: the first)."""
    runs = json.loads((Path(sweep_dir) / "summary.json").read_text())["runs"]
    scores = [r["final_return_iqm"] if r.get("final_return_iqm") is not None else -math.inf for r in runs]
    i = int(np.argmax(scores))
    return i, runs[i]
