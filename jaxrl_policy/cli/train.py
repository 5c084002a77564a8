"""``jaxrl-policy train``: one algorithm, S seeds in one program, one run folder (and ``--resume`` of one)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from jaxrl_policy._version import __version__
from jaxrl_policy.cli.common import (
    RESUME_HELP,
    check_seeds,
    checkpoint_every,
    config_diff,
    config_from_args,
    exit_if_diverged,
    fail,
    given,
    guard_of,
    mesh_args,
    run_help,
    run_parser,
    setup_process,
    sinks_of,
)
from jaxrl_policy.io.rundir import RunFolderError
from jaxrl_policy.io.runfolder import recorded_cpu_threads
from jaxrl_policy.running.build import read_run_config
from jaxrl_policy.running.runner import resume_run, run


def cmd_train(argv: list[str]) -> None:
    p = run_parser("jaxrl-policy train", multi=False)
    a, rest = p.parse_known_args(argv)
    if "-h" in argv or "--help" in argv:
        print(run_help(s="", extra="", resume=RESUME_HELP,
                              fields="every config field is a flag too: `jaxrl-policy train --algo ppo --help` "
                                     "lists them."))
    every = checkpoint_every(a.checkpoint_every)
    guard = guard_of(a)
    if a.resume is not None:
        if a.out is not None and Path(a.out).resolve() != Path(a.resume).resolve():
            fail(f"--out {a.out} and --resume {a.resume} name different folders (--resume alone continues a run)")
        recorded = recorded_cpu_threads(a.resume)
        if a.cpu_threads is not None and a.cpu_threads != recorded:
            print(f"note: the run used --cpu-threads {recorded or 'default'}; resuming with {a.cpu_threads} "
                  "is not bit-identical to an uninterrupted run", file=sys.stderr)
        setup_process(a, recorded)
        try:
            cfg, seeds, meta = read_run_config(a.resume)
        except ValueError as e:
            fail(f"resume: {e}")
        _check_resume(a, argv, rest, a.resume, cfg, seeds, meta)
        mesh = mesh_args(a, [(cfg, len(seeds))])
        try:
            s = resume_run(a.resume, progress=None if a.quiet else print, checkpoint_every_s=every, guard=guard,
                           **mesh)
        except ValueError as e:
            fail(str(e))
        out = a.resume
    else:
        setup_process(a)
        check_seeds(a.seeds)
        cfg = config_from_args(a.algo, a.env, rest, f"jaxrl-policy train --algo {a.algo}")
        mesh = mesh_args(a, [(cfg, a.seeds)])
        out = a.out or f"runs/{cfg.algo}-{cfg.env_id}"
        try:
            s = run(cfg, a.seeds, out, progress=None if a.quiet else print, checkpoint_every_s=every,
                    overwrite=a.overwrite, guard=guard, sinks=sinks_of(a, cfg), **mesh)
        except RunFolderError as e:
            fail(str(e))
    exit_if_diverged([s])
    print(json.dumps({k: s.get(k) for k in ("algo", "env", "final_return", "final_return_iqm", "final_return_ci",
                                            "final_eval_return_iqm", "final_eval_return_ci", "env_steps_per_s",
                                            "compile_s", "wall_s")}))
    print(f"wrote {out}/config.json, metrics.jsonl, summary.json" + (", checkpoints/" if every else ""))


def _check_resume(a: argparse.Namespace, argv: list[str], rest: list[str], run_dir: str, cfg, seeds: list[int],
                  meta: dict) -> None:
    """Refuse a resume whose config, seeds or package version differ from the run's own, with a diff.

    No config flags (nor --algo/--env/--seeds): the run's own config, as before. Otherwise the flags
    resolve a config as for a new run (--algo and --env default to the run's) and every field is compared.
    """
    diff = []
    if meta.get("package_version") not in (None, __version__):  # the checkpoint is restored or refused on its own
        print(f"note: {run_dir} was started by jaxrl_policy {meta['package_version']}; resuming with {__version__} "
              "(its loop state restores; another version may compute differently, so the resumed run is not promised "
              "to be bit-identical to an uninterrupted one)", file=sys.stderr)
    if rest or any(given(argv, f) for f in ("--algo", "--env", "--seeds")):
        algo = a.algo if given(argv, "--algo") else cfg.algo
        env = a.env if given(argv, "--env") else cfg.env_id
        cmd = config_from_args(algo, env, rest, f"jaxrl-policy train --algo {algo}")
        diff += config_diff(cfg.to_dict(), cmd.to_dict())
        n = a.seeds if given(argv, "--seeds") else len(seeds)
        cmd_seeds = list(range(cmd.seed, cmd.seed + n))
        if cmd_seeds != list(seeds):
            diff.append(f"seeds: run has {list(seeds)}, command line has {cmd_seeds}")
    if diff:
        fail(f"resume: the command line differs from the run in {run_dir}; not resuming:\n  " + "\n  ".join(diff)
              + "\n(resume with the run's own settings, or start a new run with --out elsewhere or --overwrite)")
