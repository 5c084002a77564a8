"""Learning from a fixed dataset: the loop without acting (``cfg.dataset``; ``run/build.build_loop`` picks it).

Shape legend: ``K`` stored unrolls, ``T`` unroll length, ``E`` envs, ``M`` dataset transitions.

The dataset (``io/dataset.py``) becomes the algorithm's own storage, full from the start: its M
transitions as ``K = ⌊M / (T·E)⌋`` unrolls ``[K, T, E]`` (``cfg.with_replay_unrolls(K)`` sizes the
ring), sampled by the algorithm's ``storage.sample`` exactly as online. Each iteration is one
``algo.learn`` call, then evaluation when due (the same protocol and episodes as online runs). No
env is stepped: ``env_steps`` stays 0 and no training episodes end (``final_return`` is NaN; the
greedy policy's ``eval_return`` is the result). Schedules the algorithms key to env steps (DQN's
``learning_starts``, target period) run on a clock of ``T·E`` dataset transitions per iteration,
logged as ``dataset_clock``; ``total_timesteps`` is that clock's budget. The recorded data has no
acting parameters, so its ``version`` is 0 and ``data_age`` counts the gradient steps since the start.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxrl_policy.core.config import BaseConfig, hparams
from jaxrl_policy.core.envs import EnvSpec, VecEnv
from jaxrl_policy.core.storage import RingState
from jaxrl_policy.core.types import DIAGNOSTICS, Algorithm, HParams, LoopState, Transition
from jaxrl_policy.loop.common import Loop, check_hparams, evaluate_if_due, make_eval_due, make_run_chunk
from jaxrl_policy.loop.evaluate import make_evaluation


def make_offline_loop(cfg: BaseConfig, algo: Algorithm, unrolls: Transition, spec: EnvSpec,
                      eval_env: VecEnv | None = None) -> Loop:
    """The loop of ``algo`` learning from ``unrolls`` (``[K, T, E]``: the dataset, ``cfg`` sized for K unrolls by
    ``cfg.with_replay_unrolls``), evaluated on ``eval_env``; ``spec``: the env's facts. ``run/build.build_loop``
    makes these values from a config."""
    evaluate = make_evaluation(cfg, algo, eval_env)
    constants = hparams(cfg)
    spi = cfg.steps_per_iteration
    K = unrolls.reward.shape[0]

    def init(key, hparams: dict[str, Any] | None = None) -> LoopState:
        given = check_hparams(cfg, hparams)
        key, k_agent = jax.random.split(key)
        storage = RingState(data=unrolls, pos=jnp.zeros((), jnp.int32),
                            filled=jnp.full((), K, jnp.int32))
        return LoopState(agent=algo.init(k_agent), env=None, storage=storage, key=key,
                         iteration=jnp.zeros((), jnp.int32), hparams=given, carry=None,
                         first=jnp.ones((cfg.num_envs,), bool))

    def iteration(state: LoopState, i):
        hp: HParams = {**constants, **state.hparams}
        key, k_sample, k_learn = jax.random.split(state.key, 3)
        clock = (i + 1) * spi
        agent, learn_metrics = algo.learn(state.agent, algo.storage.sample(state.storage, k_sample), k_learn, clock, hp)
        eval_metrics = evaluate_if_due(evaluate, eval_due(i), agent, hp)
        metrics = {"env_steps": jnp.zeros((), jnp.int32), "episode_return": jnp.full((), jnp.nan),
                   "episode_length": jnp.full((), jnp.nan), "episodes": jnp.zeros((), jnp.int32),
                   **{k: jnp.full((), jnp.nan) for k in DIAGNOSTICS}, **learn_metrics, **eval_metrics,
                   "dataset_clock": clock}
        metrics.setdefault("learned", jnp.ones((), jnp.float32))  # 1 unless learn says it took no step
        return state._replace(agent=agent, key=key, iteration=state.iteration + 1), metrics

    n_iter, ipc = cfg.num_iterations, cfg.iterations_per_chunk
    num_chunks = -(-n_iter // ipc)

    eval_due = make_eval_due(cfg, spi)  # as make_loop, on the dataset clock
    run_chunk = make_run_chunk(iteration, n_iter, ipc)

    def no_rollout(*args):
        raise NotImplementedError("an offline loop does not act")

    return Loop(init=init, rollout=no_rollout, run_chunk=run_chunk, iteration=iteration, num_chunks=num_chunks,
                iterations_per_chunk=ipc, algorithm=algo, hparams=constants,
                max_episode_steps=spec.max_episode_steps)
