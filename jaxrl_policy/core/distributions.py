"""Action distributions of a policy head: categorical (discrete) and diagonal Gaussian (continuous).

Shape legend: ``B...`` batch dims, ``A`` discrete actions, ``D`` action dimensions.

A policy head outputs *policy parameters*: logits ``[B..., A]`` for a discrete action space, or a
``Gaussian(mean [B..., D], log_std [B..., D])`` for a continuous one. The functions below turn them
into samples, log-probabilities, entropies and modes, so the algorithms never branch on the kind of
action space beyond calling them. Continuous actions reach the env within its bounds in one of two
ways (``action_squash``):

- ``clip`` (default; purejaxrl, rejax, CleanRL): the sample ``u ~ N(μ, σ²)`` is stored and its
  Gaussian log-probability is the policy's; the env adapter clips ``u`` to ``[low, high]`` when it
  steps. The log-probability is that of the stored (unclipped) action, so ratios stay exact.
- ``tanh`` (SAC, brax.training): ``a = low + (tanh(u) + 1) (high − low) / 2`` is stored and
  ``log π(a) = log N(u; μ, σ²) − Σ_d log(∂a_d/∂u_d)`` (change of variables, Haarnoja et al. 2018,
  appendix C), with ``u = atanh(·)`` recovered from ``a`` (clipped 1e-6 inside ±1 for stability).
  Its entropy has no closed form; the Gaussian's entropy (before the squash) is used as the bonus,
  as brax.training does.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxrl_policy.core.losses import categorical_entropy, categorical_log_prob

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0  # keeps σ in a range where log-probabilities stay finite


class Gaussian(NamedTuple):
    """Diagonal Gaussian policy parameters."""

    mean: jax.Array  # [B..., D]
    log_std: jax.Array  # [B..., D]


class ActionSpace(NamedTuple):
    """What the distribution functions need to know about the env's action space (static)."""

    num_actions: int | None  # discrete: A; continuous: None
    low: Any = None  # continuous: [D] bounds (numpy)
    high: Any = None
    squash: str = "clip"  # continuous: "clip" | "tanh"


def _gaussian_log_prob(u, dist: Gaussian):
    log_std = jnp.clip(dist.log_std, LOG_STD_MIN, LOG_STD_MAX)
    z = (u - dist.mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * jnp.square(z) - log_std - 0.5 * math.log(2 * math.pi), -1)


def _squash(u, space: ActionSpace):
    low, high = jnp.asarray(space.low, u.dtype), jnp.asarray(space.high, u.dtype)
    return low + (jnp.tanh(u) + 1.0) * (high - low) / 2.0


def _unsquash(a, space: ActionSpace):
    low, high = jnp.asarray(space.low, a.dtype), jnp.asarray(space.high, a.dtype)
    y = jnp.clip(2.0 * (a - low) / (high - low) - 1.0, -1.0 + 1e-6, 1.0 - 1e-6)
    return jnp.arctanh(y)


def _log_det_squash(u, space: ActionSpace):
    """Σ_d log ∂a_d/∂u_d with a = low + (tanh u + 1)(high − low)/2: log((high−low)/2) + log(1 − tanh² u)."""
    half_range = (jnp.asarray(space.high, u.dtype) - jnp.asarray(space.low, u.dtype)) / 2.0
    # log(1 − tanh² u) = 2 (log 2 − u − softplus(−2u)), the stable form
    return jnp.sum(jnp.log(half_range) + 2.0 * (math.log(2.0) - u - jax.nn.softplus(-2.0 * u)), -1)


def sample(key: jax.Array, params, space: ActionSpace) -> tuple[jax.Array, jax.Array]:
    """A sampled action ``[B...]`` (discrete) or ``[B..., D]`` and its log-probability ``[B...]``."""
    if space.num_actions is not None:
        action = jax.random.categorical(key, params)
        return action, categorical_log_prob(params, action)
    log_std = jnp.clip(params.log_std, LOG_STD_MIN, LOG_STD_MAX)
    u = params.mean + jnp.exp(log_std) * jax.random.normal(key, params.mean.shape, params.mean.dtype)
    logp = _gaussian_log_prob(u, params)
    if space.squash == "tanh":
        return _squash(u, space), logp - _log_det_squash(u, space)
    return u, logp


def log_prob(params, action: jax.Array, space: ActionSpace) -> jax.Array:
    """log π(action) ``[B...]`` under the policy parameters (for stored actions)."""
    if space.num_actions is not None:
        return categorical_log_prob(params, action)
    if space.squash == "tanh":
        u = _unsquash(action, space)
        return _gaussian_log_prob(u, params) - _log_det_squash(u, space)
    return _gaussian_log_prob(action, params)


def entropy(params, space: ActionSpace) -> jax.Array:
    """Entropy ``[B...]`` (the pre-squash Gaussian's for ``tanh``: see the module docstring)."""
    if space.num_actions is not None:
        return categorical_entropy(params)
    log_std = jnp.clip(params.log_std, LOG_STD_MIN, LOG_STD_MAX)
    return jnp.sum(log_std + 0.5 * (1.0 + math.log(2 * math.pi)), -1)


def mode(params, space: ActionSpace) -> jax.Array:
    """The deterministic action: argmax of the logits, or the Gaussian's mean (squashed for ``tanh``)."""
    if space.num_actions is not None:
        return jnp.argmax(params, -1)
    if space.squash == "tanh":
        return _squash(params.mean, space)
    return params.mean
