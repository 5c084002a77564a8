"""Uniform-random policy returns on gymnax envs: the ``random`` column of ``jaxrl_policy.scores``.

Rolls out ``--episodes`` independent episodes per env with actions drawn uniformly from the
env's gymnax action space (``action_space(params).sample``: a uniform discrete action, or a
uniform torque in ``[low, high]`` for Pendulum-v1), with the env's default gymnax params
(so episodes are cut at ``max_steps_in_episode``, as in training). Each episode's return is the
undiscounted sum of rewards up to its first ``terminated or truncated``; the table reports the
mean over episodes, the standard error and the min/max:

    python experiments/random_scores.py --episodes 1000 --seed 0

Uses the same ``make_gymnax`` as training, so the numbers are on the env definitions the
framework trains on (gymnax's MinAtar ports use minimal action sets, e.g. 3 actions in
Breakout-MinAtar).
"""
from __future__ import annotations

import argparse
import json
import time

ENVS = (
    "CartPole-v1",
    "Acrobot-v1",
    "MountainCar-v0",
    "Pendulum-v1",
    "Breakout-MinAtar",
    "SpaceInvaders-MinAtar",
    "Freeway-MinAtar",
    "Asterix-MinAtar",
)


def random_returns(env_id: str, episodes: int, seed: int):
    """Returns ``[episodes]`` undiscounted returns of a uniform-random policy."""
    import jax
    import jax.numpy as jnp

    from jaxrl_policy.core.envs import make_gymnax

    env, params = make_gymnax(env_id)
    space = env.action_space(params)
    horizon = int(params.max_steps_in_episode)

    def one_episode(key):
        key, k_reset = jax.random.split(key)
        _, state = env.reset(k_reset, params)

        def step(carry, _):
            key, state, ret, done = carry
            key, k_act, k_step = jax.random.split(key, 3)
            action = space.sample(k_act)
            out = env.step(k_step, state, action, params)
            state, reward = out[1], out[2]
            ended = jnp.logical_or(out[3], out[4]) if len(out) == 6 else out[3]
            ret = ret + jnp.where(done, 0.0, reward.astype(jnp.float32))
            return (key, state, ret, jnp.logical_or(done, ended)), None

        init = (key, state, jnp.float32(0.0), jnp.bool_(False))
        (_, _, ret, done), _ = jax.lax.scan(step, init, None, length=horizon)
        return ret, done

    keys = jax.random.split(jax.random.PRNGKey(seed), episodes)
    ret, done = jax.jit(jax.vmap(one_episode))(keys)
    assert bool(done.all()), f"{env_id}: some episodes did not end within {horizon} steps"
    import numpy as np

    return np.asarray(ret, dtype=np.float64)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--episodes", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--envs", nargs="+", default=list(ENVS))
    p.add_argument("--json", default=None, help="also write the table to this JSON file")
    args = p.parse_args()
    rows = {}
    print(f"| env | random mean | s.e. | min | max | episodes |  (seed {args.seed})")
    print("|---|---|---|---|---|---|")
    for env_id in args.envs:
        t0 = time.perf_counter()
        r = random_returns(env_id, args.episodes, args.seed)
        se = r.std(ddof=1) / len(r) ** 0.5
        rows[env_id] = {"mean": r.mean(), "se": se, "min": r.min(), "max": r.max(), "n": len(r)}
        print(f"| {env_id} | {r.mean():.3f} | {se:.3f} | {r.min():.1f} | {r.max():.1f} | {len(r)} |"
              f"  ({time.perf_counter() - t0:.0f}s)", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
