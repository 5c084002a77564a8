"""Off-policy continuous-control losses: SAC (soft actor-critic) and TD3 (twin delayed DDPG).

Shape legend:
    B: transitions in a replay minibatch.
    D: action dimensions.
    ...: any leading batch shape.

Targets (``sac_critic_target``, ``td3_target``) are elementwise over transitions: each argument is
a scalar (one transition; batch with ``jax.vmap``) or ``[B]`` (a minibatch), all the same shape,
and the result is under stop_gradient. Losses (``sac_actor_loss``, ``sac_temperature_loss``,
``td3_actor_loss``) average over ``[B]`` and return a scalar to be *minimised*; vmap them over
seeds or ensembles. ``r_t`` and ``discount_t`` belong to the transition s -> s'; ``discount_t`` is
γ·(1 − terminated) (a time-limit truncation keeps γ: the target bootstraps from s'). Log-
probabilities of tanh-squashed actions come from ``jaxrl_policy.core.distributions.sample`` with
``squash="tanh"`` (change of variables with the stable log-Jacobian; Haarnoja et al. 2018b,
appendix C); this module does not import it, because ``distributions`` imports ``losses``.
"""
import chex
import jax
import jax.numpy as jnp

from jaxrl_policy.core.losses.returns import Numeric

Array = jax.Array  # inputs may be anything jnp.asarray takes


def sac_critic_target(
        r_t: Array,
        discount_t: Array,
        q1_t: Array,
        q2_t: Array,
        next_log_prob_t: Array,
        alpha: Numeric,
) -> Array:
    """Soft Bellman target with clipped double Q (SAC).

    Haarnoja et al. 2018b, "Soft Actor-Critic Algorithms and Applications" (arXiv:1812.05905),
    eqs. 3 and 5–6, with the minimum of two target critics (§6, after Fujimoto et al. 2018):
        y = r_t + discount_t·(min(Q1'(s', a'), Q2'(s', a')) − α·log π(a'|s')),  a' ~ π(·|s').

    Args:
        r_t: rewards, scalar or [B].
        discount_t: γ·(1 − terminated), same shape.
        q1_t: first target critic at (s', a'), same shape.
        q2_t: second target critic at (s', a'), same shape.
        next_log_prob_t: log π(a'|s') of the action sampled at s', same shape.
        alpha: temperature α, scalar.

    Returns:
        Targets y, same shape as r_t, under stop_gradient.
    """
    chex.assert_rank([r_t, discount_t, q1_t, q2_t, next_log_prob_t, alpha], [{0, 1}, {0, 1}, {0, 1}, {0, 1}, {0, 1}, 0])
    chex.assert_type([r_t, discount_t, q1_t, q2_t, next_log_prob_t], float)
    chex.assert_equal_shape([r_t, discount_t, q1_t, q2_t, next_log_prob_t])
    soft_v_t = jnp.minimum(q1_t, q2_t) - alpha * next_log_prob_t  # eq. 3: V(s') = E[Q(s', a') − α log π(a'|s')]
    target = r_t + discount_t * soft_v_t  # eq. 5: r + γ V(s')
    return jax.lax.stop_gradient(target)  # Targets carry no gradient.


def sac_actor_loss(q1: Array, q2: Array, log_prob: Array, alpha: Numeric) -> Array:
    """Reparameterised SAC policy loss.

    Haarnoja et al. 2018b, eq. 7 with the reparameterisation ã = f_φ(ε; s) of §4.2:
        J_π = mean_B(α·log π(ã|s) − min(Q1(s, ã), Q2(s, ã))).
    The gradient reaches the policy through ã (inside q1, q2 and log_prob); α is held fixed (its
    own loss is ``sac_temperature_loss``).

    Args:
        q1: first critic at (s, ã), [B].
        q2: second critic at (s, ã), [B].
        log_prob: log π(ã|s) of the reparameterised sample ã, [B].
        alpha: temperature α, scalar (stop_gradient applied).

    Returns:
        Scalar loss.
    """
    chex.assert_rank([q1, q2, log_prob, alpha], [1, 1, 1, 0])
    chex.assert_type([q1, q2, log_prob], float)
    chex.assert_equal_shape([q1, q2, log_prob])
    alpha = jax.lax.stop_gradient(alpha)
    return jnp.mean(alpha * log_prob - jnp.minimum(q1, q2))  # eq. 7


def sac_temperature_loss(log_alpha: Array, log_prob: Array, target_entropy: Numeric) -> Array:
    """Automatic entropy adjustment: the temperature's loss, parameterised by log α.

    Haarnoja et al. 2018b, eqs. 17–18, J(α) = E_{a~π}[−α·log π(a|s) − α·H̄], written in log α as
    the authors' softlearning code does:
        J = −mean_B(log α · sg(log π(a|s) + H̄)).
    Its gradient, −mean(log π + H̄), raises α while the policy's entropy −log π is below the target
    H̄ and lowers it above. The log-probabilities carry no gradient: this loss trains α only.
    (CleanRL and rejax use α = exp(log α) in place of log α: same sign and fixed point, gradient
    scaled by α.)

    Args:
        log_alpha: log α, scalar (the trained parameter).
        log_prob: log π(a|s) of actions sampled from the current policy, [B].
        target_entropy: H̄, scalar (commonly −D).

    Returns:
        Scalar loss.
    """
    chex.assert_rank([log_alpha, log_prob, target_entropy], [0, 1, 0])
    chex.assert_type([log_alpha, log_prob], float)
    entropy_gap = jax.lax.stop_gradient(log_prob + target_entropy)
    return -jnp.mean(log_alpha * entropy_gap)  # eq. 18


def td3_target(r_t: Array, discount_t: Array, q1_t: Array, q2_t: Array) -> Array:
    """Clipped double-Q target (TD3).

    Fujimoto et al. 2018, "Addressing Function Approximation Error in Actor-Critic Methods",
    eq. 10 / Alg. 1 (with target-policy smoothing, eq. 15):
        y = r_t + discount_t·min(Q1'(s', ã'), Q2'(s', ã')),
    ã' the smoothed target action (``smoothed_target_action``).

    Args:
        r_t: rewards, scalar or [B].
        discount_t: γ·(1 − terminated), same shape.
        q1_t: first target critic at (s', ã'), same shape.
        q2_t: second target critic at (s', ã'), same shape.

    Returns:
        Targets y, same shape as r_t, under stop_gradient.
    """
    chex.assert_rank([r_t, discount_t, q1_t, q2_t], {0, 1})
    chex.assert_type([r_t, discount_t, q1_t, q2_t], float)
    chex.assert_equal_shape([r_t, discount_t, q1_t, q2_t])
    target = r_t + discount_t * jnp.minimum(q1_t, q2_t)  # eq. 10: the smaller of the twin critics
    return jax.lax.stop_gradient(target)  # Targets carry no gradient.


def smoothed_target_action(
        key: Array,
        mu_t: Array,
        noise_std: Numeric,
        noise_clip: Numeric,
        low: Array,
        high: Array,
) -> Array:
    """Target-policy smoothing: the target action with clipped Gaussian noise (TD3).

    Fujimoto et al. 2018, eq. 15 / Alg. 1: ã' = clip(μ'(s') + clip(ε, −c, c), low, high), ε ~ N(0, σ²).
    σ and c are in units of the half-range h = (high − low)/2 (ε = h·clip(σ·z, −c, c), z ~ N(0, 1)),
    as CleanRL (× action_scale) and the authors' code (× max_action) scale them: the paper's
    σ = 0.2, c = 0.5 for actions in [−1, 1] then carry over to any bounds.

    Args:
        key: PRNG key, used once (one noise draw for all of mu_t).
        mu_t: target-policy actions μ'(s'), [..., D] (any shape the bounds broadcast against),
            within [low, high].
        noise_std: σ, scalar, in units of the half-range.
        noise_clip: c, scalar, in units of the half-range.
        low: lower action bounds, scalar or [D].
        high: upper action bounds, scalar or [D].

    Returns:
        Smoothed actions ã', [..., D], within [low, high]; no gradient (a target).
    """
    chex.assert_rank([noise_std, noise_clip], 0)
    chex.assert_type(mu_t, float)
    low, high = jnp.asarray(low, mu_t.dtype), jnp.asarray(high, mu_t.dtype)
    chex.assert_rank([low, high], {0, 1})  # broadcast against mu_t's last axis
    half_range = (high - low) / 2.0
    z = jax.random.normal(key, mu_t.shape, mu_t.dtype)
    noise = jnp.clip(noise_std * z, -noise_clip, noise_clip) * half_range  # eq. 15: ε ~ clip(N(0, σ²), −c, c)
    return jax.lax.stop_gradient(jnp.clip(mu_t + noise, low, high))


def td3_actor_loss(q1: Array) -> Array:
    """Deterministic policy-gradient loss of TD3 (and DDPG).

    Fujimoto et al. 2018, Alg. 1 (Silver et al. 2014, DPG): ∇_φ J = mean_B ∇_a Q1(s, a)|_{a=μ_φ(s)} ∇_φ μ_φ(s),
    the gradient of J = −mean_B Q1(s, μ_φ(s)); only the first critic is used.

    Args:
        q1: first critic at (s, μ(s)), [B].

    Returns:
        Scalar loss.
    """
    chex.assert_rank(q1, 1)
    chex.assert_type(q1, float)
    return -jnp.mean(q1)
