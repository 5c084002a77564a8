"""``jaxrl-policy``: train | compare | bench | report.

``train`` and ``compare`` take run-level flags (``--algo``/``--algos``, ``--env``, ``--seeds``,
``--out``); every config field of the chosen algorithm is a flag too, parsed by tyro from the
algorithm's dataclass with the env's defaults (``jaxrl-policy train --algo dqn --help`` lists
them). Bad values exit with code 2 and one message naming every bad field, before compiling.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

COMMANDS = ("train", "compare", "bench", "report")


def _fail(msg: str) -> None:
    print(f"jaxrl-policy: error: {msg}", file=sys.stderr)
    raise SystemExit(2)


def config_from_args(algo: str, env: str, rest: list[str], prog: str, shared: dict | None = None):
    """Defaults for (algo, env), then ``shared`` overrides, then tyro parses ``rest`` on top."""
    import tyro

    from jaxrl_policy.config import ConfigError, default_config, deferred_validation
    try:
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
    if not multi:
        p.add_argument("--resume", default=None)
    return p


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


def _checkpoint_every(x: float) -> float | None:
    if x < 0:
        _fail(f"--checkpoint-every = {x}: must be >= 0 seconds (0 = no checkpoints)")
    return x or None


RUN_HELP = """run-level flags:
  --algo{s} NAME         algorithm{s}: ppo, dqn, vtrace
  --env ID              gymnax env id (default CartPole-v1)
  --seeds N             seeds, run with jax.vmap inside one jit (default 1)
  --out DIR             run folder (config.json, metrics.jsonl, summary.json){extra}
  --quiet               no progress lines
  --checkpoint-every S  checkpoint all seeds' loop state after a chunk once S seconds passed since
                        the last one, and at the end (default 60; 0 = never)
  --cpu-threads N       XLA:CPU threads (sets PJRT_NPROC; default: all cores). 1 is faster for
                        small-batch programs on few cores (1-seed DQN), slower for large batches{resume}
every config field is a flag too: `jaxrl-policy {cmd} --algo{s} ppo --help` lists them."""


RESUME_HELP = """
  --resume DIR          continue the run in DIR from its latest checkpoint (its own config, seeds
                        and --cpu-threads; bit-identical to an uninterrupted run)"""


def _check_seeds(n: int) -> None:
    if n < 1:
        _fail(f"--seeds = {n}: must be an integer >= 1")


def cmd_train(argv: list[str]) -> None:
    p = _run_parser("jaxrl-policy train", multi=False)
    a, rest = p.parse_known_args(argv)
    if "-h" in argv or "--help" in argv:
        print(RUN_HELP.format(s="", extra="", cmd="train", resume=RESUME_HELP))
    every = _checkpoint_every(a.checkpoint_every)
    if a.resume is not None:
        recorded = _recorded_cpu_threads(a.resume)
        if a.cpu_threads is not None and a.cpu_threads != recorded:
            print(f"note: the run used --cpu-threads {recorded or 'default'}; resuming with {a.cpu_threads} "
                  "is not bit-identical to an uninterrupted run", file=sys.stderr)
        _cpu_threads(a.cpu_threads if a.cpu_threads is not None else recorded)
        if rest:
            _fail(f"--resume continues a run with its own config; drop: {' '.join(rest)}")
        from jaxrl_policy.runner import resume_run
        try:
            s = resume_run(a.resume, progress=None if a.quiet else print, checkpoint_every_s=every)
        except ValueError as e:
            _fail(str(e))
        out = a.resume
    else:
        _cpu_threads(a.cpu_threads)
        _check_seeds(a.seeds)
        cfg = config_from_args(a.algo, a.env, rest, f"jaxrl-policy train --algo {a.algo}")
        from jaxrl_policy.runner import run
        out = a.out or f"runs/{cfg.algo}-{cfg.env_id}"
        s = run(cfg, a.seeds, out, progress=None if a.quiet else print, checkpoint_every_s=every)
    print(json.dumps({k: s[k] for k in ("algo", "env", "final_return", "final_return_iqm", "final_return_ci",
                                        "env_steps_per_s", "compile_s", "wall_s")}))
    print(f"wrote {out}/config.json, metrics.jsonl, summary.json" + (", checkpoints/" if every else ""))


def cmd_compare(argv: list[str]) -> None:
    p = _run_parser("jaxrl-policy compare", multi=True)
    p.add_argument("--total-timesteps", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    a, rest = p.parse_known_args(argv)
    if "-h" in argv or "--help" in argv:
        extra = ("; one sub-folder per algorithm, plus summary.json, summary.md, returns.png\n"
                 "  --total-timesteps N   same env-step budget for every algorithm")
        print(RUN_HELP.format(s="s", extra=extra, cmd="compare", resume=""))
        raise SystemExit(0)
    _check_seeds(a.seeds)
    every = _checkpoint_every(a.checkpoint_every)
    _cpu_threads(a.cpu_threads)
    if rest:
        _fail(f"unrecognised arguments for compare: {' '.join(rest)} (algorithm-specific fields: use train)")
    shared = {k: v for k, v in (("total_timesteps", a.total_timesteps), ("seed", a.seed)) if v is not None}
    # Validate every config before running any of them.
    cfgs = [config_from_args(algo, a.env, [], f"jaxrl-policy compare --algos {algo}", shared) for algo in a.algos]
    from jaxrl_policy.report import report_runs
    from jaxrl_policy.runner import run
    out = Path(a.out or f"runs/compare-{a.env}")
    dirs = []
    for cfg in cfgs:
        d = out / cfg.algo
        run(cfg, a.seeds, d, progress=None if a.quiet else print, checkpoint_every_s=every)
        dirs.append(d)
    res = report_runs(dirs, out, title=f"{a.env}: return vs env steps (IQM, 95% CI over {a.seeds} seeds)")
    print(res["markdown"])
    print(f"wrote {out}/summary.json, summary.md" + (f", {Path(res['plot']).name}" if res["plot"] else ""))


def cmd_report(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="jaxrl-policy report",
                                description="Tables and plots from run folders (summary.json, metrics.jsonl).")
    p.add_argument("runs", nargs="+", help="run folders")
    p.add_argument("--out", default=None, help="output folder (default: the first run's parent)")
    a = p.parse_args(argv)
    dirs = [Path(d) for d in a.runs]
    for d in dirs:
        if not (d / "summary.json").exists():
            _fail(f"{d}: not a run folder (no summary.json)")
    from jaxrl_policy.report import report_runs
    res = report_runs(dirs, a.out or dirs[0].parent)
    print(res["markdown"])


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


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    from jaxrl_policy import use_cpu_speedups
    use_cpu_speedups()  # our own program: opt in to the process-wide CPU speed-ups (_xla_flags)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        print("\nusage: jaxrl-policy {train,compare,bench,report} [flags]   (each takes --help)")
        raise SystemExit(0 if argv else 2)
    cmd, rest = argv[0], argv[1:]
    if cmd not in COMMANDS:
        _fail(f"unknown command {cmd!r}; choose from {', '.join(COMMANDS)}")
    {"train": cmd_train, "compare": cmd_compare, "bench": cmd_bench, "report": cmd_report}[cmd](rest)


if __name__ == "__main__":
    main()
