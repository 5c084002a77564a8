"""Multi-step return and advantage estimators over one trajectory.

Shape legend:
    T: number of time steps in the (unbatched) trajectory.

Conventions (as in rlax): ``r_t`` and ``discount_t`` belong to the transition
s_t -> s_{t+1}; ``discount_t`` is γ·(1 − terminated_t); ``v_tm1`` holds V(s_t)
and ``v_t`` holds V(s_{t+1}). Values are passed as two arrays so that, at a
time-limit truncation, ``v_t[t]`` can be the value of the true final observation
while ``v_tm1[t+1]`` is the value of the reset observation. Batch with
``jax.vmap``.
"""
from typing import NamedTuple, Optional, Union

import chex
import jax
import jax.numpy as jnp

Array = jax.Array  # inputs may be anything jnp.asarray takes
Numeric = Union[Array, float]  # a scalar or an array


class VTraceOutput(NamedTuple):
    """V-trace outputs, both [T] and gradient-free."""
    vs: Array  # Value targets v_s.
    pg_advantages: Array  # ρ̄_pg-clipped policy-gradient advantages.


def _not_truncated(truncated_t: Optional[Array], like: Array) -> Array:
    """1 where the λ-trace may continue past step t, 0 where it is cut."""
    if truncated_t is None:
        return jnp.ones_like(like)
    chex.assert_equal_shape([truncated_t, like])
    return 1.0 - truncated_t.astype(like.dtype)


def _reverse_discounted_sum(x_t: Array, decay_t: Array, parallel: Optional[bool] = None) -> Array:
    """acc_t = x_t + decay_t·acc_{t+1}, acc_T = 0.

    On CPU a sequential reverse scan (T cheap steps). On accelerators each scan step is a kernel
    launch, and V-trace runs this recursion inside every gradient step, so there it is solved as
    a composition of affine maps y ↦ x_t + decay_t·y with ``lax.associative_scan`` (depth log T;
    equal up to float rounding, tested). ``parallel`` forces one or the other.
    """
    if parallel is None:
        parallel = jax.default_backend() != "cpu"
    if parallel:
        def compose(inner, outer):  # outer ∘ inner for maps (a, b): y ↦ b + a·y
            a_in, b_in = inner
            a_out, b_out = outer
            return a_out * a_in, b_out + a_out * b_in

        # flipped, the prefix at position i is f_t ∘ … ∘ f_{T−1} with t = T − 1 − i; acc_t is its b
        _, out = jax.lax.associative_scan(compose, (decay_t[::-1], x_t[::-1]))
        return out[::-1]

    def body(acc, xs):
        x, decay = xs
        acc = x + decay * acc
        return acc, acc

    _, out = jax.lax.scan(
            body, jnp.zeros((), x_t.dtype), (x_t, decay_t), reverse=True)
    return out


def gae_bootstrapped(
        r_t: Array,
        discount_t: Array,
        v_tm1: Array,
        v_t: Array,
        lambda_: Numeric,
        truncated_t: Optional[Array] = None,
) -> Array:
    """Generalised advantage estimation with separately given next-state values.

    Schulman et al. 2016, "High-Dimensional Continuous Control Using Generalized
    Advantage Estimation", eq. 16, written as the backward recursion
        δ_t = r_t + discount_t·v_t[t] − v_tm1[t],
        Â_t = δ_t + discount_t·λ_t·(1 − truncated_t)·Â_{t+1},   Â_T = 0.
    At a truncation the trace is cut but δ_t still bootstraps from v_t[t].

    Args:
        r_t: rewards, [T].
        discount_t: γ·(1 − terminated_t), [T].
        v_tm1: V(s_t), [T].
        v_t: V(s_{t+1}), [T] (value of the true final observation at truncations).
        lambda_: trace parameter λ, scalar or [T].
        truncated_t: optional bool/float [T]; 1 where the episode was cut by a
            time limit after step t.

    Returns:
        Advantages Â_t, [T].
    """
    chex.assert_rank([r_t, discount_t, v_tm1, v_t, lambda_], [1, 1, 1, 1, {0, 1}])
    chex.assert_type([r_t, discount_t, v_tm1, v_t], float)
    chex.assert_equal_shape([r_t, discount_t, v_tm1, v_t])

    lambda_ = jnp.ones_like(discount_t) * lambda_  # Scalar -> [T].
    delta_t = r_t + discount_t * v_t - v_tm1
    # The trace through s_{t+1} needs both non-termination (discount) and
    # non-truncation (next step belongs to another episode).
    decay_t = discount_t * lambda_ * _not_truncated(truncated_t, discount_t)
    return _reverse_discounted_sum(delta_t, decay_t)


def gae(
        r_t: Array,
        discount_t: Array,
        values: Array,
        lambda_: Numeric,
) -> Array:
    """Generalised advantage estimation (Schulman et al. 2016, eq. 16).

    Â_t = δ_t + discount_t·λ_t·Â_{t+1}, δ_t = r_t + discount_t·V(s_{t+1}) − V(s_t).

    Args:
        r_t: rewards, [T].
        discount_t: γ·(1 − terminated_t), [T].
        values: [T+1]; values[:-1] = V(s_t), values[1:] = V(s_{t+1}).
        lambda_: trace parameter λ, scalar or [T].

    Returns:
        Advantages Â_t, [T].
    """
    chex.assert_rank([r_t, discount_t, values], 1)
    chex.assert_shape(values, (r_t.shape[0] + 1,))
    return gae_bootstrapped(
            r_t=r_t, discount_t=discount_t, v_tm1=values[:-1], v_t=values[1:],
            lambda_=lambda_)


def vtrace(
        v_tm1: Array,
        v_t: Array,
        r_t: Array,
        discount_t: Array,
        rho_tm1: Array,
        lambda_: Numeric = 1.0,
        clip_rho_threshold: float = 1.0,
        clip_pg_rho_threshold: float = 1.0,
        truncated_t: Optional[Array] = None,
        clip_c_threshold: float = 1.0,
) -> VTraceOutput:
    """V-trace value targets and policy-gradient advantages.

    Espeholt et al. 2018, "IMPALA", eq. 1 (v_s) and section 4.2 (pg advantage):
        ρ_t = min(ρ̄, rho_tm1),  c_t = λ_t·min(c̄, rho_tm1)·(1 − truncated_t),
        δ_t = ρ_t·(r_t + discount_t·v_t[t] − v_tm1[t]),
        (vs − v)_t = δ_t + discount_t·c_t·(vs − v)_{t+1},  (vs − v)_T = 0,
        vs_t = v_tm1[t] + (vs − v)_t,
        pg_t = min(ρ̄_pg, rho_tm1)·(r_t + discount_t·vs_{t+1} − v_tm1[t]),
    with vs_{t+1} = v_t[t] + (1 − truncated_t)·(vs − v)_{t+1}.

    Args:
        v_tm1: V(x_t), [T].
        v_t: V(x_{t+1}), [T] (value of the true final observation at truncations).
        r_t: rewards, [T].
        discount_t: γ·(1 − terminated_t), [T].
        rho_tm1: importance ratios π(a_t|x_t)/μ(a_t|x_t) (not logs), [T].
        lambda_: trace parameter λ, scalar or [T].
        clip_rho_threshold: ρ̄, clips the ratio in δ_t.
        clip_pg_rho_threshold: ρ̄_pg, clips the ratio in the pg advantage.
        truncated_t: optional bool/float [T]; 1 where the episode was cut by a
            time limit after step t.
        clip_c_threshold: c̄, clips the trace ratio (1.0 in the paper and rlax).

    Returns:
        VTraceOutput(vs [T], pg_advantages [T]), both under stop_gradient.
    """
    chex.assert_rank([v_tm1, v_t, r_t, discount_t, rho_tm1, lambda_],
                                      [1, 1, 1, 1, 1, {0, 1}])
    chex.assert_type([v_tm1, v_t, r_t, discount_t, rho_tm1], float)
    chex.assert_equal_shape([v_tm1, v_t, r_t, discount_t, rho_tm1])

    lambda_ = jnp.ones_like(discount_t) * lambda_  # Scalar -> [T].
    not_trunc_t = _not_truncated(truncated_t, discount_t)
    rho_clipped_t = jnp.minimum(clip_rho_threshold, rho_tm1)
    c_t = lambda_ * jnp.minimum(clip_c_threshold, rho_tm1) * not_trunc_t

    delta_t = rho_clipped_t * (r_t + discount_t * v_t - v_tm1)
    vs_minus_v_t = _reverse_discounted_sum(delta_t, discount_t * c_t)
    vs = v_tm1 + vs_minus_v_t

    # vs_{t+1} continues the correction only inside the same episode; after the
    # last step (and at truncations) it is just the bootstrap value v_t[t].
    next_correction_t = jnp.concatenate(
            [vs_minus_v_t[1:], jnp.zeros_like(vs_minus_v_t[:1])]) * not_trunc_t
    vs_tp1 = v_t + next_correction_t
    pg_rho_t = jnp.minimum(clip_pg_rho_threshold, rho_tm1)
    pg_advantages = pg_rho_t * (r_t + discount_t * vs_tp1 - v_tm1)

    # Targets carry no gradient.
    return VTraceOutput(
            vs=jax.lax.stop_gradient(vs),
            pg_advantages=jax.lax.stop_gradient(pg_advantages))
