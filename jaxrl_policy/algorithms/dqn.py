"""DQN (Mnih et al. 2015) with optional double Q (van Hasselt et al. 2016), as pure functions.

Shape legend: ``E`` envs, ``G`` gradient steps per iteration, ``B`` replay batch, ``A`` actions.

Storage: the ring of unrolls sampled as uniform ``transitions`` (a replay buffer). Each
transition keeps its true ``next_obs``, so a time-limit truncation bootstraps from
max_a Q⁻(final obs) and only a termination zeroes the bootstrap (purejaxrl's dqn.py treats
truncation as termination). Acting: ε-greedy with ε decaying linearly in env steps.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxrl_policy import losses
from jaxrl_policy.algorithms.common import age_diagnostics, grad_norm, make_optimizer, mean_metrics
from jaxrl_policy.config import DQNConfig
from jaxrl_policy.envs.adapter import EnvSpec
from jaxrl_policy.networks import QNetwork, dummy_obs, torso_kind
from jaxrl_policy.storage import make_ring
from jaxrl_policy.types import Algorithm


class DQNState(NamedTuple):
    params: object
    target_params: object
    opt_state: object
    grad_steps: jax.Array  # int32


def epsilon_schedule(cfg: DQNConfig, env_step):
    """Linear ε from eps_start to eps_end over eps_decay_fraction × total_timesteps env steps."""
    decay = max(1.0, cfg.eps_decay_fraction * cfg.total_timesteps)
    frac = jnp.clip(env_step / decay, 0.0, 1.0)
    return cfg.eps_start + frac * (cfg.eps_end - cfg.eps_start)


def make_dqn(cfg: DQNConfig, spec: EnvSpec) -> Algorithm:
    net = QNetwork(spec.num_actions, tuple(cfg.hidden_sizes), cfg.activation, cfg.orthogonal_init,
                   torso_kind(spec.obs_shape, cfg.torso))
    G = cfg.gradient_steps_per_iteration
    tx = make_optimizer(cfg, G)
    td_loss = losses.huber_loss if cfg.loss == "huber" else losses.squared_loss
    steps_per_iter = cfg.steps_per_iteration

    def init(key):
        params = net.init(key, dummy_obs(spec.obs_shape))
        return DQNState(params, params, tx.init(params), jnp.zeros((), jnp.int32))

    def actor(state):
        return state.params, state.grad_steps

    def act(actor_state, obs, key, env_step):
        params, version = actor_state
        q = net.apply(params, obs)
        # One uniform draw per env does both jobs: u < ε explores, and then u / ε is uniform on
        # [0, 1) and picks the random action (one PRNG call per step instead of three).
        eps = epsilon_schedule(cfg, env_step)
        u = jax.random.uniform(key, q.shape[:1])
        explore = u < eps
        random_action = jnp.minimum((u / jnp.maximum(eps, 1e-12) * spec.num_actions).astype(jnp.int32),
                                    spec.num_actions - 1)
        action = jnp.where(explore, random_action, jnp.argmax(q, -1))
        return action, {"version": jnp.broadcast_to(version, action.shape)}

    def loss_fn(params, target_params, b):
        q_tm1 = net.apply(params, b.obs)  # [B, A]
        q_t_value = net.apply(target_params, b.next_obs)
        discount_t = cfg.gamma * (1.0 - b.terminated.astype(jnp.float32))
        if cfg.double_q:
            q_t_selector = net.apply(params, b.next_obs)
            td = jax.vmap(losses.double_q_learning)(q_tm1, b.action, b.reward, discount_t, q_t_value, q_t_selector)
        else:
            td = jax.vmap(losses.q_learning)(q_tm1, b.action, b.reward, discount_t, q_t_value)
        return td_loss(td).mean(), {"q_mean": q_tm1.mean(), "td_abs": jnp.abs(td).mean()}

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def learn(state, batch, key, env_step):
        # batch: Transition [G, B]; one gradient step per draw (the replay ratio).
        def step(carry, b):
            params, opt_state = carry
            (loss, aux), grads = grad_fn(params, state.target_params, b)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), {
                "loss": loss, "grad_norm": grad_norm(grads), **aux}

        (params, opt_state), stats = jax.lax.scan(step, (state.params, state.opt_state), batch)
        # Target update when this iteration crossed a multiple of target_update_interval env
        # steps. env_step is unbatched, so this cond stays a branch under vmap.
        crossed = (env_step // cfg.target_update_interval) != ((env_step - steps_per_iter) // cfg.target_update_interval)
        target = jax.lax.cond(crossed, lambda: optax.incremental_update(params, state.target_params, cfg.tau),
                              lambda: state.target_params)
        grad_steps = state.grad_steps + G
        metrics = mean_metrics(stats)
        metrics.update(age_diagnostics(state.grad_steps, batch.extras["version"]))
        metrics["grad_steps"] = grad_steps.astype(jnp.float32)
        metrics["epsilon"] = epsilon_schedule(cfg, env_step)
        return DQNState(params, target, opt_state, grad_steps), metrics

    min_unrolls = max(1, -(-cfg.learning_starts // steps_per_iter))
    storage = make_ring(cfg.buffer_unrolls, "transitions", min_unrolls=min_unrolls, num_draws=G,
                        batch_size=cfg.batch_size)
    return Algorithm(init, actor, act, learn, storage)
