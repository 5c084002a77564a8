#!/usr/bin/env python3
"""PQN, SAC and TD3 env-steps/s beside rejax's, at rejax's own published configs, in one run (issue 27, item 5).

    PYTHONPATH=. python benchmarks/rejax_speed.py [--algos pqn sac td3] [--rounds 3] [--out FILE]

For each (algorithm, env): our ``make_train`` at the algorithm's defaults for that env (they equal rejax's
published config: ``PQNConfig``'s class defaults for CartPole-v1, ``SAC_PENDULUM`` and ``TD3_PENDULUM`` for
Pendulum-v1), vmapped over ``--seeds`` seeds and compiled once, with evaluation only at the end (as
``run_rejax.py`` does); and ``../shared/peers/run_rejax.py --algo A --env E`` (rejax 0.1.3 under its own Python,
``venv.sh rejax``) as a subprocess at the same budget and seeds. Rounds alternate ours and rejax's; each side
reports the min and median of its timed calls (compile excluded). The ratio is ours ÷ rejax at the best time.

Writes ``benchmarks/results/rejax-speed-cpu-DATE.json`` (or ``--out``) and prints a markdown table.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import platform
import statistics
import subprocess
import sys
from pathlib import Path

from jaxrl_policy.running.bench import call_seconds, training_program
from jaxrl_policy.running.build import default_config

ROOT = Path(__file__).resolve().parents[1]
CASES = {  # algo: (env, env steps per seed = rejax's published budget for the env)
    "pqn": ("CartPole-v1", 524_288),
    "sac": ("Pendulum-v1", 10_000),
    "td3": ("Pendulum-v1", 10_000),
}


def ours(algo: str, env: str, steps: int, seeds: int, repeats: int) -> dict:
    cfg = default_config(algo, env).replace(total_timesteps=steps, eval_every=0)
    prog = training_program(cfg, seeds)
    times = [call_seconds(prog) for _ in range(repeats)]
    return dict(compile_s=round(prog.compile_s, 2), train_s=[round(t, 3) for t in times],
                env_steps_per_s=round(prog.env_steps / min(times)),
                env_steps_per_s_median=round(prog.env_steps / statistics.median(times)))


def rejax(python: str, peers: Path, algo: str, env: str, steps: int, seeds: int, repeats: int) -> dict:
    cmd = [python, str(peers / "run_rejax.py"), "--algo", algo, "--env", env, "--seeds", str(seeds),
           "--total-timesteps", str(steps), "--repeats", str(repeats)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    r = json.loads(out)
    r["env_steps_per_s_median"] = round(seeds * steps / r["train_s_median"])
    return r


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--algos", nargs="+", default=list(CASES), choices=list(CASES))
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (each: one compile, 2 timed calls)")
    p.add_argument("--peers", type=Path, default=ROOT.parent / "shared" / "peers")
    p.add_argument("--peer-python", default=None, help="rejax's python (default: PEERS/venv.sh rejax)")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()
    python = a.peer_python or subprocess.run(["bash", str(a.peers / "venv.sh"), "rejax"], capture_output=True,
                                             text=True, check=True).stdout.strip().splitlines()[-1]
    rows = []
    for algo in a.algos:
        env, steps = CASES[algo]
        mine, theirs = [], []
        for _ in range(a.rounds):
            mine.append(ours(algo, env, steps, a.seeds, 2))
            theirs.append(rejax(python, a.peers, algo, env, steps, a.seeds, 2))
        best = max(m["env_steps_per_s"] for m in mine)
        peer_best = max(t["env_steps_per_s"] for t in theirs)
        med = statistics.median(m["env_steps_per_s_median"] for m in mine)
        peer_med = statistics.median(t["env_steps_per_s_median"] for t in theirs)
        rows.append(dict(algo=algo, env=env, steps=steps, seeds=a.seeds, ours_best=best, ours_median=med,
                         rejax_best=peer_best, rejax_median=peer_med, ratio_best=round(best / peer_best, 3),
                         ratio_median=round(med / peer_med, 3), ours_runs=mine, rejax_runs=theirs))
        print(f"{algo} {env}: ours {best:,} (median {med:,.0f}) env-steps/s, rejax {peer_best:,} "
              f"(median {peer_med:,.0f}): {best / peer_best:.2f}x", flush=True)
    print("\n| algo | env | steps × seeds | ours env-steps/s (best / median) | rejax (best / median) | ours ÷ rejax |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['algo']} | {r['env']} | {r['steps']:,} × {r['seeds']} "
              f"| {r['ours_best']:,} / {r['ours_median']:,.0f} | {r['rejax_best']:,} / {r['rejax_median']:,.0f} "
              f"| {r['ratio_best']:.2f}× ({r['ratio_median']:.2f}× median) |")
    out = a.out or ROOT / "benchmarks" / "results" / f"rejax-speed-cpu-{_dt.date.today()}.json"
    out.write_text(json.dumps(dict(machine=platform.processor() or platform.machine(), python=sys.version.split()[0],
                                   rounds=a.rounds, rows=rows), indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
