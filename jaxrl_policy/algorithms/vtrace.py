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
import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxrl_policy.algorithms import presets
from jaxrl_policy.algorithms.actor_critic import (
    ActorCriticConfig,
    make_export,
    make_greedy,
    next_state_values,
    vtrace_actor_critic,
)
from jaxrl_policy.algorithms.common import (
    ActorState,
    HParams,
    action_space,
    age_diagnostics,
    flag,
    init_obs_stats,
    init_optimizer,
    make_update,
    mean_metrics,
    observe_obs_stats,
    ratio_diagnostics,
    sampled_kl,
    split_envs,
    unroll_policy,
)
from jaxrl_policy.core import distributions as dist
from jaxrl_policy.core.config import Traced, is_int
from jaxrl_policy.core.envs import EnvSpec
from jaxrl_policy.core.networks import dummy_obs, make_actor_critic
from jaxrl_policy.core.normalization import RunningStats, normalize
from jaxrl_policy.core.storage import make_ring
from jaxrl_policy.core.types import Algorithm, Params, Transition


@dataclass(frozen=True)
class VTraceConfig(ActorCriticConfig):
    """IMPALA-style actor-critic with V-trace targets (Espeholt et al. 2018).

    ``policy_lag`` = 0, ``replay_capacity`` = 1, ``replay_ratio`` = 1 is on-policy A2C with GAE-like
    λ-returns; raising any of them moves along the spectrum towards off-policy learning.
    """

    # CartPole defaults at PPO's batch (4 envs × 128 steps; 4 passes × 4 minibatches = 16 gradient
    # steps of 128 samples per iteration), so the two do the same work per env step. λ, lr and
    # entropy differ from PPO's: tuned over 8 seeds at 5e5 steps (λ = 1, lr 5e-4, entropy 0.001;
    # every seed ≥ 490).
    num_envs: int = 4
    num_steps: int = 128
    learning_rate: float = 5e-4
    gae_lambda: Traced[float] = 1.0
    """λ of the V-trace trace (c_t = λ min(c̄, ρ_t)); with ρ = 1 the targets equal GAE(λ)."""
    clip_rho_threshold: Traced[float] = 1.0
    """ρ̄: truncation of the importance weight in the value target."""
    clip_pg_rho_threshold: Traced[float] = 1.0
    """ρ̄ of the policy-gradient advantage."""
    clip_c_threshold: Traced[float] = 1.0
    """c̄: truncation of the trace coefficients."""
    ent_coef: Traced[float] = 0.001
    """entropy bonus coefficient."""
    vf_coef: Traced[float] = 0.5
    """value-loss coefficient."""
    policy_lag: Traced[int] = 0
    """acting parameters are this many gradient steps older than the learner's (L <= max_policy_lag)."""
    max_policy_lag: int | None = None
    """size of the ring of past parameters, the largest policy_lag a program can run; None = policy_lag."""
    replay_capacity: int = 1
    """unrolls kept (K); 1 = only the latest."""
    replay_ratio: int = 4
    """passes per iteration; the first uses the newest unroll, the rest uniform draws from the K kept
    (with K = 1 every pass reuses the newest unroll, like PPO's epochs)."""
    num_minibatches: int = 4
    """minibatches per sampled unroll, split along the env axis (must divide num_envs)."""
    normalize_advantages: Traced[bool] = False
    """standardise the policy-gradient advantages per minibatch."""
    off_policy_correction: Traced[bool] = True
    """weight stale data by the truncated importance ratios; false = treat it as on-policy (ρ = c = 1)."""

    algo: ClassVar[str] = "vtrace"

    @property
    def gradient_steps_per_iteration(self) -> int:
        return self.replay_ratio * self.num_minibatches

    @classmethod
    def env_defaults(cls, env_id: str) -> dict[str, Any]:
        """MinAtar as every algorithm; Pendulum-v1 and MountainCarContinuous-v0: rejax's PPO data and optimiser
        settings with V-trace's own (``presets.py``); ``brax:`` ids: Brax's PPO settings scaled for CPU."""
        if env_id.startswith("brax:"):
            return presets.brax_defaults("vtrace", env_id)
        if env_id in presets.CONTINUOUS_DEFAULTS:
            d = {**presets.CONTINUOUS_DEFAULTS[env_id], **presets.VTRACE_CONTINUOUS_DEFAULTS.get(env_id, {})}
            if d["num_envs"] % cls.num_minibatches:  # V-trace's minibatches are env subsets
                d["num_minibatches"] = d["num_envs"]
            return d
        return super().env_defaults(env_id)

    @property
    def policy_lag_capacity(self) -> int:
        """Largest policy lag this config's program supports (the ring of past parameters holds it + 1)."""
        return self.policy_lag if self.max_policy_lag is None else self.max_policy_lag

    def _problems(self):
        p = super()._problems()
        g = lambda n: getattr(self, n)  # noqa: E731
        if not (isinstance(self.gae_lambda, (int, float)) and 0 <= self.gae_lambda <= 1):
            p.append(("gae_lambda", self.gae_lambda, "must be in [0, 1]"))
        for name in ("clip_rho_threshold", "clip_pg_rho_threshold", "clip_c_threshold"):
            if not (isinstance(g(name), (int, float)) and g(name) > 0):
                p.append((name, g(name), "must be > 0 (use a large finite value to disable)"))
        for name in ("ent_coef", "vf_coef"):
            if not (isinstance(g(name), (int, float)) and math.isfinite(g(name)) and g(name) >= 0):
                p.append((name, g(name), "must be a finite number >= 0"))
        if not (is_int(self.policy_lag) and self.policy_lag >= 0):
            p.append(("policy_lag", self.policy_lag, "must be an integer >= 0"))
        elif self.max_policy_lag is not None:
            if not (is_int(self.max_policy_lag) and self.max_policy_lag >= 0):
                p.append(("max_policy_lag", self.max_policy_lag, "must be an integer >= 0 or None"))
            elif self.policy_lag > self.max_policy_lag:
                p.append(("policy_lag", self.policy_lag, f"must be <= max_policy_lag = {self.max_policy_lag}"))
        for name in ("replay_capacity", "replay_ratio", "num_minibatches"):
            if not (isinstance(g(name), int) and g(name) >= 1):
                p.append((name, g(name), "must be an integer >= 1"))
        if isinstance(self.num_minibatches, int) and self.num_minibatches >= 1 and isinstance(self.num_envs, int) \
                and self.num_envs % self.num_minibatches:
            p.append(("num_minibatches", self.num_minibatches, f"must divide num_envs = {self.num_envs}"))
        return p


class VTraceState(NamedTuple):
    params: Params
    opt_state: optax.OptState
    grad_steps: jax.Array  # int32 scalar
    past_params: Params | None  # [Lmax + 1, ...]: slot j % (Lmax + 1) holds the params after j steps; None if Lmax = 0
    obs_stats: RunningStats | None  # running observation statistics (normalize_observations)






def make_vtrace(cfg: VTraceConfig, spec: EnvSpec) -> Algorithm:
    net = make_actor_critic(cfg, spec)
    apply: Callable[..., Any] = net.apply  # (flax types the result as Any | (Any, mutated variables))
    space = action_space(cfg, spec)
    recurrent = cfg.torso == "gru"
    G = cfg.gradient_steps_per_iteration
    L_MAX = cfg.policy_lag_capacity
    NMB = cfg.num_minibatches

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

    def loss_fn(params, hp: HParams, u: Transition, obs_stats):
        # u: Transition [T, MB] (MB envs of one minibatch)
        obs, next_obs = normalize(obs_stats, u.obs), normalize(obs_stats, u.next_obs)
        if recurrent:  # replay from the stored state; V(next_obs) from the state after each step
            policy, v_tm1, carries = unroll_policy(apply, params, obs, u.extras["carry"][0], u.extras["first"])
        else:
            (policy, v_tm1, _), carries = apply(params, obs), None  # [T, MB, ...], [T, MB]
        # bootstrap from the true next obs (the final one at truncations)
        v_t = jax.lax.stop_gradient(next_state_values(apply, params, v_tm1, next_obs, u.truncated, carries,
                                                      spec.max_episode_steps))
        logp = dist.log_prob(policy, u.action, space)  # [T, MB]
        log_rho = jax.lax.stop_gradient(logp) - u.extras["log_prob"]
        rho = jnp.exp(log_rho)
        # off_policy_correction = 0: the stale data counts as on-policy (ρ = c = 1, a λ-return actor-critic);
        # the diagnostics below still report the true ratios.
        rho_used = flag(hp["off_policy_correction"], lambda: rho, lambda: jnp.ones_like(rho))
        pg_loss, v_loss, ent_loss = vtrace_actor_critic(
            u, logp, dist.entropy(policy, space), v_tm1, v_t, rho_used, hp, clip_rho_threshold=hp["clip_rho_threshold"],
            clip_pg_rho_threshold=hp["clip_pg_rho_threshold"], clip_c_threshold=hp["clip_c_threshold"],
            normalize_advantages=hp["normalize_advantages"])
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
    return Algorithm(init=init, actor=actor, act=act, learn=learn, greedy=make_greedy(apply, space),
                     storage=storage,
                     init_carry=net.initial_carry if recurrent else None, export=make_export(net),
                     observe=observe_obs_stats if cfg.normalize_observations else None)
