"""Evaluation (Agarwal et al. 2021's protocol): a deterministic policy on fixed episodes, inside the program.

Shape legend: ``M`` evaluation episodes (one per env, in parallel).

The learner's greedy policy (``Algorithm.greedy``; without one, ``act`` samples) runs on ``eval_episodes``
envs from keys fixed by ``eval_seed`` — the same episodes for every algorithm, seed and evaluation —
after learning. Its env steps are not part of the training budget (``env_steps``).
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from jaxrl_policy.core.config import BaseConfig
from jaxrl_policy.core.envs import VecEnv
from jaxrl_policy.core.types import Algorithm, HParams


def make_evaluation(cfg: BaseConfig, algo: Algorithm, env: VecEnv | None) -> Callable | None:
    """``evaluate(agent, hp) -> {eval_return, eval_length, eval_complete}`` (scalars), or None without an
    evaluation env (``eval_episodes`` = 0).

    ``env``: M = ``eval_episodes`` copies of the training env, reset from the fixed evaluation key and
    stepped ``eval_max_steps`` (or the env's time limit) times; each env's first episode counts (the env
    resets it afterwards, and what follows is ignored). ``eval_complete`` is the share of the M
    episodes that ended in time.
    """
    if env is None:
        return None
    M = cfg.eval_episodes
    steps = cfg.eval_max_steps or env.spec.max_episode_steps
    assert steps, "config validation asks for eval_max_steps where the env has no time limit"
    k_reset, k_steps = jax.random.split(jax.random.PRNGKey(cfg.eval_seed))
    step_keys = jax.random.split(k_steps, steps)

    init_carry = algo.init_carry(M) if algo.init_carry is not None else None

    def evaluate(agent, hp: HParams):
        def policy(obs, carry, key):
            if algo.greedy is not None:
                return algo.greedy(agent, obs, carry, hp)
            action, _, carry = algo.act(algo.actor(agent, hp), obs, carry, key, jnp.int32(cfg.total_timesteps), hp)
            return action, carry

        def step(c, key):  # after its first episode an env's rewards are ignored (so is its carry's reset)
            env_state, policy_carry, ret, length, done = c
            k_act, k_env = jax.random.split(key)
            action, policy_carry = policy(env_state.obs, policy_carry, k_act)
            env_state, out = env.step(k_env, env_state, action)
            ret = ret + jnp.where(done, 0.0, out.reward)
            length = length + (~done).astype(jnp.int32)
            return (env_state, policy_carry, ret, length, done | out.terminated | out.truncated), None

        init = (env.reset(k_reset), init_carry, jnp.zeros(M, jnp.float32), jnp.zeros(M, jnp.int32),
                jnp.zeros(M, bool))
        (_, _, ret, length, done), _ = jax.lax.scan(step, init, step_keys)
        return {"eval_return": ret.mean(), "eval_length": length.astype(jnp.float32).mean(),
                "eval_complete": done.astype(jnp.float32).mean()}

    return evaluate
