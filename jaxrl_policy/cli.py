"""``jaxrl-policy``: train | compare | sweep | bench | report | distill | collect.

``train`` and ``compare`` take run-level flags (``--algo``/``--algos``, ``--env``, ``--seeds``,
``--out``); every config field of the chosen algorithm is a flag too, parsed by tyro from the
algorithm's dataclass with the env's defaults (``jaxrl-policy train --algo dqn --help`` lists
them). ``compare`` and ``bench`` take the fields that all their algorithms share and apply them
to each (``shared_configs``). Bad values exit with code 2 and one message naming every bad
field, before compiling.

``--plugin FILE.py`` (or a module name; repeatable, any command) imports code that registers its
own algorithms (``jaxrl_policy.algorithms.register_algorithm``; ``experiments/a2c.py`` is one).

Exit codes: 0 done; 2 bad input or an unusable run folder (exists without --resume/--overwrite,
locked by a live process, unwritable, full, a --resume whose flags differ from the run's own),
before compiling; 3 a run diverged (``runner.DivergenceGuard``: the other runs' results are
written, ``summary.json`` says which seeds diverged, where and why).
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import sys
from pathlib import Path

COMMANDS = ("train", "compare", "sweep", "bench", "report", "distill", "collect")
EXIT_DIVERGED = 3


def _fail(msg: str) -> None:
    print(f"jaxrl-policy: error: {msg}", file=sys.stderr)
    raise SystemExit(2)


def config_from_args(algo: str, env: str, rest: list[str], prog: str, shared: dict | None = None):
    """Defaults for (algo, env), then ``shared`` overrides, then tyro parses ``rest`` on top."""
    import tyro

    from jaxrl_policy.config import ConfigError, default_config, deferred_validation
    try:
        with deferred_validation():  # defaults may need flags to be valid (distill's teachers); checked below
            default = default_config(algo, env, **(shared or {}))
    except ValueError as e:
        _fail(str(e))
    with deferred_validation():  # tyro builds the dataclass; we validate once, with our message
        cfg = tyro.cli(type(default), default=default, args=rest, prog=prog,
                       description=f"{algo} config fields (run-level flags: see `{prog.split()[0]} --help`)")
    try:
        cfg.validate()
    except ConfigError as e:
        _fail(str(e))
    return cfg


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
    naming the field and the algorithms without it, before any config is built.
    """
    from jaxrl_policy.config import config_class
    fields = {}
    for algo in algos:
        try:
            fields[algo] = {f.name for f in dataclasses.fields(config_class(algo))}
        except ValueError as e:
            _fail(str(e))
    for name in config_flag_names(rest):
        field = name[3:] if name.startswith("no_") and not any(name in f for f in fields.values()) else name
        lacking = [algo for algo in algos if field not in fields[algo]]
        if len(lacking) == len(algos):
            close = difflib.get_close_matches(field, sorted(set().union(*fields.values())), n=2)
            _fail(f"--{field.replace('_', '-')}: not a config field of {', '.join(algos)}"
                  + (f"; did you mean {' or '.join('--' + c.replace('_', '-') for c in close)}?" if close else ""))
        if lacking:
            _fail(f"--{field.replace('_', '-')}: not a config field of {', '.join(lacking)}; {prog.split()[1]} "
                  f"applies a config flag to every algorithm (set one algorithm's own fields with train, or "
                  f"sweep them and compare --tuned)")
    return [config_from_args(algo, env, rest, f"{prog} --algos {algo}", shared) for algo in algos]


def _run_parser(prog: str, multi: bool) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, add_help=False)
    if multi:
        p.add_argument("--algos", nargs="+", default=["ppo", "dqn", "vtrace"])
    else:
        p.add_argument("--algo", default="ppo")
    p.add_argument("--env", default="CartPole-v1")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--out", default=None)
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


def _sinks(a: argparse.Namespace, cfg) -> list:
    """The live-logging sinks of --tensorboard DIR / --wandb PROJECT (sinks.py), or [] without them."""
    if a.tensorboard is None and a.wandb is None:
        return []
    from jaxrl_policy.sinks import make_sinks
    try:
        return make_sinks(a.tensorboard, a.wandb, cfg.to_dict())
    except ImportError as e:
        _fail(str(e))
        raise


def _given(argv: list[str], flag: str) -> bool:
    return any(x == flag or x.startswith(flag + "=") for x in argv)


def _guard(a: argparse.Namespace):
    """The divergence bounds of --divergence-loss / --divergence-grad-norm (0 disables one)."""
    import math

    from jaxrl_policy.runner import DivergenceGuard
    for flag, v in (("--divergence-loss", a.divergence_loss), ("--divergence-grad-norm", a.divergence_grad_norm)):
        if math.isnan(v) or v < 0:
            _fail(f"{flag} = {v}: must be a number > 0 (0 disables the bound)")
    if a.resume is not None and a.overwrite:
        _fail("--resume continues a run and --overwrite replaces it: give one of them")
    return DivergenceGuard(loss=a.divergence_loss or None, grad_norm=a.divergence_grad_norm or None)


def _exit_if_diverged(summaries: list[dict]) -> None:
    bad = [s for s in summaries if "diverged" in s.get("status", [])]
    if bad:
        print(f"jaxrl-policy: {len(bad)} of {len(summaries)} run(s) diverged (see the message above and "
              "summary.json's status)", file=sys.stderr)
        raise SystemExit(EXIT_DIVERGED)


def _cpu_threads(n: int | None) -> None:
    """Apply --cpu-threads before anything starts JAX's backend (the config defaults read the env)."""
    if n is None:
        return
    from jaxrl_policy._xla_flags import set_cpu_threads
    try:
        set_cpu_threads(n)
    except (ValueError, RuntimeError) as e:
        _fail(f"--cpu-threads = {n}: {str(e).split(': ', 1)[1]}")


def _recorded_cpu_threads(run_dir: str) -> int | None:
    """The thread setting a run was started with (config.json), so a resume reproduces it."""
    try:
        d = json.loads((Path(run_dir) / "config.json").read_text())
    except (OSError, ValueError):
        return None  # resume_run reports the missing/broken folder
    n = d.get("run", {}).get("cpu_threads")
    return n if isinstance(n, int) and n >= 1 else None


def _setup_process(a: argparse.Namespace, recorded_threads: int | None = None) -> None:
    """Process-wide settings, before anything starts JAX's backend: threads, determinism, several hosts."""
    _cpu_threads(a.cpu_threads if a.cpu_threads is not None else recorded_threads)
    if a.debug_nans:  # raise at the first NaN an operation produces (slow: for a rerun of a diverged run)
        import jax
        jax.config.update("jax_debug_nans", True)
    if a.deterministic:
        from jaxrl_policy.mesh import deterministic_gpu
        deterministic_gpu()
    from jaxrl_policy.mesh import MeshError, initialize_distributed
    try:
        initialize_distributed(a.coordinator, a.num_processes, a.process_id)
    except MeshError as e:
        _fail(str(e))


def _mesh_args(a: argparse.Namespace, cfgs_runs: list[tuple[object, int]]) -> dict:
    """``devices`` and ``mesh_shape`` for the runner, checked for every (config, runs) before compiling."""
    from jaxrl_policy.mesh import MeshError, check_devices, choose_mesh, parse_mesh
    try:
        shape = parse_mesh(a.mesh) if a.mesh else None
        n = check_devices(a.devices if a.devices is not None else (shape.devices if shape else None))
        import jax
        exact = a.devices is not None or shape is not None or jax.process_count() > 1
        for cfg, runs in cfgs_runs:
            choose_mesh(n, runs, cfg.num_envs, shape, exact=exact)  # type: ignore[attr-defined]
    except MeshError as e:
        _fail(str(e))
    return {"devices": n if (a.devices is not None or shape is not None) else None, "mesh_shape": shape}


def _checkpoint_every(x: float) -> float | None:
    if x < 0:
        _fail(f"--checkpoint-every = {x}: must be >= 0 seconds (0 = no checkpoints)")
    return x or None


RUN_HELP = """run-level flags:
  --algo{s} NAME         algorithm{s}: ppo, dqn, vtrace (or one that --plugin FILE.py registers)
  --env ID              gymnax env id (default CartPole-v1)
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
  --tensorboard DIR     also log every metric to TensorBoard event files in DIR (extra: tensorboard)
  --wandb PROJECT       also log to Weights & Biases project PROJECT, offline unless WANDB_MODE=online
                        (extra: wandb){resume}
{fields}"""


RESUME_HELP = """
  --resume DIR          continue the run in DIR from its latest checkpoint (its own config, seeds
                        and --cpu-threads; bit-identical to an uninterrupted run). Config flags, --algo,
                        --env and --seeds may be repeated: if they differ from the run's own, the
                        resume is refused with a field-by-field diff (so is another package version)"""

COMPARE_RESUME_HELP = """
  --resume DIR          continue the compare in DIR: finished algorithms are kept, the others resume
                        from their checkpoints or start; with no other flags, each run's own config"""


def _check_seeds(n: int) -> None:
    if n < 1:
        _fail(f"--seeds = {n}: must be an integer >= 1")


def cmd_train(argv: list[str]) -> None:
    p = _run_parser("jaxrl-policy train", multi=False)
    a, rest = p.parse_known_args(argv)
    if "-h" in argv or "--help" in argv:
        print(RUN_HELP.format(s="", extra="", resume=RESUME_HELP,
                              fields="every config field is a flag too: `jaxrl-policy train --algo ppo --help` "
                                     "lists them."))
    every = _checkpoint_every(a.checkpoint_every)
    guard = _guard(a)
    if a.resume is not None:
        if a.out is not None and Path(a.out).resolve() != Path(a.resume).resolve():
            _fail(f"--out {a.out} and --resume {a.resume} name different folders (--resume alone continues a run)")
        recorded = _recorded_cpu_threads(a.resume)
        if a.cpu_threads is not None and a.cpu_threads != recorded:
            print(f"note: the run used --cpu-threads {recorded or 'default'}; resuming with {a.cpu_threads} "
                  "is not bit-identical to an uninterrupted run", file=sys.stderr)
        _setup_process(a, recorded)
        from jaxrl_policy.runner import read_run_config, resume_run
        try:
            cfg, seeds, meta = read_run_config(a.resume)
        except ValueError as e:
            _fail(f"resume: {e}")
        _check_resume(a, argv, rest, a.resume, cfg, seeds, meta)
        mesh = _mesh_args(a, [(cfg, len(seeds))])
        try:
            s = resume_run(a.resume, progress=None if a.quiet else print, checkpoint_every_s=every, guard=guard,
                           **mesh)
        except ValueError as e:
            _fail(str(e))
        out = a.resume
    else:
        _setup_process(a)
        _check_seeds(a.seeds)
        cfg = config_from_args(a.algo, a.env, rest, f"jaxrl-policy train --algo {a.algo}")
        mesh = _mesh_args(a, [(cfg, a.seeds)])
        from jaxrl_policy.rundir import RunFolderError
        from jaxrl_policy.runner import run
        out = a.out or f"runs/{cfg.algo}-{cfg.env_id}"
        try:
            s = run(cfg, a.seeds, out, progress=None if a.quiet else print, checkpoint_every_s=every,
                    overwrite=a.overwrite, guard=guard, sinks=_sinks(a, cfg), **mesh)
        except RunFolderError as e:
            _fail(str(e))
    _exit_if_diverged([s])
    print(json.dumps({k: s.get(k) for k in ("algo", "env", "final_return", "final_return_iqm", "final_return_ci",
                                            "final_eval_return_iqm", "final_eval_return_ci", "env_steps_per_s",
                                            "compile_s", "wall_s")}))
    print(f"wrote {out}/config.json, metrics.jsonl, summary.json" + (", checkpoints/" if every else ""))


def _fmt_value(v) -> str:
    return repr(v) if isinstance(v, str) else str(v)


def config_diff(run: dict, cmd: dict) -> list[str]:
    """``field: run has X, command line has Y`` for every field that differs."""
    return [f"{k}: run has {_fmt_value(run.get(k))}, command line has {_fmt_value(cmd.get(k))}"
            for k in sorted(set(run) | set(cmd)) if run.get(k) != cmd.get(k)]


def _check_resume(a: argparse.Namespace, argv: list[str], rest: list[str], run_dir: str, cfg, seeds: list[int],
                  meta: dict) -> None:
    """Refuse a resume whose config, seeds or package version differ from the run's own, with a diff.

    No config flags (nor --algo/--env/--seeds): the run's own config, as before. Otherwise the flags
    resolve a config as for a new run (--algo and --env default to the run's) and every field is compared.
    """
    from jaxrl_policy import __version__
    diff = []
    if meta.get("package_version") not in (None, __version__):
        diff.append(f"package_version: run has {meta['package_version']}, command line has {__version__}")
    if rest or any(_given(argv, f) for f in ("--algo", "--env", "--seeds")):
        algo = a.algo if _given(argv, "--algo") else cfg.algo
        env = a.env if _given(argv, "--env") else cfg.env_id
        cmd = config_from_args(algo, env, rest, f"jaxrl-policy train --algo {algo}")
        diff += config_diff(cfg.to_dict(), cmd.to_dict())
        n = a.seeds if _given(argv, "--seeds") else len(seeds)
        cmd_seeds = list(range(cmd.seed, cmd.seed + n))
        if cmd_seeds != list(seeds):
            diff.append(f"seeds: run has {list(seeds)}, command line has {cmd_seeds}")
    if diff:
        _fail(f"resume: the command line differs from the run in {run_dir}; not resuming:\n  " + "\n  ".join(diff)
              + "\n(resume with the run's own settings, or start a new run with --out elsewhere or --overwrite)")


def _report_atomically(make, out: Path) -> dict:
    """Run ``make(folder)`` (a report writer) into a temp folder, then move each file it wrote into
    ``out`` with ``os.replace``: a crash leaves the old report or the new one, never half of a file."""
    import os
    import shutil
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


def cmd_compare(argv: list[str]) -> None:
    p = _run_parser("jaxrl-policy compare", multi=True)
    p.add_argument("--total-timesteps", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--tuned", nargs="+", default=None)
    a, rest = p.parse_known_args(argv)
    if "-h" in argv or "--help" in argv:
        extra = ("; one sub-folder per algorithm, plus summary.json, summary.md, returns.png\n"
                 "  --total-timesteps N   same env-step budget for every algorithm\n"
                 "  --tuned SWEEP_DIR…    each algorithm at the best point of its sweep (highest final-return\n"
                 "                        IQM), instead of --algos with their defaults")
        print(RUN_HELP.format(s="s", extra=extra, resume=COMPARE_RESUME_HELP,
                              fields="config fields that every algorithm of --algos has are flags too, applied to "
                                     "each (--torso mlp,\n--hidden-sizes 128 128, --learning-rate …; "
                                     "`jaxrl-policy train --algo ppo --help` lists a config's fields)."))
        raise SystemExit(0)
    _check_seeds(a.seeds)
    every = _checkpoint_every(a.checkpoint_every)
    guard = _guard(a)
    _setup_process(a)
    if rest and a.tuned:
        _fail(f"--tuned takes each sweep's best config as it is; config flags ({' '.join(rest)}) are not "
              "applied to it (sweep with them set instead)")
    if a.resume is not None and a.out is not None and Path(a.out).resolve() != Path(a.resume).resolve():
        _fail(f"--out {a.out} and --resume {a.resume} name different folders (--resume alone continues a compare)")
    shared = {k: v for k, v in (("total_timesteps", a.total_timesteps), ("seed", a.seed)) if v is not None}
    flags = [f for f in ("--algos", "--env", "--seeds", "--total-timesteps", "--seed", "--tuned") if _given(argv, f)]
    # Validate every config before running any of them.
    if a.resume is not None and not flags and not rest:  # each run's own config
        cfgs, a.seeds, a.env = _compare_configs(Path(a.resume))
    elif a.tuned:
        cfgs = [_tuned_config(d, shared) for d in a.tuned]
        envs = sorted({c.env_id for c in cfgs})
        if len(envs) > 1:
            _fail(f"--tuned: the sweeps are on different envs ({', '.join(envs)}); compare runs one env")
        a.env = envs[0]
    else:
        cfgs = shared_configs(a.algos, a.env, rest, "jaxrl-policy compare", shared)
    names = [c.algo for c in cfgs]
    if len(set(names)) < len(names):
        _fail(f"compare: each algorithm once (got {', '.join(names)})")
    mesh = _mesh_args(a, [(c, a.seeds) for c in cfgs])
    from jaxrl_policy import checkpoint
    from jaxrl_policy.report import report_runs
    from jaxrl_policy.rundir import RunFolderError, open_run_folder, run_contents
    from jaxrl_policy.runner import read_run_config, run, space_needed_for
    out = Path(a.resume or a.out or f"runs/compare-{a.env}")
    resume = a.resume is not None
    if resume:  # every run folder there must be one of these configs, unchanged
        for cfg in cfgs:
            if (out / cfg.algo / "config.json").exists():
                old, seeds, _ = read_run_config(out / cfg.algo)
                diff = config_diff(old.to_dict(), cfg.to_dict())
                if list(seeds) != list(range(cfg.seed, cfg.seed + a.seeds)):
                    diff.append(f"seeds: run has {list(seeds)}, command line has "
                                f"{list(range(cfg.seed, cfg.seed + a.seeds))}")
                if diff:
                    _fail(f"resume: the command line differs from the run in {out / cfg.algo}; not resuming:\n  "
                          + "\n  ".join(diff))
    dirs, summaries = [], []
    try:
        def need() -> int:
            return sum(space_needed_for(c, a.seeds, 200, every is not None) for c in cfgs)
        with open_run_folder(out, resume=resume, overwrite=a.overwrite, need_bytes=need, depth=1):
            for cfg in cfgs:
                d = out / cfg.algo
                if resume and (d / "summary.json").exists():  # finished: kept as it is
                    summaries.append(json.loads((d / "summary.json").read_text()))
                elif resume and run_contents(d, 0) and not checkpoint.complete(d):
                    _fail(f"resume: {d} has no complete checkpoint to resume from (rerun with --overwrite)")
                else:
                    cont = resume and bool(run_contents(d, 0))
                    summaries.append(run(cfg, a.seeds, d, progress=None if a.quiet else print,
                                         checkpoint_every_s=every, resume=cont, guard=guard,
                                         sinks=_sinks(a, cfg), **mesh))
                dirs.append(d)
            res = _report_atomically(
                lambda f: report_runs(dirs, f, title=f"{a.env}: return vs env steps (IQM, 95% CI over {a.seeds} "
                                                     "seeds)"), out)
    except RunFolderError as e:
        _fail(str(e))
    print(res["markdown"])
    print(f"wrote {out}/summary.json, summary.md" + (f", {Path(res['plot']).name}" if res["plot"] else ""))
    _exit_if_diverged(summaries)


def _compare_configs(out: Path) -> tuple[list, int, str]:
    """The configs, seed count and env of the runs in compare folder ``out`` (algorithms in their usual order)."""
    from jaxrl_policy.config import CONFIGS
    from jaxrl_policy.runner import read_run_config
    found = [read_run_config(out / algo) for algo in CONFIGS if (out / algo / "config.json").exists()]
    if not found:
        _fail(f"resume: {out} is not a compare folder (no <algo>/config.json)")
    return [c for c, _, _ in found], len(found[0][1]), found[0][0].env_id


def _tuned_config(sweep_dir: str, shared: dict):
    """The config of a sweep's best point (its own config.json), with ``shared`` overrides."""
    from jaxrl_policy.runner import read_run_config
    from jaxrl_policy.sweep import best_point, point_dir
    d = Path(sweep_dir)
    if not (d / "sweep.json").exists() or not (d / "summary.json").exists():
        _fail(f"--tuned {sweep_dir}: not a finished sweep folder (needs sweep.json and summary.json)")
    i, s = best_point(d)
    cfg, _, _ = read_run_config(point_dir(d, i))
    print(f"{cfg.algo}: best point of {sweep_dir} is p{i:03d} {s.get('hparams', {})} "
          f"(final return IQM {s.get('final_return_iqm')})")
    try:
        return cfg.replace(**shared)
    except ValueError as e:
        _fail(str(e))


SWEEP_HELP = """sweep flags (besides the run-level flags of train; every config field is a flag and sets the base):
  --grid FIELD=V1,V2,…  values of one field; several --grid make the product of them. Tuples as 64x64,
                        booleans true/false, optional values none
  --points FILE.json    an explicit list of points: [{"learning_rate": 1e-3, "ent_coef": 0.0}, …]
  --random N            N random points from the --range specs, drawn with --random-seed (default 0)
  --range FIELD=KIND:…  log:LOW:HIGH | lin:LOW:HIGH | int:LOW:HIGH | choice:A,B,…
  --max-parallel N      points per compiled program (default: what fits in half the free device memory)
  --resume DIR          continue the sweep in DIR (finished points are kept, the batch in progress resumes)
Traced fields (the [traced] ones in --help) share one compile; each combination of static fields in the
grid is compiled and run separately. Every point runs with the same --seeds keys (paired comparison)."""


def cmd_sweep(argv: list[str]) -> None:
    p = _run_parser("jaxrl-policy sweep", multi=False)
    p.add_argument("--grid", action="append", default=[])
    p.add_argument("--points", default=None)
    p.add_argument("--random", type=int, default=None)
    p.add_argument("--range", action="append", default=[], dest="ranges")
    p.add_argument("--random-seed", type=int, default=0)
    p.add_argument("--max-parallel", type=int, default=None)
    a, rest = p.parse_known_args(argv)
    guard = _guard(a)
    if "-h" in argv or "--help" in argv:
        print(SWEEP_HELP)
        print(RUN_HELP.format(s="", extra="; one sub-folder per point, plus summary.json, summary.md, sweep.png",
                              resume="",
                              fields="every config field is a flag too: `jaxrl-policy sweep --algo ppo --help` "
                                     "lists them."))
    every = _checkpoint_every(a.checkpoint_every)
    progress = None if a.quiet else print
    from jaxrl_policy.mesh import MeshError
    from jaxrl_policy.sweep import SweepError
    if a.resume is not None:
        if rest or a.grid or a.points or a.random:
            _fail("--resume continues a sweep with its own points and config; drop the other flags")
        _setup_process(a, _recorded_sweep_threads(a.resume))
        from jaxrl_policy.sweep import resume_sweep
        try:
            res = resume_sweep(a.resume, progress=progress, checkpoint_every_s=every, guard=guard,
                               **_mesh_args(a, []))
        except (SweepError, ValueError) as e:
            _fail(str(e))
        out = Path(a.resume)
    else:
        _setup_process(a)
        _check_seeds(a.seeds)
        if a.max_parallel is not None and a.max_parallel < 1:
            _fail(f"--max-parallel = {a.max_parallel}: must be an integer >= 1")
        sources = [n for n, v in (("--grid", a.grid), ("--points", a.points), ("--random", a.random)) if v]
        if len(sources) != 1:
            _fail("sweep needs exactly one of --grid (repeatable), --points FILE or --random N with --range"
                  + (f"; got {', '.join(sources)}" if sources else ""))
        if a.random is not None and (a.random < 1 or not a.ranges):
            _fail(f"--random = {a.random}: needs N >= 1 and at least one --range FIELD=KIND:…")
        base = config_from_args(a.algo, a.env, rest, f"jaxrl-policy sweep --algo {a.algo}")
        from jaxrl_policy import sweep as sw
        log_fields: set[str] = set()
        try:
            if a.grid:
                points = sw.grid_points(sw.parse_grid(type(base), a.grid))
            elif a.points:
                points = sw.load_points(a.points)
            else:
                ranges = [sw.parse_range(type(base), r) for r in a.ranges]
                log_fields = {name for name, kind, _ in ranges if kind == "log"}
                points = sw.random_points(type(base), ranges, a.random, a.random_seed)
            out = Path(a.out or f"runs/sweep-{base.algo}-{base.env_id}")
            mesh = _mesh_args(a, [(base, a.seeds)])
            res = sw.run_sweep(base, points, a.seeds, out, max_parallel=a.max_parallel, progress=progress,
                               checkpoint_every_s=every, log_fields=log_fields,
                               command=" ".join(["jaxrl-policy", "sweep", *argv]), overwrite=a.overwrite,
                               guard=guard, sinks=_sinks(a, base), **mesh)
        except (SweepError, MeshError, ValueError) as e:
            _fail(str(e))
    import jax
    if jax.process_index() != 0:
        return
    from jaxrl_policy.report import report_sweep
    rep = _report_atomically(lambda f: report_sweep(out, f), out)
    print(rep["markdown"])
    print(f"wrote {out}/sweep.json, summary.json, summary.md, p*/" + (f", {Path(rep['plot']).name}" if rep["plot"]
                                                                       else ""))
    _exit_if_diverged(res["runs"])


def _recorded_sweep_threads(sweep_dir: str) -> int | None:
    """The --cpu-threads a sweep's first point ran with (its config.json)."""
    return _recorded_cpu_threads(str(Path(sweep_dir) / "p000"))


def cmd_report(argv: list[str]) -> None:
    p = argparse.ArgumentParser(
        prog="jaxrl-policy report",
        description="Tables and figures from run folders (summary.json, metrics.jsonl), compare folders (their "
                    "runs), sweep folders (their points) and runs of several envs. One sweep folder alone gets "
                    "the sweep report (return and diagnostics against each swept field).",
        epilog="writes into --out: summary.md, table.tex (booktabs), summary.json, report.json and PNG + PDF "
               "figures: returns (training and evaluation return vs --x, IQM and 95%% CI bands), final_scores "
               "(IQM with 95%% CI per task, and the normalised aggregate over tasks), poi (probability of "
               "improvement X vs Y with CIs), profiles (performance profiles)")
    p.add_argument("runs", nargs="+", help="run, compare or sweep folders")
    p.add_argument("--out", default=None,
                   help="output folder (default: the folder that holds the runs, e.g. the compare folder; a "
                        "sweep's own)")
    p.add_argument("--x", default="env_steps", choices=["env_steps", "grad_steps", "wall_s"],
                   help="x axis of the learning curves (default env_steps; scores are always compared at a "
                        "matched env-step budget)")
    p.add_argument("--threshold", nargs="+", default=None, metavar="X|ENV=X",
                   help="return to reach for 'env steps to threshold': one number (one env) or ENV=X per env "
                        "(default per env: half-way from random to the reference score of jaxrl_policy.scores)")
    p.add_argument("--no-aggregate", action="store_true",
                   help="report each env on its own (no normalised aggregate over tasks; needed to mix envs "
                        "without normalisation scores)")
    p.add_argument("--score", default="eval", choices=["eval", "train"],
                   help="final score of the POI matrix and performance profiles: the final evaluation return "
                        "(default) or the final training return")
    p.add_argument("--bins", type=int, default=50, help="points of a training-return curve (default 50)")
    a = p.parse_args(argv)
    from jaxrl_policy.report import find_run_dirs, parse_thresholds, report_runs, report_sweep
    given = [Path(d) for d in a.runs]
    if len(given) == 1 and (given[0] / "sweep.json").exists():
        print(report_sweep(given[0], a.out)["markdown"])
        return
    if a.bins < 2:
        _fail(f"--bins = {a.bins}: must be an integer >= 2")
    try:
        dirs = find_run_dirs(given)
        parents = {d.parent.resolve() for d in dirs}
        if a.out is None and len(parents) > 1:
            _fail(f"the runs are in {len(parents)} different folders ({', '.join(sorted(map(str, parents)))}): "
                  "say where the report goes with --out DIR")
        out = Path(a.out) if a.out is not None else dirs[0].parent
        res = report_runs(dirs, out, bins=a.bins, x=a.x, threshold=parse_thresholds(a.threshold or []),
                          aggregate=not a.no_aggregate, score=a.score)
    except ValueError as e:
        _fail(str(e))
    print(res["markdown"])
    print(f"wrote {out}/summary.md, table.tex, summary.json, report.json"
          + (", " + ", ".join(Path(f).name for f in res["figures"]) if res["figures"] else ""))


def project_benchmark() -> Path | None:
    """``benchmarks/throughput.py`` of the source checkout the package runs from, if there is one."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "throughput.py"
    return path if path.exists() else None


def cmd_bench(argv: list[str]) -> None:
    """Time configs with the library's bench; ``--peers DIR`` runs the project's harness against peers."""
    if any(a == "--peers" or a.startswith("--peers=") for a in argv):
        script = project_benchmark()
        if script is None:
            _fail("--peers: the comparison with peer codebases is the repository's benchmarks/throughput.py, "
                  "which an installed package does not include; run it from a source checkout")
        import runpy
        sys.argv = [str(script), *argv]
        runpy.run_path(str(script), run_name="__main__")
        return
    from jaxrl_policy.bench import main as bench_main
    bench_main(argv)


def load_plugins(argv: list[str]) -> list[str]:
    """Import every ``--plugin FILE.py|module`` of ``argv`` (which registers algorithms); return the rest."""
    import importlib
    import importlib.util

    rest, i = [], 0
    while i < len(argv):
        x = argv[i]
        if x == "--plugin" or x.startswith("--plugin="):
            target = x.split("=", 1)[1] if "=" in x else (argv[i + 1] if i + 1 < len(argv) else "")
            i += 1 if "=" in x else 2
            if not target:
                _fail("--plugin: give a .py file or a module name")
            try:
                if target.endswith(".py"):
                    path = Path(target)
                    if not path.is_file():
                        _fail(f"--plugin = {target!r}: no such file")
                    spec = importlib.util.spec_from_file_location(f"jaxrl_plugin_{path.stem}", path)
                    assert spec is not None and spec.loader is not None
                    module = importlib.util.module_from_spec(spec)
                    sys.modules[spec.name] = module
                    spec.loader.exec_module(module)
                else:
                    importlib.import_module(target)
            except SystemExit:
                raise
            except Exception as e:  # the plugin's own error, named as such
                _fail(f"--plugin = {target!r} failed to import: {type(e).__name__}: {e}")
            continue
        rest.append(x)
        i += 1
    return rest


def main(argv: list[str] | None = None) -> None:
    argv = load_plugins(list(sys.argv[1:] if argv is None else argv))
    from jaxrl_policy import use_cpu_speedups
    use_cpu_speedups()  # our own program: opt in to the process-wide CPU speed-ups (_xla_flags)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        print("\nusage: jaxrl-policy {train,compare,sweep,bench,report,distill,collect} [flags]   (each takes --help)")
        raise SystemExit(0 if argv else 2)
    cmd, rest = argv[0], argv[1:]
    if cmd not in COMMANDS:
        _fail(f"unknown command {cmd!r}; choose from {', '.join(COMMANDS)}")
    if cmd in ("distill", "collect"):  # distill_cli.py: the distillation commands
        from jaxrl_policy import distill_cli
        getattr(distill_cli, f"cmd_{cmd}")(rest)
        return
    {"train": cmd_train, "compare": cmd_compare, "sweep": cmd_sweep, "bench": cmd_bench,
     "report": cmd_report}[cmd](rest)


if __name__ == "__main__":
    main()
