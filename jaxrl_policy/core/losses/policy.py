"""Policy losses and categorical-distribution helpers.

Shape legend:
    T: number of time steps in the (unbatched) trajectory.
    A: number of discrete actions.
    ...: any leading batch shape.

Losses return scalars to be *minimised*; batch over trajectories with
``jax.vmap``.
"""
import chex
import jax
import jax.numpy as jnp

Array = jax.Array  # inputs may be anything jnp.asarray takes


def categorical_entropy(logits: Array) -> Array:
    """Entropy H(p) = −Σ_a p_a·log p_a of softmax(logits).

    Uses log_softmax for stability; terms with p_a = 0 contribute 0 (and a 0
    gradient) rather than 0·(−inf) = nan.

    Args:
        logits: unnormalised log-probabilities, [..., A].

    Returns:
        Entropies, [...].
    """
    chex.assert_type(logits, float)
    logp = jax.nn.log_softmax(logits, axis=-1)
    p = jnp.exp(logp)
    safe_logp = jnp.where(p > 0, logp, 0.0)
    return -jnp.sum(p * safe_logp, axis=-1)


def categorical_kl(p_logits: Array, q_logits: Array) -> Array:
    """KL(p‖q) = Σ_a p_a·(log p_a − log q_a) for categorical distributions.

    Args:
        p_logits: logits of p, [..., A].
        q_logits: logits of q, [..., A].

    Returns:
        KL divergences, [...].
    """
    chex.assert_type([p_logits, q_logits], float)
    chex.assert_equal_shape([p_logits, q_logits])
    logp = jax.nn.log_softmax(p_logits, axis=-1)
    logq = jax.nn.log_softmax(q_logits, axis=-1)
    p = jnp.exp(logp)
    # Actions with p_a = 0 contribute nothing, even where q_a = 0 too.
    return jnp.sum(jnp.where(p > 0, p * (logp - logq), 0.0), axis=-1)


def categorical_log_prob(logits: Array, action: Array) -> Array:
    """log π(a) of softmax(logits) at the taken actions.

    Args:
        logits: unnormalised log-probabilities, [..., A].
        action: integer actions, [...].

    Returns:
        Log-probabilities, [...].
    """
    chex.assert_type([logits, action], [float, int])
    chex.assert_equal_shape_prefix([logits, action], action.ndim)
    logp = jax.nn.log_softmax(logits, axis=-1)
    return jnp.take_along_axis(logp, action[..., None], axis=-1)[..., 0]


def policy_gradient_loss(logits_t: Array, a_t: Array, adv_t: Array, w_t: Array | None = None) -> Array:
    """Policy-gradient (REINFORCE / actor-critic) loss with the advantage held fixed.

    Williams 1992; Mnih et al. 2016 (A3C, the actor's term); as rlax.policy_gradient_loss:
        L = −mean_t w_t · sg(Â_t) · log π(a_t|s_t),
    whose gradient is −mean_t w_t Â_t ∇ log π(a_t|s_t). The advantage carries no gradient.

    Args:
        logits_t: policy logits, [T, A].
        a_t: actions taken, int [T].
        adv_t: advantages Â_t, [T].
        w_t: optional per-step weights, [T] (default 1).

    Returns:
        Scalar loss.
    """
    chex.assert_rank([logits_t, a_t, adv_t], [2, 1, 1])
    chex.assert_type([logits_t, a_t, adv_t], [float, int, float])
    chex.assert_equal_shape([a_t, adv_t])
    logp_t = categorical_log_prob(logits_t, a_t)
    w_t = jnp.ones_like(adv_t) if w_t is None else w_t
    return -jnp.mean(w_t * jax.lax.stop_gradient(adv_t) * logp_t)


def ppo_clip_loss(ratio_t: Array, adv_t: Array, epsilon: float) -> Array:
    """Negated PPO clipped surrogate objective (Schulman et al. 2017, eq. 7).

    L = −mean_t min(r_t·Â_t, clip(r_t, 1 − ε, 1 + ε)·Â_t).

    Args:
        ratio_t: probability ratios π_θ(a_t|s_t)/π_θ_old(a_t|s_t), [T].
        adv_t: advantages Â_t, [T].
        epsilon: clip range ε, scalar.

    Returns:
        Scalar loss.
    """
    chex.assert_rank([ratio_t, adv_t], 1)
    chex.assert_type([ratio_t, adv_t], float)
    chex.assert_equal_shape([ratio_t, adv_t])
    clipped_ratio_t = jnp.clip(ratio_t, 1.0 - epsilon, 1.0 + epsilon)
    surrogate_t = jnp.minimum(ratio_t * adv_t, clipped_ratio_t * adv_t)
    return -jnp.mean(surrogate_t)


def entropy_loss(logits_t: Array) -> Array:
    """Negative mean policy entropy (Mnih et al. 2016, A3C entropy bonus).

    Adding coef·entropy_loss to a minimised loss maximises entropy.

    Args:
        logits_t: policy logits, [T, A].

    Returns:
        Scalar loss −mean_t H(π(·|s_t)).
    """
    chex.assert_rank(logits_t, 2)
    chex.assert_type(logits_t, float)
    return -jnp.mean(categorical_entropy(logits_t))
