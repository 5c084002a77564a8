"""``jaxrl-policy compare``: several algorithms on one env at one budget, then one report over their runs."""
from __future__ import annotations

import json
from pathlib import Path

from jaxrl_policy.cli.common import (
    COMPARE_RESUME_HELP,
    check_seeds,
    checkpoint_every,
    config_diff,
    exit_if_diverged,
    fail,
    given,
    guard_of,
    mesh_args,
    report_atomically,
    run_help,
    run_parser,
    setup_process,
    shared_configs,
    sinks_of,
)
from jaxrl_policy.io import checkpoint
from jaxrl_policy.io.rundir import RunFolderError, open_run_folder, run_contents
from jaxrl_policy.results.report import report_runs
from jaxrl_policy.running.build import algorithm_names, read_run_config
from jaxrl_policy.running.runner import run, space_needed_for
from jaxrl_policy.running.sweep import best_point, point_dir


def cmd_compare(argv: list[str]) -> None:
    p = run_parser("jaxrl-policy compare", multi=True)
    p.add_argument("--total-timesteps", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--tuned", nargs="+", default=None)
    a, rest = p.parse_known_args(argv)
    if "-h" in argv or "--help" in argv:
        extra = ("; one sub-folder per algorithm, plus summary.json, summary.md, returns.png\n"
                 "  --total-timesteps N   same env-step budget for every algorithm\n"
                 "  --tuned SWEEP_DIR…    each algorithm at the best point of its sweep (highest final-return\n"
                 "                        IQM), instead of --algos with their defaults")
        print(run_help(s="s", extra=extra, resume=COMPARE_RESUME_HELP,
                              fields="config fields that every algorithm of --algos has are flags too, applied to "
                                     "each (--torso mlp,\n--hidden-sizes 128 128, --learning-rate …; "
                                     "`jaxrl-policy train --algo ppo --help` lists a config's fields)."))
        raise SystemExit(0)
    check_seeds(a.seeds)
    every = checkpoint_every(a.checkpoint_every)
    guard = guard_of(a)
    setup_process(a)
    if rest and a.tuned:
        fail(f"--tuned takes each sweep's best config as it is; config flags ({' '.join(rest)}) are not "
              "applied to it (sweep with them set instead)")
    if a.resume is not None and a.out is not None and Path(a.out).resolve() != Path(a.resume).resolve():
        fail(f"--out {a.out} and --resume {a.resume} name different folders (--resume alone continues a compare)")
    shared = {k: v for k, v in (("total_timesteps", a.total_timesteps), ("seed", a.seed)) if v is not None}
    flags = [f for f in ("--algos", "--env", "--seeds", "--total-timesteps", "--seed", "--tuned") if given(argv, f)]
    # Validate every config before running any of them.
    if a.resume is not None and not flags and not rest:  # each run's own config
        cfgs, a.seeds, a.env = _compare_configs(Path(a.resume))
    elif a.tuned:
        cfgs = [_tuned_config(d, shared) for d in a.tuned]
        envs = sorted({c.env_id for c in cfgs})
        if len(envs) > 1:
            fail(f"--tuned: the sweeps are on different envs ({', '.join(envs)}); compare runs one env")
        a.env = envs[0]
    else:
        cfgs = shared_configs(a.algos, a.env, rest, "jaxrl-policy compare", shared)
    names = [c.algo for c in cfgs]
    if len(set(names)) < len(names):
        fail(f"compare: each algorithm once (got {', '.join(names)})")
    mesh = mesh_args(a, [(c, a.seeds) for c in cfgs])
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
                    fail(f"resume: the command line differs from the run in {out / cfg.algo}; not resuming:\n  "
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
                    fail(f"resume: {d} has no complete checkpoint to resume from (rerun with --overwrite)")
                else:
                    cont = resume and bool(run_contents(d, 0))
                    summaries.append(run(cfg, a.seeds, d, progress=None if a.quiet else print,
                                         checkpoint_every_s=every, resume=cont, guard=guard,
                                         sinks=sinks_of(a, cfg), **mesh))
                dirs.append(d)
            res = report_atomically(
                lambda f: report_runs(dirs, f, title=f"{a.env}: return vs env steps (IQM, 95% CI over {a.seeds} "
                                                     "seeds)"), out)
    except RunFolderError as e:
        fail(str(e))
    print(res["markdown"])
    print(f"wrote {out}/summary.json, summary.md" + (f", {Path(res['plot']).name}" if res["plot"] else ""))
    exit_if_diverged(summaries)


def _compare_configs(out: Path) -> tuple[list, int, str]:
    """The configs, seed count and env of the runs in compare folder ``out`` (algorithms in their usual order)."""
    found = [read_run_config(out / algo) for algo in algorithm_names() if (out / algo / "config.json").exists()]
    if not found:
        fail(f"resume: {out} is not a compare folder (no <algo>/config.json)")
    return [c for c, _, _ in found], len(found[0][1]), found[0][0].env_id


def _tuned_config(sweep_dir: str, shared: dict):
    """The config of a sweep's best point (its own config.json), with ``shared`` overrides."""
    d = Path(sweep_dir)
    if not (d / "sweep.json").exists() or not (d / "summary.json").exists():
        fail(f"--tuned {sweep_dir}: not a finished sweep folder (needs sweep.json and summary.json)")
    i, s = best_point(d)
    cfg, _, _ = read_run_config(point_dir(d, i))
    print(f"{cfg.algo}: best point of {sweep_dir} is p{i:03d} {s.get('hparams', {})} "
          f"(final return IQM {s.get('final_return_iqm')})")
    try:
        return cfg.replace(**shared)
    except ValueError as e:
        fail(str(e))
