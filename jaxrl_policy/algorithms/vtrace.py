"""IMPALA-style actor-critic with V-trace targets (Espeholt et al. 2018), as pure functions.

Shape legend: ``L`` policy lag (traced, ≤ ``Lmax`` = ``cfg.policy_lag_capacity``, static),
``K`` stored unrolls, ``R`` replay ratio (draws per iteration), ``T`` time, ``E`` envs,
``MB`` envs per minibatch, ``A`` actions.

Spectrum knobs, all in-jit:
- ``policy_lag`` L: the acting parameters are the learner's from L gradient steps ago, kept in a
  ring ``[Lmax + 1, ...]`` of past parameters (simulates IMPALA's actor–learner lag). L is data
  of the program, so a sweep over L ≤ Lmax is one compile.
- ``replay_capacity`` K and ``replay_ratio`` R: R passes per iteration, the first on the
  newest unroll, the others on unrolls drawn uniformly from the last K.
The loss is ``losses.vtrace`` (targets v_s, ρ̄_pg-clipped advantages; eq. 1 and §4.2) followed by
``losses.actor_critic_loss`` — ``losses.vtrace_actor_critic_loss`` for one trajectory, with the
advantages optionally standardised across the minibatch in between.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxrl_policy import distributions as dist
from jaxrl_policy import losses
from jaxrl_policy.algorithms.common import (
    HParams,
    action_space,
    age_diagnostics,
    flag,
    init_obs_stats,
    init_optimizer,
    make_update,
    mean_metrics,
    next_values,
    observe_obs_stats,
    ratio_diagnostics,
    sampled_kl,
    split_envs,
    standardize,
    unroll_policy,
)
from jaxrl_policy.config import VTraceConfig
from jaxrl_policy.envs.adapter import EnvSpec
from jaxrl_policy.networks import ActorCritic, dummy_obs, make_actor_critic
from jaxrl_policy.normalization import RunningStats, normalize
from jaxrl_policy.storage import make_ring
from jaxrl_policy.types import Algorithm, Params, Transition


class VTraceState(NamedTuple):
    params: Params
    opt_state: optax.OptState
    grad_steps: jax.Array  # int32 scalar
    past_params: Params | None  # [Lmax + 1, ...]: slot j % (Lmax + 1) holds the params after j steps; None if Lmax = 0
    obs_stats: RunningStats | None  # running observation statistics (normalize_observations)


class ActorState(NamedTuple):
    params: Params
    version: jax.Array  # int32 scalar: gradient steps of the acting parameters
    obs_stats: RunningStats | None


def per_env(x: jax.Array) -> jax.Array:
    """``[T, MB, ...] -> [MB, T, ...]``: one trajectory per env, for losses that take ``[T]``."""
    return jnp.swapaxes(x, 0, 1)


def make_vtrace(cfg: VTraceConfig, spec: EnvSpec) -> Algorithm:
    net = make_actor_critic(cfg, spec)
    apply: Callable[..., Any] = net.apply  # (flax types the result as Any | (Any, mutated variables))
    space = action_space(cfg, spec)
    recurrent = cfg.torso == "gru"
    G = cfg.gradient_steps_per_iteration
    L_MAX = cfg.policy_lag_capacity
    NMB, MB = cfg.num_minibatches, cfg.num_envs // cfg.num_minibatches

    def init(key):
        params = net.init(key, dummy_obs(spec.obs_shape), net.initial_carry(1))
        ring = jax.tree.map(lambda x: jnp.broadcast_to(x, (L_MAX + 1, *x.shape)), params) if L_MAX else None
        return VTraceState(params=params, opt_state=init_optimizer(params), grad_steps=jnp.zeros((), jnp.int32),
                           past_params=ring, obs_stats=init_obs_stats(cfg, spec))

    def actor(state: VTraceState, hp: HParams) -> ActorState:
        if not L_MAX:
            return ActorState(state.params, state.grad_steps, state.obs_stats)
        # the params after max(j − L, 0) steps; the ring starts filled with the initial params
        version = jnp.maximum(state.grad_steps - hp["policy_lag"], 0)
        slot = version % (L_MAX + 1)
        return ActorState(jax.tree.map(lambda x: x[slot], state.past_params), version, state.obs_stats)

    def act(actor_state: ActorState, obs, carry, key, env_step, hp: HParams):
        policy, _, carry = apply(actor_state.params, normalize(actor_state.obs_stats, obs), carry)
        action, logp = dist.sample(key, policy, space)
        return action, {"log_prob": logp, "version": jnp.broadcast_to(actor_state.version, logp.shape)}, carry

    def greedy(state: VTraceState, obs, carry, hp: HParams):  # the learner's current parameters, not the lagged actor's
        policy, _, carry = apply(state.params, normalize(state.obs_stats, obs), carry)
        return dist.mode(policy, space), carry

    def loss_fn(params, hp: HParams, u: Transition, obs_stats):
        # u: Transition [T, MB] (MB envs of one minibatch)
        obs, next_obs = normalize(obs_stats, u.obs), normalize(obs_stats, u.next_obs)
        if recurrent:  # replay from the stored state; V(next_obs) from the state after each step
            policy, v_tm1, carries = unroll_policy(apply, params, obs, u.extras["carry"][0], u.extras["first"])
            T_ = obs.shape[0]
            flat = lambda x: x.reshape(T_ * MB, *x.shape[2:])  # noqa: E731
            v_t = apply(params, flat(next_obs), flat(carries), method=ActorCritic.value).reshape(T_, MB)
        else:
            policy, v_tm1, _ = apply(params, obs)  # [T, MB, ...], [T, MB]
            # bootstrap from the true next obs (the final one at truncations), without a full forward pass
            v_t = next_values(lambda o: apply(params, o, method=ActorCritic.value), v_tm1, next_obs, u.truncated,
                              spec.max_episode_steps)
        v_t = jax.lax.stop_gradient(v_t)
        logp = dist.log_prob(policy, u.action, space)  # [T, MB]
        log_rho = jax.lax.stop_gradient(logp) - u.extras["log_prob"]
        rho = jnp.exp(log_rho)
        # off_policy_correction = 0: the stale data counts as on-policy (ρ = c = 1, a λ-return actor-critic);
        # the diagnostics below still report the true ratios.
        rho_used = flag(hp["off_policy_correction"], lambda: rho, lambda: jnp.ones_like(rho))
        discount_t = hp["gamma"] * (1.0 - u.terminated.astype(jnp.float32))
        vtrace = functools.partial(losses.vtrace, lambda_=hp["gae_lambda"], clip_rho_threshold=hp["clip_rho_threshold"],
                                   clip_pg_rho_threshold=hp["clip_pg_rho_threshold"],
                                   clip_c_threshold=hp["clip_c_threshold"])
        targets = jax.vmap(vtrace)(v_tm1=per_env(jax.lax.stop_gradient(v_tm1)), v_t=per_env(v_t),
                                   r_t=per_env(u.reward * hp["reward_scale"]), discount_t=per_env(discount_t),
                                   rho_tm1=per_env(rho_used), truncated_t=per_env(u.truncated))  # each [MB, T]
        pg_adv = flag(hp["normalize_advantages"], lambda: standardize(targets.pg_advantages),
                      lambda: targets.pg_advantages)
        terms = jax.vmap(losses.actor_critic_loss)(per_env(logp), per_env(dist.entropy(policy, space)),
                                                   per_env(v_tm1), targets.vs, pg_adv)  # each [MB]
        pg_loss, v_loss, ent_loss = terms.policy.mean(), terms.value.mean(), terms.entropy.mean()
        total = pg_loss + hp["vf_coef"] * v_loss + hp["ent_coef"] * ent_loss
        thr = jnp.minimum(hp["clip_rho_threshold"], hp["clip_pg_rho_threshold"])
        aux = {"pg_loss": pg_loss, "value_loss": v_loss, "entropy": -ent_loss, "policy_kl": sampled_kl(log_rho),
               **ratio_diagnostics(rho, -jnp.inf, thr)}
        return total, aux

    update = make_update(loss_fn, G, cfg.num_iterations)

    def learn(state: VTraceState, unrolls: Transition, key, env_step, hp: HParams):
        # unrolls: Transition [R, T, E]; each split along envs into NMB minibatches of MB envs.
        split = functools.partial(split_envs, num_minibatches=NMB)

        def step(carry, u):
            params, opt_state, grad_steps, ring = carry
            params, opt_state, metrics = update(params, opt_state, hp, u, state.obs_stats)
            metrics.update(age_diagnostics(grad_steps, u.extras["version"]))
            grad_steps = grad_steps + 1
            if L_MAX:
                ring = jax.tree.map(lambda r, p: jax.lax.dynamic_update_index_in_dim(r, p, grad_steps % (L_MAX + 1), 0),
                                    ring, params)
            return (params, opt_state, grad_steps, ring), metrics

        (params, opt_state, grad_steps, ring), stats = jax.lax.scan(
            step, (state.params, state.opt_state, state.grad_steps, state.past_params), jax.tree.map(split, unrolls))
        metrics = mean_metrics(stats)
        metrics["grad_steps"] = grad_steps.astype(jnp.float32)
        return state._replace(params=params, opt_state=opt_state, grad_steps=grad_steps, past_params=ring), metrics

    storage = make_ring(cfg.replay_capacity, "unrolls", num_draws=cfg.replay_ratio)
    return Algorithm(init=init, actor=actor, act=act, learn=learn, greedy=greedy, storage=storage,
                     init_carry=net.initial_carry if recurrent else None,
                     observe=observe_obs_stats if cfg.normalize_observations else None)
