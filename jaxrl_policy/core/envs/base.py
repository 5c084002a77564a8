"""The env protocol every adapter implements: static facts (``EnvSpec``) and a pure batched env (``VecEnv``).

Shape legend: ``E`` envs, ``O...`` observation shape, ``D`` continuous action dimensions.

An adapter (``gymnax.py``, ``brax.py``) turns a suite's environment into ``VecEnv``: ``reset(key)`` and
``step(key, state, action)`` over E copies, auto-resetting, with ``terminated`` (the MDP ended:
bootstrap with 0) kept apart from ``truncated`` (a time limit cut it: bootstrap from V(final obs)),
the true next observation of every transition in ``next_obs``, float32 observations, and the return
and length of the episode in flight.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax


class EnvSpec(NamedTuple):
    """Static facts about an environment."""

    env_id: str
    obs_shape: tuple[int, ...]
    num_actions: int | None  # None for continuous action spaces
    max_episode_steps: int | None
    action_shape: tuple[int, ...] = ()  # continuous: (D,); discrete: ()
    action_low: tuple[float, ...] | None = None  # continuous: the Box bounds, [D]
    action_high: tuple[float, ...] | None = None


class EnvState(NamedTuple):
    """State of E environments. Fields are ``[E, ...]``."""

    inner: Any  # gymnax env state, batched over E
    obs: jax.Array  # [E, O...] observation the agent acts on (after auto-reset)
    episode_return: jax.Array  # [E] float32, undiscounted return of the episode in flight
    episode_length: jax.Array  # [E] int32


class StepOutput(NamedTuple):
    """What one batched step returns besides the new state. Fields are ``[E, ...]``."""

    next_obs: jax.Array  # [E, O...] true next observation (pre-reset where the episode ended)
    reward: jax.Array  # [E] float32
    terminated: jax.Array  # [E] bool: the MDP reached a terminal state
    truncated: jax.Array  # [E] bool: cut by a time limit (and not terminated)
    episode_return: jax.Array  # [E] float32: return of the episode that ended here, else 0
    episode_length: jax.Array  # [E] int32: length of the episode that ended here, else 0


class VecEnv(NamedTuple):
    """Pure batched environment: ``reset(key) -> EnvState``, ``step(key, state, action)``."""

    spec: EnvSpec
    reset: Callable[[jax.Array], EnvState]
    step: Callable[[jax.Array, EnvState, jax.Array], tuple[EnvState, StepOutput]]
