"""Headline comparison: PPO vs DQN vs V-trace, each at its tuned point, on classic control and MinAtar.

    python experiments/headline.py --out runs/headline            # CPU-sized default
    python experiments/headline.py --full --out runs/headline-full  # accelerator budget

For each env and algorithm: a learning-rate sweep (``jaxrl-policy sweep``, ``--tune-seeds`` seeds
per point, all points and seeds in one program), then the best point of each sweep (highest final
training-return IQM) re-run on fresh seeds (``jaxrl-policy compare --tuned … --seed 100``, so the
reported scores are not the ones the selection was made on), at the same env-step budget for all
three. Finally one ``jaxrl-policy report`` over every env: per task × algorithm final greedy
evaluation return, AUC and env steps to threshold (IQM, 95% stratified-bootstrap CI over seeds),
the normalised aggregate over tasks (``jaxrl_policy.scores``: random and reference score per env),
probability of improvement and performance profiles.

Everything goes through the command line, so every step is a command a reader can rerun; they are
printed and saved in ``commands.txt``. Finished steps are skipped when the script is run again
(a sweep or compare folder with its ``summary.json``), so an interrupted run continues.

Budgets: the CPU default is small — MinAtar's CNN trains at ~2,700 env steps/s on a 2-core CPU
(two seeds vmapped) — 1e5 env steps per run everywhere, 2 learning rates (the default and twice
it), tuned on 2 seeds (classic) or 1 seed (MinAtar), evaluated on 5 (classic) or 3 (MinAtar)
fresh seeds; at 1e5 steps the MinAtar agents are early in learning, so read those rows as a
smoke-scale comparison. ``--full`` (an accelerator): 5e5 (classic) and 1e7 (MinAtar) env steps,
5 learning rates × 3 tuning seeds, 10 evaluation seeds.
"""
from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

ALGOS = ("ppo", "dqn", "vtrace")
CLASSIC = ("CartPole-v1", "Acrobot-v1")
MINATAR = ("Breakout-MinAtar", "SpaceInvaders-MinAtar", "Asterix-MinAtar")
# Learning-rate grids: each algorithm's default (PPO 2.5e-4, DQN 2.5e-4, V-trace 5e-4) and twice it on CPU.
GRID = {"ppo": (2.5e-4, 5e-4), "dqn": (2.5e-4, 5e-4), "vtrace": (5e-4, 1e-3)}
GRID_FULL = {"ppo": (1e-4, 2.5e-4, 5e-4, 1e-3, 2e-3), "dqn": (5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3),
             "vtrace": (1e-4, 2.5e-4, 5e-4, 1e-3, 2e-3)}


def budget(env: str, full: bool) -> tuple[int, int, int]:
    """(env steps per run, tuning seeds per point, evaluation seeds) for ``env``."""
    if env.endswith("-MinAtar"):
        return (10_000_000, 3, 10) if full else (100_000, 1, 3)
    return (500_000, 3, 10) if full else (100_000, 2, 5)


def cli(args: list[str], log: Path) -> None:
    """Run one ``jaxrl-policy`` command (a subprocess: one XLA program set at a time), logged."""
    cmd = [sys.executable, "-m", "jaxrl_policy.cli", *args]
    line = "jaxrl-policy " + " ".join(shlex.quote(a) for a in args)
    with log.open("a") as f:
        f.write(line + "\n")
    print(f"$ {line}", flush=True)
    t = time.perf_counter()
    subprocess.run(cmd, check=True)
    print(f"  ({time.perf_counter() - t:.0f}s)", flush=True)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--envs", nargs="+", default=list(CLASSIC + MINATAR))
    p.add_argument("--algos", nargs="+", default=list(ALGOS), choices=ALGOS)
    p.add_argument("--seeds", type=int, default=None, help="evaluation seeds (default: per env, above)")
    p.add_argument("--tune-seeds", type=int, default=None, help="seeds per sweep point (default: per env, above)")
    p.add_argument("--total-timesteps", type=int, default=None, help="env steps per run (default: per env, above)")
    p.add_argument("--full", action="store_true", help="accelerator budgets and grids")
    p.add_argument("--out", type=Path, default=Path("runs/headline"))
    a = p.parse_args(argv)
    grid = GRID_FULL if a.full else GRID
    a.out.mkdir(parents=True, exist_ok=True)
    log = a.out / "commands.txt"
    t0 = time.perf_counter()
    compares = []
    for env in a.envs:
        steps, tune_seeds, seeds = budget(env, a.full)
        steps, tune_seeds, seeds = a.total_timesteps or steps, a.tune_seeds or tune_seeds, a.seeds or seeds
        tuned = []
        for algo in a.algos:
            d = a.out / "tune" / env / algo
            tuned.append(str(d))
            if (d / "summary.json").exists():
                continue
            cli(["sweep", "--algo", algo, "--env", env, "--grid",
                 "learning_rate=" + ",".join(f"{x:g}" for x in grid[algo]), "--seeds", str(tune_seeds),
                 "--total-timesteps", str(steps), "--checkpoint-every", "0", "--quiet", "--overwrite",
                 "--out", str(d)], log)
        d = a.out / env
        compares.append(str(d))
        if not (d / "summary.json").exists():
            cli(["compare", "--tuned", *tuned, "--seeds", str(seeds), "--seed", "100", "--total-timesteps",
                 str(steps), "--checkpoint-every", "0", "--quiet", "--overwrite", "--out", str(d)], log)
    cli(["report", *compares, "--out", str(a.out / "report")], log)
    print(f"wrote {a.out}/report (summary.md, table.tex, figures) in {time.perf_counter() - t0:.0f}s; "
          f"commands in {log}")


if __name__ == "__main__":
    main()
