"""What every command shares: the run-level flags, building configs from flags, the process setup before
JAX's backend starts, mesh and divergence flags, and writing a report atomically."""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import math
import os
import shutil
import sys
import typing
from pathlib import Path
from typing import Annotated

import jax
import tyro

from jaxrl_policy._xla_flags import set_cpu_threads
from jaxrl_policy.algorithms.presets import preset_names, presets_for
from jaxrl_policy.core.config import BaseConfig, ConfigError, deferred_validation
from jaxrl_policy.io.sinks import make_sinks
from jaxrl_policy.running.build import algorithm_names, config_class, default_config
from jaxrl_policy.running.divergence import DivergenceGuard
from jaxrl_policy.running.mesh import (
    MeshError,
    check_devices,
    choose_mesh,
    deterministic_gpu,
    initialize_distributed,
    parse_mesh,
)
from jaxrl_policy.running.preflight import validate_all

EXIT_DIVERGED = 3


def fail(msg: str) -> None:
    print(f"jaxrl-policy: error: {msg}", file=sys.stderr)
    raise SystemExit(2)


def folder_arg(text: str) -> str:
    """An argparse ``type`` for ``--out``: a blank name is refused (argparse exits 2 naming the flag), where it
    would otherwise fall back to the default folder (or mean the current one) without a word."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: must name a folder or file (an empty name would write to the "
                                         "default place)")
    return text


def split_preset(rest: list[str]) -> tuple[str | None, list[str]]:
    """``--preset NAME`` (or ``--preset=NAME``) taken out of the config flags ``rest``: (NAME or None, the rest).

    The preset travels with the config flags rather than through each command's parser, so every command that
    builds configs from flags (train, compare, sweep, bench) takes it; given twice, the last one counts."""
    preset, out, i = None, [], 0
    while i < len(rest):
        x = rest[i]
        if x == "--preset":
            if i + 1 >= len(rest) or rest[i + 1].startswith("--"):
                fail(f"--preset needs a name: one of {', '.join(preset_names())}")
            preset, i = rest[i + 1], i + 2
            continue
        if x.startswith("--preset="):
            preset = x.split("=", 1)[1]
        else:
            out.append(x)
        i += 1
    return preset, out


def config_from_args(algo: str, env: str, rest: list[str], prog: str, shared: dict | None = None):
    """Defaults for (algo, env), then the ``--preset NAME`` of ``rest`` (``algorithms/presets.py``), then
    ``shared`` overrides, then tyro parses the other flags of ``rest`` on top."""
    preset, rest = split_preset(rest)
    try:
        with deferred_validation():  # defaults may need flags to be valid (distill's teachers); checked below
            default = default_config(algo, env, preset=preset, **(shared or {}))
    except ValueError as e:
        fail(str(e))
    cls = type(default)
    flags = cli_class(cls)
    with deferred_validation():  # tyro builds the dataclass; we validate once, with our message
        parsed = tyro.cli(flags, default=flags(**_values(default)), args=rest, prog=prog,
                          description=f"{algo} config fields (run-level flags: see `{prog.split()[0]} --help`)")
        cfg = cls(**_values(parsed))
        if preset is not None:  # a preset value derived from other fields (presets.Derived) sees the flags too
            named = set(config_flag_names(rest))
            given_ = {k: v for k, v in _values(cfg).items()
                      if k in named or f"no_{k}" in named or v != getattr(default, k)}
            cfg = default_config(algo, given_.pop("env_id", env), preset=preset, **{**(shared or {}), **given_})
    try:
        validate_all(cfg)  # fields, and the files it names (teachers, a dataset): exit 2 here, before compiling
    except ConfigError as e:
        fail(str(e))
    return cfg


def _values(cfg) -> dict:
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}


_CLI_CLASSES: dict[type, type] = {}


def cli_class(cls: type[BaseConfig]) -> type:
    """``cls`` as tyro should show it: a subclass whose traced fields (``Traced[...]``, ``core/config.py``) carry a
    ``[traced]`` tag after their default in ``--help``. Parsed values are turned back into ``cls``."""
    if cls in _CLI_CLASSES:
        return _CLI_CLASSES[cls]
    hints = typing.get_type_hints(cls, include_extras=True)
    ns: dict = {"__module__": cls.__module__, "__doc__": cls.__doc__, "__qualname__": cls.__qualname__,
                "__annotations__": {}}
    for f in dataclasses.fields(cls):
        if f.name in cls.TRACED:
            ns["__annotations__"][f.name] = Annotated[
                hints[f.name], tyro.conf.arg(help_behavior_hint=lambda d: f"(default: {d}) [traced]")]
            ns[f.name] = f.default
    _CLI_CLASSES[cls] = dataclasses.dataclass(frozen=True)(type(cls.__name__, (cls,), ns))
    return _CLI_CLASSES[cls]


def config_flag_names(rest: list[str]) -> list[str]:
    """The names that the tyro flags in ``rest`` spell, in order, values skipped: ``--hidden-sizes 64
    64`` → ``hidden_sizes``; a negated boolean stays as written (``--no-anneal-lr`` → ``no_anneal_lr``;
    ``shared_configs`` maps it to its field)."""
    names = []
    for x in rest:
        if x.startswith("--") and len(x) > 2:
            names.append(x[2:].split("=", 1)[0].replace("-", "_"))
    return names


def shared_configs(algos: list[str], env: str, rest: list[str], prog: str, shared: dict | None = None) -> list:
    """One config per algorithm with the config-field flags of ``rest`` applied to each of them.

    Used by ``compare`` and ``bench``, which run several algorithms from one command line: a flag
    must name a field that every one of them has (``--torso``, ``--hidden-sizes``,
    ``--learning-rate`` …), so that "the same network" means the same flags. Anything else exits 2
    naming the field and the algorithms without it, before any config is built. ``--preset NAME``
    applies to each algorithm and must have an entry for each of them on ``env``.
    """
    preset, flags = split_preset(rest)
    fields = {}
    for algo in algos:
        try:
            fields[algo] = {f.name for f in dataclasses.fields(config_class(algo))}
        except ValueError as e:
            fail(str(e))
    if preset is not None:  # every algorithm needs an entry in the preset: one message naming those without
        lacking_preset = [algo for algo in algos if preset not in presets_for(algo, env)]
        if lacking_preset:
            if preset not in preset_names():
                close = difflib.get_close_matches(preset, preset_names(), n=1)
                fail(f"unknown preset {preset!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                     + f"; presets: {', '.join(preset_names())}")
            fail(f"preset {preset!r} has no entry for {', '.join(lacking_preset)} on {env}; "
                 + "; ".join(f"presets for {algo} on {env}: {', '.join(presets_for(algo, env)) or 'none'}"
                             for algo in lacking_preset))
    for name in config_flag_names(flags):
        field = name[3:] if name.startswith("no_") and not any(name in f for f in fields.values()) else name
        lacking = [algo for algo in algos if field not in fields[algo]]
        if len(lacking) == len(algos):
            close = difflib.get_close_matches(field, sorted(set().union(*fields.values())), n=2)
            fail(f"--{field.replace('_', '-')}: not a config field of {', '.join(algos)}"
                  + (f"; did you mean {' or '.join('--' + c.replace('_', '-') for c in close)}?" if close else ""))
        if lacking:
            fail(f"--{field.replace('_', '-')}: not a config field of {', '.join(lacking)}; {prog.split()[1]} "
                  f"applies a config flag to every algorithm (set one algorithm's own fields with train, or "
                  f"sweep them and compare --tuned)")
    return [config_from_args(algo, env, rest, f"{prog} --algos {algo}", shared) for algo in algos]


def run_parser(prog: str, multi: bool) -> argparse.ArgumentParser:
    # allow_abbrev=False: an abbreviated flag is not another flag (`--seed 3` is the config field, not --seeds)
    p = argparse.ArgumentParser(prog=prog, add_help=False, allow_abbrev=False)
    if multi:
        p.add_argument("--algos", nargs="+", default=["ppo", "dqn", "vtrace"])
    else:
        p.add_argument("--algo", default="ppo")
    p.add_argument("--env", default="CartPole-v1")
    # (--preset NAME is not parsed here: it stays among the config flags, where config_from_args applies it
    # before them, so that every command building configs from flags takes it; RUN_HELP lists it)
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--out", default=None, type=folder_arg)
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--checkpoint-every", type=float, default=60.0)
    p.add_argument("--cpu-threads", type=int, default=None)
    p.add_argument("--devices", type=int, default=None)
    p.add_argument("--mesh", default=None)
    p.add_argument("--coordinator", default=None)
    p.add_argument("--num-processes", type=int, default=None)
    p.add_argument("--process-id", type=int, default=None)
    p.add_argument("--deterministic", action="store_true")
    p.add_argument("--resume", default=None)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--divergence-loss", type=float, default=1e10)
    p.add_argument("--divergence-grad-norm", type=float, default=1e10)
    p.add_argument("--debug-nans", action="store_true")
    p.add_argument("--tensorboard", default=None, metavar="DIR")
    p.add_argument("--wandb", default=None, metavar="PROJECT")
    return p


def sinks_of(a: argparse.Namespace, cfg) -> list:
    """The live-logging sinks of --tensorboard DIR / --wandb PROJECT (sinks.py), or [] without them."""
    if a.tensorboard is None and a.wandb is None:
        return []
    try:
        return make_sinks(a.tensorboard, a.wandb, cfg.to_dict())
    except ImportError as e:
        fail(str(e))
        raise


def given(argv: list[str], flag: str) -> bool:
    return any(x == flag or x.startswith(flag + "=") for x in argv)


def guard_of(a: argparse.Namespace):
    """The divergence bounds of --divergence-loss / --divergence-grad-norm (0 disables one)."""
    for flag, v in (("--divergence-loss", a.divergence_loss), ("--divergence-grad-norm", a.divergence_grad_norm)):
        if math.isnan(v) or v < 0:
            fail(f"{flag} = {v}: must be a number > 0 (0 disables the bound)")
    if a.resume is not None and a.overwrite:
        fail("--resume continues a run and --overwrite replaces it: give one of them")
    return DivergenceGuard(loss=a.divergence_loss or None, grad_norm=a.divergence_grad_norm or None)


def exit_if_diverged(summaries: list[dict]) -> None:
    bad = [s for s in summaries if "diverged" in s.get("status", [])]
    if bad:
        print(f"jaxrl-policy: {len(bad)} of {len(summaries)} run(s) diverged (see the message above and "
              "summary.json's status)", file=sys.stderr)
        raise SystemExit(EXIT_DIVERGED)


def cpu_threads_flag(n: int | None) -> None:
    """Apply --cpu-threads before anything starts JAX's backend (the config defaults read the env)."""
    if n is None:
        return
    try:
        set_cpu_threads(n)
    except (ValueError, RuntimeError) as e:
        fail(f"--cpu-threads = {n}: {str(e).split(': ', 1)[1]}")


def setup_process(a: argparse.Namespace, recorded_threads: int | None = None) -> None:
    """Process-wide settings, before anything starts JAX's backend: threads, determinism, several hosts."""
    cpu_threads_flag(a.cpu_threads if a.cpu_threads is not None else recorded_threads)
    if a.debug_nans:  # raise at the first NaN an operation produces (slow: for a rerun of a diverged run)
        jax.config.update("jax_debug_nans", True)
    if a.deterministic:
        deterministic_gpu()
    try:
        initialize_distributed(a.coordinator, a.num_processes, a.process_id)
    except MeshError as e:
        fail(str(e))


def mesh_args(a: argparse.Namespace, cfgs_runs: list[tuple[object, int]]) -> dict:
    """``devices`` and ``mesh_shape`` for the runner, checked for every (config, runs) before compiling."""
    try:
        shape = parse_mesh(a.mesh) if a.mesh else None
        n = check_devices(a.devices if a.devices is not None else (shape.devices if shape else None))
        exact = a.devices is not None or shape is not None or jax.process_count() > 1
        for cfg, runs in cfgs_runs:
            choose_mesh(n, runs, cfg.num_envs, shape, exact=exact,  # type: ignore[attr-defined]
                        env_id=cfg.env_id)  # type: ignore[attr-defined]
    except MeshError as e:
        fail(str(e))
    return {"devices": n if (a.devices is not None or shape is not None) else None, "mesh_shape": shape}


def checkpoint_every(x: float) -> float | None:
    if x < 0:
        fail(f"--checkpoint-every = {x}: must be >= 0 seconds (0 = no checkpoints)")
    return x or None


def run_help(**fields: str) -> str:
    """``RUN_HELP`` with the registered algorithms and the presets filled in (plus the command's own ``fields``)."""
    return RUN_HELP.format(algos=", ".join(algorithm_names()), presets=", ".join(preset_names()), **fields)


RUN_HELP = """run-level flags:
  --algo{s} NAME         algorithm{s}: {algos} (or one that --plugin FILE.py registers)
  --env ID              a gymnax id (default CartPole-v1), or brax:NAME, craftax:NAME, xminigrid:NAME,
                        navix:NAME, jumanji:NAME (docs/envs.md)
  --preset NAME         a published configuration for (algo, env), applied before the config flags (which
                        override it): {presets}
                        (docs/references.md: each one's source, published results and differences)
  --seeds N             seeds, run with jax.vmap inside one jit (default 1)
  --out DIR             run folder (config.json, metrics.jsonl, summary.json){extra}
  --quiet               no progress lines
  --checkpoint-every S  checkpoint all seeds' loop state after a chunk once S seconds passed since
                        the last one, and at the end (default 60; 0 = never)
  --cpu-threads N       XLA:CPU threads (sets PJRT_NPROC; default: all cores). 1 is faster for
                        small-batch programs on few cores (1-seed DQN), slower for large batches
  --devices N           devices to spread over (default: all local devices, fewer if the runs and envs
                        do not divide over all of them)
  --mesh batch=B,data=D the device mesh: seeds × points over batch, each run's envs over data
                        (default: runs over batch first, then envs over data)
  --coordinator HOST:PORT --num-processes P --process-id I
                        several hosts (jax.distributed; or JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES,
                        JAX_PROCESS_ID); only process 0 writes
  --deterministic       XLA's deterministic GPU ops (seeds alone do not fix GPU results)
  --overwrite           replace the run in --out (its run files, checkpoints and reports are removed
                        first); without it (or --resume) a folder that holds a run is refused (exit 2)
  --divergence-loss X   a run has diverged when an iteration's |loss| exceeds X (default 1e10; 0 = no
                        bound); a NaN/inf loss, gradient norm or parameter always counts. A diverged run
                        stops after its chunk, keeps its last good checkpoint, and the command exits 3
  --divergence-grad-norm X
                        the same for the gradient norm before clipping (default 1e10; 0 = no bound)
  --debug-nans          jax_debug_nans: stop at the first operation that makes a NaN (slow; for a rerun)
  --no-compile-cache    compile afresh (default: compiled programs are cached in JAXRL_POLICY_CACHE,
                        ~/.cache/jaxrl_policy; JAXRL_POLICY_CACHE=off turns the cache off too)
  --tensorboard DIR     also log every metric to TensorBoard event files in DIR (extra: tensorboard)
  --wandb PROJECT       also log to Weights & Biases project PROJECT, offline unless WANDB_MODE=online
                        (extra: wandb){resume}
{fields}"""


RESUME_HELP = """
  --resume DIR          continue the run in DIR from its latest checkpoint (its own config, seeds
                        and --cpu-threads; bit-identical to an uninterrupted run). Config flags, --algo,
                        --env and --seeds may be repeated: if they differ from the run's own, the
                        resume is refused with a field-by-field diff (another package version: a note)"""

COMPARE_RESUME_HELP = """
  --resume DIR          continue the compare in DIR: finished algorithms are kept, the others resume
                        from their checkpoints or start; with no other flags, each run's own config"""


def check_seeds(n: int) -> None:
    if n < 1:
        fail(f"--seeds = {n}: must be an integer >= 1")


def fmt_value(v) -> str:
    return repr(v) if isinstance(v, str) else str(v)


def config_diff(run: dict, cmd: dict) -> list[str]:
    """``field: run has X, command line has Y`` for every field that differs."""
    return [f"{k}: run has {fmt_value(run.get(k))}, command line has {fmt_value(cmd.get(k))}"
            for k in sorted(set(run) | set(cmd)) if run.get(k) != cmd.get(k)]


def report_atomically(make, out: Path) -> dict:
    """Run ``make(folder)`` (a report writer) into a temp folder, then move each file it wrote into
    ``out`` with ``os.replace``: a crash leaves the old report or the new one, never half of a file."""
    tmp = out / f".report-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        res = make(tmp)
        for f in tmp.iterdir():
            os.replace(f, out / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if res.get("plot"):
        res["plot"] = str(out / Path(res["plot"]).name)
    return res
