"""Policy-distillation losses: a student's action distribution matched to a frozen teacher's.

Shape legend:
    T: number of time steps (states) in the (unbatched) trajectory.
    A: number of discrete actions.

Every loss is a divergence between categorical distributions given as logits, averaged over the
states of one trajectory with optional weights ``w_t``; all are 0 where the student equals the
teacher, and the teacher's logits carry no gradient (the teacher is frozen). Which states the
divergence is measured on — the teacher's (off-policy), the student's own (on-policy) or a
mixture — is the caller's choice (``algorithms/distill.py``); the losses only see states.

- ``forward_kl_loss``: mean_t KL(π_T ‖ π_S) = cross-entropy H(π_T, π_S) − H(π_T), whose gradient
  is the cross-entropy's. Rusu et al. 2016, "Policy distillation", eq. 3 (KL with a temperature on
  the teacher's outputs); on teacher states it is behaviour cloning of the full action
  distribution; on the student's states it is DAgger with soft labels (Ross, Gordon & Bagnell 2011,
  "A reduction of imitation learning and structured prediction to no-regret online learning":
  aggregate the states the learner visits, label them with the expert, minimise a surrogate loss).
  Czarnecki et al. 2019, "Distilling policy distillation", Table 1 ("teacher distill": teacher
  states, forward KL; "on-policy distill": student states, forward KL) — the latter has the
  favourable properties of their §4 (its gradient field is that of a valid loss with no reward).
- ``reverse_kl_loss``: mean_t KL(π_S ‖ π_T), mode-seeking. Agarwal et al. 2024, "On-policy
  distillation of language models: learning from self-generated mistakes" (GKD), §3, with
  student-generated states; Czarnecki et al. 2019 discuss it as the entropy-regularised variant.
- ``jsd_loss``: GKD's generalised Jensen-Shannon divergence (Agarwal et al. 2024, eq. 1)
  JSD(β) = β KL(π_T ‖ M) + (1 − β) KL(π_S ‖ M), M = β π_T + (1 − β) π_S, which interpolates
  between the two KLs (→ forward KL / β as β → 0 up to scale, reverse as β → 1).
"""
from __future__ import annotations

from typing import Callable

import chex
import jax
import jax.numpy as jnp

from jaxrl_policy.core.losses.policy import categorical_kl

Array = jax.Array


def _check(student_logits_t, teacher_logits_t, w_t):
    chex.assert_rank([student_logits_t, teacher_logits_t], 2)
    chex.assert_type([student_logits_t, teacher_logits_t], float)
    chex.assert_equal_shape([student_logits_t, teacher_logits_t])
    T = student_logits_t.shape[0]
    if w_t is None:
        return jnp.ones((T,), student_logits_t.dtype)
    chex.assert_shape(w_t, (T,))
    return w_t


def _weighted_mean(x_t, w_t):
    return jnp.sum(w_t * x_t) / jnp.maximum(jnp.sum(w_t), 1e-8)


def forward_kl_loss(student_logits_t: Array, teacher_logits_t: Array, w_t: Array | None = None) -> Array:
    """mean_t w_t KL(π_T(·|s_t) ‖ π_S(·|s_t)) / mean_t w_t (Rusu et al. 2016, eq. 3; Ross et al. 2011).

    Args:
        student_logits_t: student logits, [T, A] (the gradient flows through them).
        teacher_logits_t: teacher logits (any temperature already applied), [T, A]; no gradient.
        w_t: optional state weights, [T] (default 1); a weighted mean, so a mask of 0/1 averages
            over the kept states.

    Returns:
        Scalar loss.
    """
    w_t = _check(student_logits_t, teacher_logits_t, w_t)
    kl_t = categorical_kl(jax.lax.stop_gradient(teacher_logits_t), student_logits_t)
    return _weighted_mean(kl_t, w_t)


def reverse_kl_loss(student_logits_t: Array, teacher_logits_t: Array, w_t: Array | None = None) -> Array:
    """mean_t w_t KL(π_S(·|s_t) ‖ π_T(·|s_t)) / mean_t w_t (Agarwal et al. 2024, GKD with β = 1).

    The exact sum over actions (not a sampled estimate), so its gradient has no variance.

    Args: as ``forward_kl_loss``.

    Returns:
        Scalar loss.
    """
    w_t = _check(student_logits_t, teacher_logits_t, w_t)
    kl_t = categorical_kl(student_logits_t, jax.lax.stop_gradient(teacher_logits_t))
    return _weighted_mean(kl_t, w_t)


def jsd_loss(student_logits_t: Array, teacher_logits_t: Array, beta: float | Array = 0.5,
             w_t: Array | None = None) -> Array:
    """GKD's generalised JSD(β) = β KL(π_T ‖ M) + (1 − β) KL(π_S ‖ M), M = β π_T + (1 − β) π_S
    (Agarwal et al. 2024, eq. 1), averaged over states with weights ``w_t``.

    Args:
        student_logits_t, teacher_logits_t, w_t: as ``forward_kl_loss``.
        beta: β in (0, 1).

    Returns:
        Scalar loss.
    """
    w_t = _check(student_logits_t, teacher_logits_t, w_t)
    log_s = jax.nn.log_softmax(student_logits_t, axis=-1)
    log_t = jax.nn.log_softmax(jax.lax.stop_gradient(teacher_logits_t), axis=-1)
    # log M = logsumexp(log β + log π_T, log(1 − β) + log π_S), per action
    log_m = jnp.logaddexp(jnp.log(beta) + log_t, jnp.log1p(-beta) + log_s)
    p_s, p_t = jnp.exp(log_s), jnp.exp(log_t)
    kl_tm = jnp.sum(jnp.where(p_t > 0, p_t * (log_t - log_m), 0.0), axis=-1)
    kl_sm = jnp.sum(jnp.where(p_s > 0, p_s * (log_s - log_m), 0.0), axis=-1)
    return _weighted_mean(beta * kl_tm + (1.0 - beta) * kl_sm, w_t)


DIVERGENCES: dict[str, Callable[..., Array]] = {"forward": forward_kl_loss, "reverse": reverse_kl_loss, "jsd": jsd_loss}
"""Name → loss, as ``DistillConfig.divergence`` names them."""
