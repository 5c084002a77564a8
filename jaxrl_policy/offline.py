"""Learning from a fixed dataset: the loop without acting (``cfg.dataset``; ``make_loop`` defers here).

Shape legend: ``K`` stored unrolls, ``T`` unroll length, ``E`` envs, ``M`` dataset transitions.

The dataset (``dataset.py``) becomes the algorithm's own storage, full from the start: its M
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

from jaxrl_policy.algorithms import make_algorithm
from jaxrl_policy.algorithms.common import nan_like
from jaxrl_policy.config import BaseConfig, hparams
from jaxrl_policy.envs.adapter import env_spec
from jaxrl_policy.storage import RingState
from jaxrl_policy.types import DIAGNOSTICS, HParams, LoopState, Transition


def make_offline_loop(cfg: BaseConfig):
    from jaxrl_policy import dataset as ds
    from jaxrl_policy.loop import Loop, check_hparams, make_eval_due, make_evaluation, make_run_chunk

    assert cfg.dataset is not None
    arrays, _ = ds.load(cfg.dataset)
    host, K = ds.to_storage(arrays, cfg.num_steps, cfg.num_envs)
    data = {k: jnp.asarray(v) for k, v in host.items()}
    run_cfg = cfg.with_replay_unrolls(K)
    spec = env_spec(cfg.env_id)
    algo = make_algorithm(run_cfg, spec)
    evaluate = make_evaluation(run_cfg, algo, spec.max_episode_steps)
    constants = hparams(cfg)
    spi = cfg.steps_per_iteration
    unrolls = Transition(obs=data["obs"], action=data["action"], reward=data["reward"],
                         terminated=data["terminated"], truncated=data["truncated"], next_obs=data["next_obs"],
                         extras={"log_prob": data["log_prob"], "version": jnp.zeros(data["reward"].shape, jnp.int32)})

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
        eval_metrics = {}
        if evaluate is not None:
            eval_metrics = jax.lax.cond(eval_due(i), lambda a: evaluate(a, hp),
                                        lambda a: nan_like(jax.eval_shape(lambda: evaluate(a, hp))), agent)
        metrics = {"env_steps": jnp.zeros((), jnp.int32), "episode_return": jnp.full((), jnp.nan),
                   "episode_length": jnp.full((), jnp.nan), "episodes": jnp.zeros((), jnp.int32),
                   **{k: jnp.full((), jnp.nan) for k in DIAGNOSTICS}, **learn_metrics, **eval_metrics,
                   "learned": jnp.ones((), jnp.float32), "dataset_clock": clock}
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
