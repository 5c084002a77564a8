"""The online loop: act T steps in E envs, store, learn, evaluate when due — one ``lax.scan`` over iterations.

Shape legend: ``T`` unroll length, ``E`` envs, ``I`` iterations, ``C`` chunks, ``S`` seeds.

Every algorithm runs through this loop unchanged; it never looks at the algorithm's name::

    hp = config constants, overridden by the traced hyperparameters given to train(key, hparams)
    for each iteration i (scan):
        actor = algo.actor(agent, hp)                      # maybe lagged parameters
        collect T steps: algo.act(actor, obs, hp) → env.step → unroll [T, E]
        storage = storage.add(storage, unroll)
        agent = algo.learn(agent, storage.sample(key), hp)
        if evaluation is due (every eval_every env steps, and at the end):
            eval_return = mean return of M greedy episodes from the fixed evaluation keys
        metrics[i] = episode stats + learn metrics + eval metrics (NaN where none)
                     + learned: 1 where a gradient step was taken (the algorithm says; default 1)
    after each chunk (scan): nonfinite_params = 1 if a float leaf of the agent state is NaN/inf,
                             else 0, on the chunk's last iteration (NaN on the others: not checked)

Chunks, evaluation schedule and the divergence flag: ``common.py``; the evaluation itself: ``evaluate.py``.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from jaxrl_policy.core.config import BaseConfig, hparams
from jaxrl_policy.core.envs import VecEnv
from jaxrl_policy.core.types import DIAGNOSTICS, Algorithm, HParams, LoopState, Transition
from jaxrl_policy.loop.common import (
    Loop,
    RolloutState,
    check_hparams,
    evaluate_if_due,
    make_eval_due,
    make_run_chunk,
    reset_carry,
)
from jaxrl_policy.loop.evaluate import make_evaluation


def make_rollout(algo: Algorithm, venv: VecEnv, T: int, init_carry: Any) -> Callable:
    """``rollout(agent, RolloutState, key, env_step0, hp) -> (RolloutState, Transition [T, E], (return, length,
    done) [T, E])``: T steps of ``algo`` acting in ``venv`` (brax's ``generate_unroll``), one ``lax.scan``. A
    recurrent policy's state is reset to ``init_carry`` where an episode starts, and stored with each step."""
    def rollout(agent, acting: RolloutState, key, env_step0, hp: HParams):
        actor = algo.actor(agent, hp)
        E = acting.first.shape[0]
        # All of the unroll's keys in one draw: one PRNG call instead of one per step.
        step_keys = jax.random.split(key, 2 * T).reshape(T, 2, *key.shape)

        def step(acting: RolloutState, xs):
            t, (k_act, k_env) = xs
            env_step = env_step0 + t * E
            carry = None if acting.carry is None else reset_carry(init_carry, acting.carry, acting.first)
            action, extras, new_carry = algo.act(actor, acting.env.obs, carry, k_act, env_step, hp)
            if carry is not None:  # what learning replays a recurrent policy from
                extras = {**extras, "carry": carry, "first": acting.first}
            new_env, out = venv.step(k_env, acting.env, action)
            tr = Transition(obs=acting.env.obs, action=action, reward=out.reward, terminated=out.terminated,
                            truncated=out.truncated, next_obs=out.next_obs, extras=extras)
            done = out.terminated | out.truncated
            ep = (out.episode_return, out.episode_length, done)
            return RolloutState(env=new_env, carry=new_carry, first=done), (tr, ep)

        acting, (unroll, ep) = jax.lax.scan(
            step, acting, (jnp.arange(T, dtype=jnp.int32), (step_keys[:, 0], step_keys[:, 1])))
        return acting, unroll, ep

    return rollout


def make_loop(cfg: BaseConfig, algo: Algorithm, venv: VecEnv, eval_env: VecEnv | None = None) -> Loop:
    """The online loop of ``algo`` acting in ``venv`` (``cfg.num_envs`` envs), evaluated on ``eval_env`` (None:
    no evaluation). Values in, nothing looked up: ``run/build.build_loop`` makes them from a config."""
    T, E = cfg.num_steps, cfg.num_envs
    steps_per_iter = T * E
    constants = hparams(cfg)  # the config's own values: compile-time constants of the program
    evaluate = make_evaluation(cfg, algo, eval_env)
    init_carry = algo.init_carry(E) if algo.init_carry is not None else None
    _rollout = make_rollout(algo, venv, T, init_carry)

    def hp_of(state: LoopState) -> HParams:
        return {**constants, **state.hparams}

    def init(key, hparams: dict[str, Any] | None = None) -> LoopState:
        given = check_hparams(cfg, hparams)
        hp = {**constants, **given}
        key, k_agent, k_env, k_ex = jax.random.split(key, 4)
        agent = algo.init(k_agent)
        acting = RolloutState(env=venv.reset(k_env), carry=init_carry, first=jnp.ones((E,), bool))
        unroll_example = jax.eval_shape(lambda: _rollout(agent, acting, k_ex, jnp.int32(0), hp)[1])
        storage = algo.storage.init(jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), unroll_example))
        return LoopState(agent=agent, env=acting.env, storage=storage, key=key, iteration=jnp.zeros((), jnp.int32),
                         hparams=given, carry=acting.carry, first=acting.first)

    def iteration(state: LoopState, i):
        """``i`` is the global iteration index; it comes from the scan's xs, so it stays unbatched."""
        hp = hp_of(state)
        key, k_roll, k_sample, k_learn = jax.random.split(state.key, 4)
        env_step0 = i * steps_per_iter
        acting, unroll, (ep_ret, ep_len, done) = _rollout(
            state.agent, RolloutState(env=state.env, carry=state.carry, first=state.first), k_roll, env_step0, hp)
        agent = state.agent if algo.observe is None else algo.observe(state.agent, unroll, hp)
        storage = algo.storage.add(state.storage, unroll)
        env_steps = env_step0 + steps_per_iter

        agent, learn_metrics = algo.learn(agent, algo.storage.sample(storage, k_sample), k_learn, env_steps, hp)
        learn_metrics = {**learn_metrics}
        learn_metrics.setdefault("learned", jnp.ones((), jnp.float32))  # 1 unless learn says it took no step
        eval_metrics = evaluate_if_due(evaluate, eval_due(i), agent, hp)
        n_done = done.sum()
        denom = jnp.maximum(n_done, 1)
        metrics = {
            "env_steps": env_steps,
            "episode_return": jnp.where(n_done > 0, (ep_ret * done).sum() / denom, jnp.nan),
            "episode_length": jnp.where(n_done > 0, (ep_len * done).sum() / denom, jnp.nan),
            "episodes": n_done,
            **{k: jnp.full((), jnp.nan) for k in DIAGNOSTICS},
            **learn_metrics,
            **eval_metrics,
        }
        new = LoopState(agent=agent, env=acting.env, storage=storage, key=key, iteration=state.iteration + 1,
                        hparams=state.hparams, carry=acting.carry, first=acting.first)
        return new, metrics

    n_iter = cfg.num_iterations
    ipc = cfg.iterations_per_chunk
    num_chunks = -(-n_iter // ipc)

    eval_due = make_eval_due(cfg, steps_per_iter)
    run_chunk = make_run_chunk(iteration, n_iter, ipc)

    return Loop(init=init, rollout=_rollout, run_chunk=run_chunk, iteration=iteration, num_chunks=num_chunks,
                iterations_per_chunk=ipc, algorithm=algo, hparams=constants,
                max_episode_steps=venv.spec.max_episode_steps)
