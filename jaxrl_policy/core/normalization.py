"""Running observation statistics kept in the agent state (``normalize_observations``).

Shape legend: ``N`` observations in a batch, ``O...`` observation shape.

Mean and variance are merged batch by batch with the parallel form of Welford's algorithm (Chan,
Golub & LeVeque 1979): for counts n_a, n_b, means μ_a, μ_b and sums of squared deviations M_a, M_b,
δ = μ_b − μ_a, n = n_a + n_b, μ = μ_a + δ n_b / n, M = M_a + M_b + δ² n_a n_b / n. The algorithm's
``observe`` merges each new unroll's observations before learning (as brax.training updates its
normaliser before the gradient steps); acting and learning both normalise with the statistics in the
agent state: ``clip((obs − μ) / √(σ² + ε), ±10)``.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

CLIP = 10.0
EPS = 1e-8


class RunningStats(NamedTuple):
    n: jax.Array  # float32 scalar: observations merged so far (float: no overflow at 2^31)
    mean: jax.Array  # [O...]
    m2: jax.Array  # [O...] sum of squared deviations from the mean


def init_stats(obs_shape: tuple[int, ...]) -> RunningStats:
    return RunningStats(n=jnp.zeros((), jnp.float32), mean=jnp.zeros(obs_shape, jnp.float32),
                        m2=jnp.zeros(obs_shape, jnp.float32))


def update(stats: RunningStats, obs: jax.Array) -> RunningStats:
    """Merge a batch ``[..., O...]`` (any leading dims) into the statistics."""
    x = obs.reshape(-1, *stats.mean.shape).astype(jnp.float32)
    n_b = jnp.float32(x.shape[0])
    mean_b = x.mean(0)
    m2_b = jnp.square(x - mean_b).sum(0)
    n = stats.n + n_b
    delta = mean_b - stats.mean
    mean = stats.mean + delta * n_b / n
    m2 = stats.m2 + m2_b + jnp.square(delta) * stats.n * n_b / n
    return RunningStats(n=n, mean=mean, m2=m2)


def variance(stats: RunningStats) -> jax.Array:
    return jnp.where(stats.n > 0, stats.m2 / jnp.maximum(stats.n, 1.0), 1.0)


def normalize(stats: RunningStats | None, obs: jax.Array) -> jax.Array:
    """``obs`` standardised by the statistics (unchanged when there are none)."""
    if stats is None:
        return obs
    return jnp.clip((obs - stats.mean) / jnp.sqrt(variance(stats) + EPS), -CLIP, CLIP)
