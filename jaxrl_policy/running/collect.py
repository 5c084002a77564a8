"""Record a trained policy's episodes as a fixed dataset (``jaxrl-policy collect``; the format: ``io/dataset.py``).

Shape legend: ``N`` episodes (one per env, in parallel), ``T`` steps per episode (the env's time limit).
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl_policy.core.envs import make_vec_env
from jaxrl_policy.core.losses import categorical_log_prob
from jaxrl_policy.io import dataset
from jaxrl_policy.running.build import load_teacher


def collect(run_dir: str, episodes: int, *, seed: int = 0, seed_index: int = 0, temperature: float = 1.0,
            env_id: str | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Run the policy of ``run_dir`` (seed ``seed_index``; actions sampled from its softmax at
    ``temperature``) for ``episodes`` whole episodes on ``env_id`` (default: the run's env), one per
    env in parallel from ``PRNGKey(seed)``; returns ``(arrays, header)`` for ``io.dataset.save``."""
    policy = load_teacher(run_dir, seed_index, temperature)
    env_id = env_id or policy.env_id
    env = make_vec_env(env_id, episodes)
    steps = env.spec.max_episode_steps
    if not steps:
        raise ValueError(f"{env_id} has no time limit: collect needs episodes that end")

    def run(key):
        k_reset, k_steps = jax.random.split(key)

        def step(c, key):
            state, done = c
            k_act, k_env = jax.random.split(key)
            logits = policy.logits(state.obs)
            action = jax.random.categorical(k_act, logits)
            new, out = env.step(k_env, state, action)
            rec = {"obs": state.obs, "action": action.astype(jnp.int32), "reward": out.reward,
                   "terminated": out.terminated, "truncated": out.truncated, "next_obs": out.next_obs,
                   "log_prob": categorical_log_prob(logits, action), "valid": ~done,
                   "episode_return": out.episode_return}
            return (new, done | out.terminated | out.truncated), rec

        init = (env.reset(k_reset), jnp.zeros((episodes,), bool))
        return jax.lax.scan(step, init, jax.random.split(k_steps, steps))[1]

    rec = jax.tree.map(np.asarray, jax.jit(run)(jax.random.PRNGKey(seed)))  # each [steps, N, ...]
    valid = rec.pop("valid")
    ends = valid & (rec["terminated"] | rec["truncated"])
    returns = rec.pop("episode_return")[ends]
    order = lambda x: np.swapaxes(x, 0, 1)[np.swapaxes(valid, 0, 1)]  # noqa: E731  episode by episode
    arrays = {k: order(v).astype(dataset.FIELDS[k][0]) for k, v in rec.items()}
    header = {"format": dataset.FORMAT, "version": dataset.VERSION, "env_id": env_id, "source": str(run_dir),
              "policy": {"algo": policy.algo, "seed": policy.seed, "temperature": temperature},
              "collect_seed": seed, "episodes": int(ends.sum()), "num_transitions": int(valid.sum()),
              "episode_returns": [float(r) for r in np.asarray(returns)]}
    return arrays, header
