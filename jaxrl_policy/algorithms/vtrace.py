"""IMPALA-style actor-critic with V-trace targets (Espeholt et al. 2018), as pure functions.

Shape legend: ``L`` policy lag, ``K`` stored unrolls, ``R`` replay ratio (draws per iteration),
``T`` time, ``E`` envs, ``A`` actions.

Spectrum knobs, all in-jit:
- ``policy_lag`` L: the acting parameters are the learner's from L gradient steps ago, kept in a
  ring ``[L + 1, ...]`` of past parameters (simulates IMPALA's actor–learner lag).
- ``replay_capacity`` K and ``replay_ratio`` R: R gradient steps per iteration, the first on the
  newest unroll, the others on unrolls drawn uniformly from the last K.
The V-trace targets correct for the stale behaviour with truncated importance weights:
vs for the value (ρ̄, c̄, λ) and ρ̄_pg-clipped advantages for the policy (eq. 1 and §4.2).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxrl_policy import losses
from jaxrl_policy.algorithms.common import (age_diagnostics, grad_norm, make_optimizer, mean_metrics,
                                            next_values, ratio_diagnostics, sample_categorical, sampled_kl)
from jaxrl_policy.algorithms.ppo import make_actor_critic
from jaxrl_policy.config import VTraceConfig
from jaxrl_policy.envs.adapter import EnvSpec
from jaxrl_policy.networks import ActorCritic, dummy_obs
from jaxrl_policy.storage import make_ring
from jaxrl_policy.types import Algorithm


class VTraceState(NamedTuple):
    params: object
    opt_state: object
    grad_steps: jax.Array  # int32
    past_params: object  # [L + 1, ...]: past_params[k % (L + 1)] holds the params after k steps


def make_vtrace(cfg: VTraceConfig, spec: EnvSpec) -> Algorithm:
    net = make_actor_critic(cfg, spec)
    G = cfg.gradient_steps_per_iteration
    tx = make_optimizer(cfg, G)
    L = cfg.policy_lag
    E, MB = cfg.num_envs, cfg.num_envs // cfg.num_minibatches
    vtrace_t = jax.vmap(losses.vtrace, in_axes=(1, 1, 1, 1, 1, None, None, None, 1, None), out_axes=1)

    def init(key):
        params = net.init(key, dummy_obs(spec.obs_shape))
        ring = jax.tree.map(lambda x: jnp.broadcast_to(x, (L + 1, *x.shape)), params) if L else None
        return VTraceState(params, tx.init(params), jnp.zeros((), jnp.int32), ring)

    def actor(state):
        if not L:
            return state.params, state.grad_steps
        # params after max(k - L, 0) steps; the ring starts filled with the initial params
        slot = (state.grad_steps - L) % (L + 1)
        return jax.tree.map(lambda x: x[slot], state.past_params), jnp.maximum(state.grad_steps - L, 0)

    def act(actor_state, obs, key, env_step):
        params, version = actor_state
        logits, _ = net.apply(params, obs)
        action, logp = sample_categorical(key, logits)
        return action, {"log_prob": logp, "version": jnp.broadcast_to(version, action.shape)}

    def loss_fn(params, u):
        # u: Transition [T, M] (M envs of one minibatch)
        logits, v_tm1 = net.apply(params, u.obs)  # [T, M, A], [T, M]
        # bootstrap from the true next obs (the final one at truncations), without a full forward pass
        v_t = jax.lax.stop_gradient(next_values(lambda o: net.apply(params, o, method=ActorCritic.value),
                                                v_tm1, u.next_obs, u.truncated, spec.max_episode_steps))
        logp_all = jax.nn.log_softmax(logits)
        logp = jnp.take_along_axis(logp_all, u.action[..., None], -1)[..., 0]
        log_rho = jax.lax.stop_gradient(logp) - u.extras["log_prob"]
        rho = jnp.exp(log_rho)
        discount_t = cfg.gamma * (1.0 - u.terminated.astype(jnp.float32))
        vs, pg_adv = vtrace_t(v_tm1, v_t, u.reward, discount_t, rho, cfg.gae_lambda, cfg.clip_rho_threshold,
                              cfg.clip_pg_rho_threshold, u.truncated, cfg.clip_c_threshold)
        if cfg.normalize_advantages:
            pg_adv = (pg_adv - pg_adv.mean()) / (pg_adv.std() + 1e-8)
        pg_loss = -(pg_adv * logp).mean()
        v_loss = 0.5 * jnp.mean(jnp.square(vs - v_tm1))
        ent_loss = losses.entropy_loss(logits_t=logits.reshape(-1, logits.shape[-1]))
        total = pg_loss + cfg.vf_coef * v_loss + cfg.ent_coef * ent_loss
        thr = min(cfg.clip_rho_threshold, cfg.clip_pg_rho_threshold)
        aux = {"pg_loss": pg_loss, "value_loss": v_loss, "entropy": -ent_loss,
               "policy_kl": sampled_kl(log_rho),
               **ratio_diagnostics(rho, -jnp.inf, thr)}
        return total, aux

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def learn(state, unrolls, key, env_step):
        # unrolls: Transition [R, T, E]; split each along envs into num_minibatches.
        def split(x):  # [R, T, E, ...] -> [R * nmb, T, MB, ...]
            R, T = x.shape[:2]
            x = x.reshape(R, T, cfg.num_minibatches, MB, *x.shape[3:])
            return jnp.moveaxis(x, 2, 1).reshape(R * cfg.num_minibatches, T, MB, *x.shape[4:])

        batches = jax.tree.map(split, unrolls)

        def step(carry, u):
            params, opt_state, k, ring = carry
            (loss, aux), grads = grad_fn(params, u)
            updates, opt_state = tx.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            aux.update(age_diagnostics(k, u.extras["version"]))
            k = k + 1
            if L:
                ring = jax.tree.map(lambda r, p: jax.lax.dynamic_update_index_in_dim(r, p, k % (L + 1), 0), ring, params)
            return (params, opt_state, k, ring), {"loss": loss, "grad_norm": grad_norm(grads), **aux}

        (params, opt_state, k, ring), stats = jax.lax.scan(
            step, (state.params, state.opt_state, state.grad_steps, state.past_params), batches)
        metrics = mean_metrics(stats)
        metrics["grad_steps"] = k.astype(jnp.float32)
        return VTraceState(params, opt_state, k, ring), metrics

    mode = "unrolls"
    storage = make_ring(cfg.replay_capacity, mode, num_draws=cfg.replay_ratio)
    return Algorithm(init, actor, act, learn, storage)
