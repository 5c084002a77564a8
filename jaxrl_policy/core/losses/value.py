"""Value and Q-learning losses.

Shape legend:
    T: number of time steps in the (unbatched) trajectory.
    A: number of discrete actions.

TD-error functions act on ONE transition (q_* are [A], everything else a
scalar); batch with ``jax.vmap``. Their bootstrap targets are under
stop_gradient, so differentiating the TD error only moves q_tm1.
"""
from typing import Optional

import chex
import jax
import jax.numpy as jnp

Array = jax.Array  # inputs may be anything jnp.asarray takes


def squared_loss(x: Array) -> Array:
    """Elementwise 0.5·x².

    Args:
        x: errors, any shape.

    Returns:
        Losses, same shape as x.
    """
    return 0.5 * jnp.square(x)


def huber_loss(x: Array, delta: float = 1.0) -> Array:
    """Elementwise Huber loss (Huber 1964): 0.5·x² if |x| ≤ δ else δ·(|x| − 0.5·δ).

    Args:
        x: errors, any shape.
        delta: quadratic-to-linear switch point δ, scalar.

    Returns:
        Losses, same shape as x.
    """
    abs_x = jnp.abs(x)
    # Split |x| into a quadratic part and a linear remainder: avoids a where()
    # and keeps the gradient clipped to ±δ.
    quadratic = jnp.minimum(abs_x, delta)
    linear = abs_x - quadratic
    return 0.5 * jnp.square(quadratic) + delta * linear


def ppo_value_loss(
        v_t: Array,
        v_old_t: Array,
        target_t: Array,
        clip_epsilon: Optional[float] = None,
) -> Array:
    """PPO value loss, optionally clipped around the rollout values.

    Unclipped: 0.5·mean((v − target)²). Clipped (OpenAI baselines ppo2 /
    purejaxrl, not in Schulman et al. 2017):
        0.5·mean(max((v − target)², (v_old + clip(v − v_old, −ε, ε) − target)²)).

    Args:
        v_t: current value predictions, [T].
        v_old_t: value predictions at rollout time, [T].
        target_t: value targets (e.g. advantages + v_old), [T].
        clip_epsilon: optional clip range ε, scalar; None disables clipping.

    Returns:
        Scalar loss.
    """
    chex.assert_rank([v_t, v_old_t, target_t], 1)
    chex.assert_type([v_t, v_old_t, target_t], float)
    chex.assert_equal_shape([v_t, v_old_t, target_t])
    unclipped = jnp.square(v_t - target_t)
    if clip_epsilon is None:
        return 0.5 * jnp.mean(unclipped)
    v_clipped = v_old_t + jnp.clip(v_t - v_old_t, -clip_epsilon, clip_epsilon)
    clipped = jnp.square(v_clipped - target_t)
    # Pessimistic max: no gain from moving v further than ε from v_old.
    return 0.5 * jnp.mean(jnp.maximum(unclipped, clipped))


def q_learning(
        q_tm1: Array,
        a_tm1: Array,
        r_t: Array,
        discount_t: Array,
        q_t: Array,
) -> Array:
    """Q-learning TD error (Watkins 1989; Mnih et al. 2015, DQN).

    δ = r_t + discount_t·max_a q_t[a] − q_tm1[a_tm1], target under stop_gradient.

    Args:
        q_tm1: Q-values at s_{t-1}, [A].
        a_tm1: action taken at s_{t-1}, int scalar.
        r_t: reward, scalar.
        discount_t: γ·(1 − terminated_t), scalar.
        q_t: (target-network) Q-values at s_t, [A].

    Returns:
        TD error, scalar.
    """
    chex.assert_rank([q_tm1, a_tm1, r_t, discount_t, q_t], [1, 0, 0, 0, 1])
    chex.assert_type([q_tm1, a_tm1, r_t, discount_t, q_t],
                                      [float, int, float, float, float])
    target_tm1 = r_t + discount_t * jnp.max(q_t)
    return jax.lax.stop_gradient(target_tm1) - q_tm1[a_tm1]


def double_q_learning(
        q_tm1: Array,
        a_tm1: Array,
        r_t: Array,
        discount_t: Array,
        q_t_value: Array,
        q_t_selector: Array,
) -> Array:
    """Double Q-learning TD error (van Hasselt et al. 2016, eq. 4).

    δ = r_t + discount_t·q_t_value[argmax_a q_t_selector[a]] − q_tm1[a_tm1];
    the selector (online net) picks the action, the value net evaluates it, and
    the target is under stop_gradient.

    Args:
        q_tm1: Q-values at s_{t-1}, [A].
        a_tm1: action taken at s_{t-1}, int scalar.
        r_t: reward, scalar.
        discount_t: γ·(1 − terminated_t), scalar.
        q_t_value: Q-values at s_t used to evaluate (target net), [A].
        q_t_selector: Q-values at s_t used to select the action (online net), [A].

    Returns:
        TD error, scalar.
    """
    chex.assert_rank([q_tm1, a_tm1, r_t, discount_t, q_t_value, q_t_selector],
                                      [1, 0, 0, 0, 1, 1])
    chex.assert_type([q_tm1, a_tm1, r_t, discount_t, q_t_value, q_t_selector],
                                      [float, int, float, float, float, float])
    a_t = jnp.argmax(q_t_selector)
    target_tm1 = r_t + discount_t * q_t_value[a_t]
    return jax.lax.stop_gradient(target_tm1) - q_tm1[a_tm1]
