"""DQN (Mnih et al. 2015) with optional double Q (van Hasselt et al. 2016), as pure functions.

Shape legend: ``E`` envs, ``G`` gradient steps per iteration, ``B`` replay batch, ``A`` actions.

Storage: the ring of unrolls sampled as uniform ``transitions`` (a replay buffer). Each
transition keeps its true ``next_obs``, so a time-limit truncation bootstraps from
max_a Q⁻(final obs) and only a termination zeroes the bootstrap (purejaxrl's dqn.py treats
truncation as termination). Acting: ε-greedy with ε decaying linearly in env steps. Learning
starts once ``learning_starts`` env steps have been collected. Traced hyperparameters (``hp``):
learning rate, Adam ε, gradient clipping, γ, learning starts, target period and τ, the ε
schedule, Huber δ.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxrl_policy import losses
from jaxrl_policy.algorithms.common import (
    HParams,
    age_diagnostics,
    init_obs_stats,
    init_optimizer,
    make_update,
    mean_metrics,
    nan_like,
    observe_obs_stats,
)
from jaxrl_policy.config import DQNConfig
from jaxrl_policy.envs.adapter import EnvSpec
from jaxrl_policy.networks import dummy_obs, make_q_network
from jaxrl_policy.normalization import RunningStats, normalize
from jaxrl_policy.storage import make_ring
from jaxrl_policy.types import Algorithm, Params, Transition


class DQNState(NamedTuple):
    params: Params  # online Q-network
    target_params: Params  # target Q-network θ⁻
    opt_state: optax.OptState
    grad_steps: jax.Array  # int32 scalar
    obs_stats: RunningStats | None  # running observation statistics (normalize_observations)


class ActorState(NamedTuple):
    params: Params
    version: jax.Array  # int32 scalar: gradient steps of the acting parameters
    obs_stats: RunningStats | None


def epsilon_schedule(hp: HParams, total_timesteps: int, env_step):
    """Linear ε from eps_start to eps_end over eps_decay_fraction × total_timesteps env steps."""
    decay = jnp.maximum(1.0, hp["eps_decay_fraction"] * total_timesteps)
    frac = jnp.clip(env_step / decay, 0.0, 1.0)
    return hp["eps_start"] + frac * (hp["eps_end"] - hp["eps_start"])


def make_dqn(cfg: DQNConfig, spec: EnvSpec) -> Algorithm:
    net = make_q_network(cfg, spec)
    apply: Callable[..., Any] = net.apply  # (flax types the result as Any | (Any, mutated variables))
    G = cfg.gradient_steps_per_iteration
    steps_per_iter = cfg.steps_per_iteration
    A = spec.num_actions
    assert A is not None, "config validation admits discrete action spaces only"

    def init(key):
        params = net.init(key, dummy_obs(spec.obs_shape))
        return DQNState(params=params, target_params=params, opt_state=init_optimizer(params),
                        grad_steps=jnp.zeros((), jnp.int32), obs_stats=init_obs_stats(cfg, spec))

    def actor(state: DQNState, hp: HParams) -> ActorState:
        return ActorState(state.params, state.grad_steps, state.obs_stats)

    def act(actor_state: ActorState, obs, carry, key, env_step, hp: HParams):
        q = apply(actor_state.params, normalize(actor_state.obs_stats, obs))
        # One uniform draw per env does both jobs: u < ε explores, and then u / ε is uniform on
        # [0, 1) and picks the random action (one PRNG call per step instead of three).
        eps = epsilon_schedule(hp, cfg.total_timesteps, env_step)
        u = jax.random.uniform(key, q.shape[:1])
        explore = u < eps
        random_action = jnp.minimum((u / jnp.maximum(eps, 1e-12) * A).astype(jnp.int32), A - 1)
        action = jnp.where(explore, random_action, jnp.argmax(q, -1))
        return action, {"version": jnp.broadcast_to(actor_state.version, action.shape)}, carry

    def td_loss(td, hp: HParams):
        if cfg.loss == "huber":
            return losses.huber_loss(td, hp["huber_delta"])
        return losses.squared_loss(td)

    def loss_fn(params, hp: HParams, target_params, b: Transition, obs_stats):
        obs, next_obs = normalize(obs_stats, b.obs), normalize(obs_stats, b.next_obs)
        q_tm1 = apply(params, obs)  # [B, A]
        q_t_value = apply(target_params, next_obs)
        discount_t = hp["gamma"] * (1.0 - b.terminated.astype(jnp.float32))
        reward = b.reward * hp["reward_scale"]
        if cfg.double_q:
            q_t_selector = apply(params, next_obs)
            td = jax.vmap(losses.double_q_learning)(q_tm1, b.action, reward, discount_t, q_t_value, q_t_selector)
        else:
            td = jax.vmap(losses.q_learning)(q_tm1, b.action, reward, discount_t, q_t_value)
        return td_loss(td, hp).mean(), {"q_mean": q_tm1.mean(), "td_abs": jnp.abs(td).mean()}

    update = make_update(loss_fn, G, cfg.num_iterations)

    def train_step(state: DQNState, batch: Transition, env_step, hp: HParams):
        # batch: Transition [G, B]; one gradient step per draw (the replay ratio).
        def step(carry, b):
            params, opt_state = carry
            params, opt_state, metrics = update(params, opt_state, hp, state.target_params, b, state.obs_stats)
            return (params, opt_state), metrics

        (params, opt_state), stats = jax.lax.scan(step, (state.params, state.opt_state), batch)
        # Target update when this iteration crossed a multiple of target_update_interval env
        # steps. env_step is unbatched, so this cond stays a branch under vmap over seeds.
        period = hp["target_update_interval"]
        crossed = (env_step // period) != ((env_step - steps_per_iter) // period)
        target = jax.lax.cond(crossed, lambda: optax.incremental_update(params, state.target_params, hp["tau"]),
                              lambda: state.target_params)
        grad_steps = state.grad_steps + G
        metrics = mean_metrics(stats)
        metrics.update(age_diagnostics(state.grad_steps, batch.extras["version"]))
        metrics["grad_steps"] = grad_steps.astype(jnp.float32)
        return state._replace(params=params, target_params=target, opt_state=opt_state, grad_steps=grad_steps), metrics

    def learn(state: DQNState, batch: Transition, key, env_step, hp: HParams):
        def wait(state, batch):  # before learning_starts: no update, NaN metrics
            metrics = nan_like(jax.eval_shape(lambda s, b: train_step(s, b, env_step, hp)[1], state, batch))
            metrics["grad_steps"] = state.grad_steps.astype(jnp.float32)
            return state, metrics

        # env_step counts the steps collected so far; learning starts once it reaches learning_starts
        # (in whole iterations). The predicate is unbatched unless learning_starts itself is swept.
        # hp is closed over, not passed as an operand, so constant hyperparameters stay constants.
        state, metrics = jax.lax.cond(env_step >= hp["learning_starts"],
                                      lambda s, b: train_step(s, b, env_step, hp), wait, state, batch)
        metrics["epsilon"] = epsilon_schedule(hp, cfg.total_timesteps, env_step)
        return state, metrics

    def greedy(state: DQNState, obs, carry, hp: HParams):  # ε = 0
        return jnp.argmax(apply(state.params, normalize(state.obs_stats, obs)), -1), carry

    storage = make_ring(cfg.buffer_unrolls, "transitions", num_draws=G, batch_size=cfg.batch_size)
    return Algorithm(init=init, actor=actor, act=act, learn=learn, greedy=greedy, storage=storage,
                     observe=observe_obs_stats if cfg.normalize_observations else None)
