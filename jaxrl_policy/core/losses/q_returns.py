"""Peng's Q(λ) returns and TD errors over one fresh rollout, as PQN uses them.

Shape legend:
    T: number of time steps in the (unbatched) trajectory.
    A: number of discrete actions.

Conventions as in ``returns.py``: ``r_t`` and ``discount_t`` belong to the transition
s_t -> s_{t+1}; ``discount_t`` is γ·(1 − terminated_t); ``q_tm1`` holds Q(s_t, ·) and ``q_t``
holds Q(s_{t+1}, ·). At a time-limit truncation ``q_t[t]`` holds the Q-values of the true final
observation, not of the reset one (as ``v_t`` in ``gae_bootstrapped``), so the return bootstraps
from it. Batch with ``jax.vmap``.
"""
from typing import Optional

import chex
import jax
import jax.numpy as jnp

from jaxrl_policy.core.losses.returns import Numeric, _not_truncated, _reverse_discounted_sum

Array = jax.Array  # inputs may be anything jnp.asarray takes


def _trace_continues(truncated_t: Optional[Array], like: Array) -> Array:
    """1 where G_t may follow the λ-trace into G_{t+1}; 0 at truncations and at the rollout's last step.

    The rollout's end cuts the trace like a truncation does: there is no G_T, so G_{T−1} bootstraps
    fully from max_a Q(s_T, a) (Gallici et al. 2025, Alg. 1; rlax.lambda_returns seeds its scan with
    v_t[-1], which is the same).
    """
    return jnp.asarray(_not_truncated(truncated_t, like)).at[-1].set(0.0)


def q_lambda_returns(
        r_t: Array,
        discount_t: Array,
        q_t: Array,
        lambda_: Numeric,
        truncated_t: Optional[Array] = None,
) -> Array:
    """Peng's Q(λ) returns over a fresh rollout (the targets of PQN).

    Gallici et al. 2025, "Simplifying Deep Temporal Difference Learning" (ICLR), Alg. 1;
    Peng & Williams 1996, "Incremental Multi-Step Q-Learning". With c_t = (1 − truncated_t) for t < T − 1
    and c_{T−1} = 0, the backward recursion
        G_t = r_t + discount_t·[(1 − λ_t·c_t)·max_a q_t[t, a] + λ_t·c_t·G_{t+1}],
    i.e. G_t = r_t + γ_t[λ G_{t+1} + (1 − λ) max_a Q(s_{t+1}, a)] inside an episode; the last step
    and truncations bootstrap fully from max_a q_t[t] and cut the trace; a termination
    (discount_t = 0) leaves G_t = r_t. Without truncations this is rlax.lambda_returns with
    v_t = max_a q_t (the target of rlax.q_lambda).

    Args:
        r_t: rewards, [T].
        discount_t: γ·(1 − terminated_t), [T].
        q_t: Q(s_{t+1}, ·), [T, A] (Q-values of the true final observation at truncations).
        lambda_: trace parameter λ, scalar or [T].
        truncated_t: optional bool/float [T]; 1 where the episode was cut by a
            time limit after step t.

    Returns:
        Returns G_t, [T], under stop_gradient.
    """
    chex.assert_rank([r_t, discount_t, q_t, lambda_], [1, 1, 2, {0, 1}])
    chex.assert_type([r_t, discount_t, q_t], float)
    chex.assert_equal_shape([r_t, discount_t])
    chex.assert_equal_shape_prefix([r_t, q_t], 1)

    lambda_ = jnp.ones_like(discount_t) * lambda_  # Scalar -> [T].
    v_t = jnp.max(q_t, axis=-1)  # Greedy (Peng's) bootstrap max_a Q(s_{t+1}, a), Alg. 1.
    trace_t = lambda_ * _trace_continues(truncated_t, discount_t)
    # Alg. 1: G_t = r_t + γ_t[(1 − λ)·max_a Q(s_{t+1}, a) + λ·G_{t+1}], solved as acc_t = x_t + decay_t·acc_{t+1}.
    x_t = r_t + discount_t * (1.0 - trace_t) * v_t
    returns = _reverse_discounted_sum(x_t, discount_t * trace_t)
    return jax.lax.stop_gradient(returns)  # Targets carry no gradient.


def q_lambda(
        q_tm1: Array,
        a_tm1: Array,
        r_t: Array,
        discount_t: Array,
        q_t: Array,
        lambda_: Numeric,
        truncated_t: Optional[Array] = None,
) -> Array:
    """Peng's Q(λ) TD errors G_t − Q(s_t, a_t), as rlax.q_lambda (plus truncations).

    Gallici et al. 2025 (PQN), Alg. 1: the loss is ½(G_t − Q(s_t, a_t))² with the
    ``q_lambda_returns`` targets under stop_gradient, so differentiating the error only moves q_tm1.

    Args:
        q_tm1: Q(s_t, ·), [T, A].
        a_tm1: actions taken at s_t, int [T].
        r_t: rewards, [T].
        discount_t: γ·(1 − terminated_t), [T].
        q_t: Q(s_{t+1}, ·), [T, A] (Q-values of the true final observation at truncations).
        lambda_: trace parameter λ, scalar or [T].
        truncated_t: optional bool/float [T]; 1 where the episode was cut by a
            time limit after step t.

    Returns:
        TD errors, [T].
    """
    chex.assert_rank([q_tm1, a_tm1, r_t, discount_t, q_t, lambda_], [2, 1, 1, 1, 2, {0, 1}])
    chex.assert_type([q_tm1, a_tm1, r_t, discount_t, q_t], [float, int, float, float, float])
    chex.assert_equal_shape([q_tm1, q_t])
    chex.assert_equal_shape([a_tm1, r_t])

    qa_tm1 = jnp.take_along_axis(q_tm1, a_tm1[:, None], axis=-1)[:, 0]
    target_tm1 = q_lambda_returns(
            r_t=r_t, discount_t=discount_t, q_t=q_t, lambda_=lambda_, truncated_t=truncated_t)
    return target_tm1 - qa_tm1
