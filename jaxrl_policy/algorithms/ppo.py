"""PPO (Schulman et al. 2017) with GAE (Schulman et al. 2016) as a bundle of pure functions.

Shape legend: ``T`` time, ``E`` envs, ``N = T·E`` batch, ``M`` minibatch, ``A`` actions.

Storage: a ring of one unroll sampled as ``latest`` (strictly on-policy). Reuse: ``num_epochs``
passes × ``num_minibatches`` minibatches over each unroll. Truncation: advantages bootstrap
from V(next_obs) at a time limit and cut the λ-trace there; a termination bootstraps with 0.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxrl_policy import losses
from jaxrl_policy.algorithms.common import (age_diagnostics, grad_norm, make_optimizer, mean_metrics,
                                            next_values, ratio_diagnostics, sample_categorical, sampled_kl,
                                            shuffle)
from jaxrl_policy.config import PPOConfig
from jaxrl_policy.envs.adapter import EnvSpec
from jaxrl_policy.networks import ActorCritic, dummy_obs, torso_kind
from jaxrl_policy.storage import make_ring
from jaxrl_policy.types import Algorithm


class PPOState(NamedTuple):
    params: object
    opt_state: object
    grad_steps: jax.Array  # int32


def make_actor_critic(cfg, spec: EnvSpec) -> ActorCritic:
    return ActorCritic(spec.num_actions, tuple(cfg.hidden_sizes), cfg.activation, cfg.orthogonal_init,
                       torso_kind(spec.obs_shape, cfg.torso), cfg.share_torso)


def make_ppo(cfg: PPOConfig, spec: EnvSpec) -> Algorithm:
    net = make_actor_critic(cfg, spec)
    G = cfg.gradient_steps_per_iteration
    tx = make_optimizer(cfg, G)
    N = cfg.num_envs * cfg.num_steps
    M = N // cfg.num_minibatches

    def init(key):
        params = net.init(key, dummy_obs(spec.obs_shape))
        return PPOState(params, tx.init(params), jnp.zeros((), jnp.int32))

    def actor(state):
        return state.params, state.grad_steps

    def act(actor_state, obs, key, env_step):
        params, version = actor_state
        logits, value = net.apply(params, obs)
        action, logp = sample_categorical(key, logits)
        return action, {"log_prob": logp, "value": value,
                        "version": jnp.broadcast_to(version, action.shape)}

    def loss_fn(params, mb):
        logits, value = net.apply(params, mb["obs"])
        logp_all = jax.nn.log_softmax(logits)
        logp = jnp.take_along_axis(logp_all, mb["action"][:, None], -1)[:, 0]
        log_ratio = logp - mb["log_prob"]
        ratio = jnp.exp(log_ratio)
        adv = mb["adv"]
        if cfg.normalize_advantages:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        pg_loss = losses.ppo_clip_loss(ratio_t=ratio, adv_t=adv, epsilon=cfg.clip_eps)
        v_loss = losses.ppo_value_loss(v_t=value, v_old_t=mb["value"], target_t=mb["target"],
                                       clip_epsilon=cfg.clip_eps if cfg.clip_value_loss else None)
        ent_loss = losses.entropy_loss(logits_t=logits)
        total = pg_loss + cfg.vf_coef * v_loss + cfg.ent_coef * ent_loss
        aux = {"pg_loss": pg_loss, "value_loss": v_loss, "entropy": -ent_loss,
               "policy_kl": sampled_kl(log_ratio),
               **ratio_diagnostics(ratio, 1 - cfg.clip_eps, 1 + cfg.clip_eps)}
        return total, aux

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def learn(state, unroll, key, env_step):
        ex = unroll.extras
        # Bootstrap values of the true next observations: equal to V(obs_{t+1}) inside an
        # episode, V(final obs) at a truncation; unused (discount 0) at a termination.
        v_t = next_values(lambda o: net.apply(state.params, o, method=ActorCritic.value), ex["value"],
                          unroll.next_obs, unroll.truncated, spec.max_episode_steps)  # [T, E]
        discount_t = cfg.gamma * (1.0 - unroll.terminated.astype(jnp.float32))
        adv = jax.vmap(losses.gae_bootstrapped, in_axes=(1, 1, 1, 1, None, 1), out_axes=1)(
            unroll.reward, discount_t, ex["value"], v_t, cfg.gae_lambda, unroll.truncated)
        flat = lambda x: x.reshape((N, *x.shape[2:]))  # noqa: E731
        data = {"obs": flat(unroll.obs), "action": flat(unroll.action), "log_prob": flat(ex["log_prob"]),
                "value": flat(ex["value"]), "adv": flat(adv),
                "target": flat(adv + ex["value"])}

        def minibatch(carry, idx):
            params, opt_state = carry
            mb = jax.tree.map(lambda x: x[idx], data)
            (loss, aux), grads = grad_fn(params, mb)
            updates, opt_state = tx.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            return (params, opt_state), {"loss": loss, "grad_norm": grad_norm(grads), **aux}

        def epoch(carry, k):
            perm = shuffle(k, N).reshape(cfg.num_minibatches, M)
            return jax.lax.scan(minibatch, carry, perm)

        (params, opt_state), stats = jax.lax.scan(
            epoch, (state.params, state.opt_state), jax.random.split(key, cfg.num_epochs))
        metrics = mean_metrics(stats)
        grad_steps = state.grad_steps + G
        # Age per gradient step: the j-th of the G steps learns on data j steps older than at j = 0.
        age = age_diagnostics(state.grad_steps, ex["version"])
        metrics.update(data_age=age["data_age"] + (G - 1) / 2, data_age_max=age["data_age_max"] + (G - 1))
        metrics["grad_steps"] = grad_steps.astype(jnp.float32)
        return PPOState(params, opt_state, grad_steps), metrics

    storage = make_ring(1, "latest")
    return Algorithm(init, actor, act, learn, storage)
