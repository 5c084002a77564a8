"""What the actor-critic learners (PPO, V-trace, distillation) share: config fields, the greedy policy, the
value of the next state, and the V-trace actor-critic terms.

Shape legend: ``T`` time, ``MB`` envs per minibatch, ``B`` batch of trajectories, ``H`` recurrent state.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Literal

import jax
import jax.numpy as jnp

from jaxrl_policy.algorithms.common import flag, next_values, per_env, standardize
from jaxrl_policy.core import distributions as dist
from jaxrl_policy.core import losses
from jaxrl_policy.core.config import BaseConfig, is_number
from jaxrl_policy.core.distributions import ActionSpace
from jaxrl_policy.core.networks import ActorCritic, module_kwargs
from jaxrl_policy.core.normalization import normalize
from jaxrl_policy.core.types import HParams, PolicyExport, Transition


@dataclass(frozen=True)
class ActorCriticConfig(BaseConfig):
    """Fields of the actor-critic algorithms (PPO, V-trace): the policy head, continuous actions."""

    share_torso: bool = False
    """one torso for policy and value (purejaxrl uses two; a gru core is always shared)."""
    action_squash: Literal["clip", "tanh"] = "clip"
    """continuous actions: clip the Gaussian sample to the bounds in the env, or squash it with tanh."""
    state_dependent_std: bool = False
    """continuous actions: the log-std is a head of the network (default: one learned vector)."""
    log_std_init: float = 0.0
    """continuous actions: initial log-std of the Gaussian policy."""

    CONTINUOUS_ACTIONS: ClassVar[bool] = True
    RECURRENT: ClassVar[bool] = True

    def _problems(self):
        p = super()._problems()
        if self.action_squash not in ("clip", "tanh"):
            p.append(("action_squash", self.action_squash, "must be clip or tanh"))
        if not (is_number(self.log_std_init) and -20 <= self.log_std_init <= 2):
            p.append(("log_std_init", self.log_std_init, "must be a number in [-20, 2]"))
        for name in ("state_dependent_std", "share_torso"):
            if not isinstance(getattr(self, name), bool):
                p.append((name, getattr(self, name), "must be true or false"))
        return p


def make_greedy(apply: Callable[..., Any], space: ActionSpace, view: Callable[[jax.Array], jax.Array] | None = None):
    """``Algorithm.greedy`` of an actor-critic agent (a state with ``params`` and ``obs_stats``): the mode of its
    policy at ``view(obs)`` (the student's view in distillation), from the learner's current parameters."""
    def greedy(state, obs, carry, hp: HParams):
        policy, _, carry = apply(state.params, normalize(state.obs_stats, obs if view is None else view(obs)), carry)
        return dist.mode(policy, space), carry

    return greedy


def make_export(net: ActorCritic) -> Callable[[Any], PolicyExport]:
    """``Algorithm.export`` of an actor-critic agent: its network, parameters and observation statistics; the
    action is the mode of the policy (the first output)."""
    def export(state) -> PolicyExport:
        return PolicyExport("ActorCritic", module_kwargs(net), state.params, state.obs_stats, "mode")

    return export


def next_state_values(apply: Callable[..., Any], params, v_tm1: jax.Array, next_obs: jax.Array, truncated: jax.Array,
                      carries: Any, max_episode_steps: int | None) -> jax.Array:
    """V(next_obs) ``[T, B]``: the state's value after each step. Recurrent (``carries``: the core's state after
    each step ``[T, B, H]``): V(next_obs | that state) for all T·B; feed-forward: ``common.next_values`` (V(obs_{t+1})
    reused inside an episode, new forward passes only at the last step and at truncations)."""
    if carries is not None:
        T, B = next_obs.shape[:2]
        flat = lambda x: x.reshape(T * B, *x.shape[2:])  # noqa: E731
        return apply(params, flat(next_obs), flat(carries), method=ActorCritic.value).reshape(T, B)
    return next_values(lambda o: apply(params, o, method=ActorCritic.value), v_tm1, next_obs, truncated,
                       max_episode_steps)


def vtrace_actor_critic(u: Transition, log_prob: jax.Array, entropy: jax.Array, v_tm1: jax.Array, v_t: jax.Array,
                        rho: jax.Array, hp: HParams, *, clip_rho_threshold=1.0, clip_pg_rho_threshold=1.0,
                        clip_c_threshold=1.0, normalize_advantages=0.0) -> losses.ActorCriticLoss:
    """The IMPALA actor-critic terms (Espeholt et al. 2018, §4.2) on a minibatch of trajectories ``u`` ``[T, MB]``,
    each a mean over the MB trajectories: V-trace targets per trajectory (``losses.vtrace``, eq. 1), the
    ρ̄_pg-clipped advantages, optionally standardised across the minibatch (between the two, so not inside a
    one-trajectory loss), then ``losses.actor_critic_loss``. ``log_prob``, ``entropy``, ``v_tm1``: the learner's,
    ``[T, MB]`` (gradients flow through them); ``v_t``: V(next_obs) without gradient; ``rho``: π/μ as used (no
    gradient). V-trace and distillation's reward term call this; with a categorical policy and no
    standardisation it equals ``losses.vtrace_actor_critic_loss`` per trajectory (tested).
    """
    discount_t = hp["gamma"] * (1.0 - u.terminated.astype(jnp.float32))
    vtrace = functools.partial(losses.vtrace, lambda_=hp["gae_lambda"], clip_rho_threshold=clip_rho_threshold,
                               clip_pg_rho_threshold=clip_pg_rho_threshold, clip_c_threshold=clip_c_threshold)
    targets = jax.vmap(vtrace)(v_tm1=per_env(jax.lax.stop_gradient(v_tm1)), v_t=per_env(v_t),
                               r_t=per_env(u.reward * hp["reward_scale"]), discount_t=per_env(discount_t),
                               rho_tm1=per_env(rho), truncated_t=per_env(u.truncated))  # each [MB, T]
    pg_adv = flag(normalize_advantages, lambda: standardize(targets.pg_advantages), lambda: targets.pg_advantages)
    terms = jax.vmap(losses.actor_critic_loss)(per_env(log_prob), per_env(entropy), per_env(v_tm1), targets.vs,
                                               pg_adv)  # each [MB]
    return losses.ActorCriticLoss(policy=terms.policy.mean(), value=terms.value.mean(), entropy=terms.entropy.mean())
