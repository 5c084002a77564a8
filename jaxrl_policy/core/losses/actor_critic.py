"""Actor-critic losses: the V-trace (IMPALA) actor-critic objective over one trajectory.

Shape legend:
    T: number of time steps in the (unbatched) trajectory.
    A: number of discrete actions.

Espeholt et al. 2018, "IMPALA: Scalable Distributed Deep-RL with Importance Weighted
Actor-Learner Architectures", section 4.2: with V-trace targets v_s (eq. 1) the learner follows

    value:   (v_s − V_θ(x_s)) ∇_θ V_θ(x_s)                               → 0.5·mean_s (v_s − V(x_s))²
    policy:  ρ_s ∇_ω log π_ω(a_s|x_s) (r_s + γ v_{s+1} − V_θ(x_s))       → −mean_s sg(pg_adv_s) log π(a_s|x_s)
    entropy: −∇_ω Σ_a π_ω(a|x_s) log π_ω(a|x_s)                          → −mean_s H(π(·|x_s))

with ρ_s = min(ρ̄_pg, π/μ). Each term is returned separately so that callers weight them
(value and entropy coefficients) and can standardise advantages across a batch between
``vtrace`` and ``actor_critic_loss``; ``vtrace_actor_critic_loss`` composes the two for one
trajectory.
"""
from typing import NamedTuple, Optional

import chex
import jax
import jax.numpy as jnp
from jax import lax

from jaxrl_policy.core.losses.policy import categorical_entropy, categorical_log_prob
from jaxrl_policy.core.losses.returns import Numeric, vtrace

Array = jax.Array  # inputs may be anything jnp.asarray takes


class ActorCriticLoss(NamedTuple):
    """Scalar loss terms to be minimised (weight and add them)."""

    policy: Array  # −mean_t sg(Â_t) log π(a_t|x_t)
    value: Array  # 0.5·mean_t (sg(target_t) − V(x_t))²
    entropy: Array  # −mean_t H(π(·|x_t)) (minimising it maximises entropy)


def actor_critic_loss(log_prob_t: Array, entropy_t: Array, v_tm1: Array, value_target_t: Array,
                      pg_advantage_t: Array) -> ActorCriticLoss:
    """Policy-gradient, value and entropy terms of an actor-critic update (Mnih et al. 2016), for any
    action distribution (categorical, Gaussian, …): it sees log-probabilities and entropies only.

    Args:
        log_prob_t: log π(a_t|x_t) of the learner's policy, [T] (the gradient flows through it).
        entropy_t: entropies H(π(·|x_t)), [T] (the gradient flows through them).
        v_tm1: value predictions V(x_t), [T] (the gradient flows through them).
        value_target_t: value targets (e.g. V-trace's v_s), [T]; no gradient flows into them.
        pg_advantage_t: policy-gradient advantages, [T]; no gradient flows into them.

    Returns:
        ActorCriticLoss of scalars.
    """
    chex.assert_rank([log_prob_t, entropy_t, v_tm1, value_target_t, pg_advantage_t], 1)
    chex.assert_equal_shape([log_prob_t, entropy_t, v_tm1, value_target_t, pg_advantage_t])
    value = 0.5 * jnp.mean(jnp.square(lax.stop_gradient(value_target_t) - v_tm1))
    policy = -jnp.mean(lax.stop_gradient(pg_advantage_t) * log_prob_t)
    return ActorCriticLoss(policy=policy, value=value, entropy=-jnp.mean(entropy_t))


def vtrace_actor_critic_loss(
        logits_t: Array,
        a_t: Array,
        behaviour_log_prob_t: Array,
        v_tm1: Array,
        v_t: Array,
        r_t: Array,
        discount_t: Array,
        lambda_: Numeric = 1.0,
        clip_rho_threshold: float = 1.0,
        clip_pg_rho_threshold: float = 1.0,
        truncated_t: Optional[Array] = None,
        clip_c_threshold: float = 1.0,
) -> ActorCriticLoss:
    """The IMPALA actor-critic loss with V-trace targets for one trajectory (Espeholt et al. 2018, §4.2).

    ρ_t = π(a_t|x_t) / μ(a_t|x_t) from the learner's logits and the behaviour's log-probability
    (no gradient through ρ); then ``vtrace`` gives v_s and the ρ̄_pg-clipped advantages, and
    ``actor_critic_loss`` the three terms.

    Args:
        logits_t: learner policy logits at x_t, [T, A].
        a_t: actions taken by the behaviour policy, int [T].
        behaviour_log_prob_t: log μ(a_t|x_t), [T].
        v_tm1: V(x_t), [T] (the gradient flows through it into the value term only).
        v_t: V(x_{t+1}), [T] (the true final observation's value at truncations); no gradient.
        r_t: rewards, [T].
        discount_t: γ·(1 − terminated_t), [T].
        lambda_, clip_rho_threshold, clip_pg_rho_threshold, truncated_t, clip_c_threshold: as in ``vtrace``.

    Returns:
        ActorCriticLoss of scalars.
    """
    log_prob_t = categorical_log_prob(logits_t, a_t)
    log_rho_t = lax.stop_gradient(log_prob_t) - behaviour_log_prob_t
    out = vtrace(v_tm1=lax.stop_gradient(v_tm1), v_t=lax.stop_gradient(v_t), r_t=r_t, discount_t=discount_t,
                 rho_tm1=jnp.exp(log_rho_t), lambda_=lambda_, clip_rho_threshold=clip_rho_threshold,
                 clip_pg_rho_threshold=clip_pg_rho_threshold, truncated_t=truncated_t,
                 clip_c_threshold=clip_c_threshold)
    return actor_critic_loss(log_prob_t, categorical_entropy(logits_t), v_tm1, out.vs, out.pg_advantages)
