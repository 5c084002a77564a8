"""A PPO learning check per optional env suite, through the command line, on CPU.

One small env per suite, PPO with the suite's own defaults (its published baseline scaled for CPU:
``algorithms/presets.py``), a budget of at most 10⁶ env steps that fits ~15 min on a shared 2-core CPU:

    PYTHONPATH=. python experiments/env_suites.py [--suites navix xminigrid jumanji craftax] [--out runs/env-suites]

Each suite runs ``jaxrl-policy train --algo ppo --env ID --seeds S --total-timesteps N`` (plus the flags of
``CHECKS``); then ``jaxrl-policy report`` draws all runs' learning curves into ``docs/env-suites.png``, and
the numbers (final training-return IQM over seeds, the return of a uniformly random policy over the same
envs, wall time) go to ``docs/env-suites.json`` and the markdown table printed at the end (docs/envs.md).
A suite whose package is missing is skipped.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# suite -> env, seeds, env-step budget, extra flags (on top of the suite's PPO defaults), why these
CHECKS: dict[str, dict] = {
    "navix": dict(env="navix:Navix-Empty-5x5-v0", seeds=4, steps=1_000_000, flags=[],
                  why="Navix's defaults (16 envs × 128 steps, flattened grid into a 64 × 64 MLP) at its published "
                      "10⁶ steps"),
    "xminigrid": dict(env="xminigrid:MiniGrid-Empty-5x5", seeds=4, steps=1_000_000, flags=[],
                      why="xminigrid's defaults (64 envs × 16 steps, 1 epoch × 16 minibatches), the CNN torso, at "
                          "its published 10⁶ steps"),
    "jumanji": dict(env="jumanji:Snake-v1", seeds=2, steps=1_000_000, flags=[],
                    why="Jumanji's A2C data settings for Snake (64 envs × 20 steps, γ 0.997) with PPO's epochs"),
    "craftax": dict(env="craftax:Craftax-Classic-Symbolic-v1", seeds=1, steps=500_000,
                    flags=["--eval-episodes", "0", "--hidden-sizes", "256", "256"],
                    why="Craftax's PPO settings (64 envs × 64 steps, 4 × 8 minibatches, λ 0.8) with a 2 × 256 "
                        "network instead of 3 × 512 (≈ 2.5× faster on this CPU); no evaluation (episodes of up to "
                        "10⁴ steps): the training return"),
}


def random_return(env_id: str, num_envs: int = 64, steps: int = 2000, seed: int = 0) -> tuple[float, int]:
    """Mean return of the episodes a uniformly random policy finishes in ``steps`` steps of ``num_envs`` envs."""
    from jaxrl_policy.core.envs import make_vec_env

    venv = make_vec_env(env_id, num_envs)

    def run(key):
        k_reset, k_run = jax.random.split(key)

        def body(state, k):
            k_act, k_env = jax.random.split(k)
            action = jax.random.randint(k_act, (num_envs,), 0, venv.spec.num_actions)
            state, out = venv.step(k_env, state, action)
            done = out.terminated | out.truncated
            return state, (jnp.where(done, out.episode_return, 0.0).sum(), done.sum())

        _, (ret, n) = jax.lax.scan(body, venv.reset(k_reset), jax.random.split(k_run, steps))
        return ret.sum(), n.sum()

    total, n = jax.jit(run)(jax.random.PRNGKey(seed))
    return float(total) / max(int(n), 1), int(n)


def cli(*args: str) -> None:
    cmd = [sys.executable, "-m", "jaxrl_policy.cli", *args]
    print("$ jaxrl-policy " + " ".join(args), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False)
    p.add_argument("--suites", nargs="+", default=list(CHECKS), choices=list(CHECKS))
    p.add_argument("--out", default="runs/env-suites")
    p.add_argument("--figure", default=str(ROOT / "docs" / "env-suites.png"))
    p.add_argument("--numbers", default=str(ROOT / "docs" / "env-suites.json"))
    a = p.parse_args()
    from jaxrl_policy.core.envs import unknown_env_message

    out = Path(a.out)
    numbers = json.loads(Path(a.numbers).read_text()) if Path(a.numbers).exists() else {}
    for suite in a.suites:
        c = CHECKS[suite]
        msg = unknown_env_message(c["env"])
        if msg:
            print(f"[{suite}] skipped: {msg}", flush=True)
            continue
        t0 = time.perf_counter()
        cli("train", "--algo", "ppo", "--env", c["env"], "--seeds", str(c["seeds"]), "--total-timesteps",
            str(c["steps"]), "--out", str(out / suite), "--overwrite", "--quiet", "--checkpoint-every", "0",
            *c["flags"])
        wall = time.perf_counter() - t0
        s = json.loads((out / suite / "summary.json").read_text())
        rnd, episodes = random_return(c["env"])
        numbers[suite] = {"env": c["env"], "seeds": c["seeds"], "env_steps": c["steps"], "flags": c["flags"],
                          "why": c["why"], "final_return_iqm": s["final_return_iqm"],
                          "final_return": s["final_return"], "final_eval_return_iqm": s.get("final_eval_return_iqm"),
                          "final_eval_return": s.get("final_eval_return"),
                          "random_return": rnd, "random_episodes": episodes, "wall_s": round(wall),
                          "env_steps_per_s": s["env_steps_per_s"]}
        print(json.dumps(numbers[suite]), flush=True)
    Path(a.numbers).write_text(json.dumps(numbers, indent=2) + "\n")
    runs = [str(out / suite) for suite in CHECKS if (out / suite / "summary.json").exists()]
    if runs:
        cli("report", *runs, "--out", str(out / "report"), "--no-aggregate", "--score", "train")
        shutil.copy(out / "report" / "returns.png", a.figure)
    print("\n| suite | env | seeds | env steps | final return (IQM over seeds) | random policy | wall |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for suite, n in numbers.items():
        per_seed = ", ".join(f"{x:.2f}" for x in np.atleast_1d(n["final_return"]))
        print(f"| {suite} | `{n['env']}` | {n['seeds']} | {n['env_steps']:,} | {n['final_return_iqm']:.2f} "
              f"({per_seed}) | {n['random_return']:.2f} | {n['wall_s'] / 60:.0f} min |")


if __name__ == "__main__":
    main()
