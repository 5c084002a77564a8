"""Observation wrappers that make an env partially observable, registered as env ids.

Shape legend: ``O`` the wrapped env's observation size, ``K`` the entries kept.

``CartPole-v1-NoVelocity`` keeps the cart position and pole angle and hides both velocities
(the classic POMDP variant of CartPole used for recurrent policies, e.g. Heess et al. 2015,
"Memory-based control with recurrent neural networks", and the privileged-teacher case of the
distillation experiments: the teacher sees all four entries, the student two). A feed-forward
policy cannot recover the velocities from one observation; a recurrent one can from two.

A wrapper is a gymnax-style environment (``reset``/``step``/spaces/``default_params``) around the
base env; ``info["final_observation"]`` is masked like the observation so the adapter's
bootstrapping sees what the agent sees.
"""
from __future__ import annotations

from typing import Any

import jax.numpy as jnp


class ObservationMask:
    """Keep only the observation entries ``keep`` (indices into the last axis)."""

    def __init__(self, env: Any, keep: tuple[int, ...]):
        self.env = env
        self.keep = jnp.asarray(keep, jnp.int32)
        self.num_kept = len(keep)

    @property
    def default_params(self):
        return self.env.default_params

    def _mask(self, obs):
        return jnp.take(obs, self.keep, axis=-1)

    def reset(self, key, params=None):
        obs, state = self.env.reset(key, params)
        return self._mask(obs), state

    def step(self, key, state, action, params=None):
        obs, state, reward, terminated, truncated, info = self.env.step(key, state, action, params)
        info = dict(info, final_observation=self._mask(info["final_observation"]))
        return self._mask(obs), state, reward, terminated, truncated, info

    def observation_space(self, params):
        from gymnax.environments import spaces

        space = self.env.observation_space(params)
        return spaces.Box(self._mask(jnp.asarray(space.low)), self._mask(jnp.asarray(space.high)),
                          (self.num_kept,), space.dtype)

    def action_space(self, params):
        return self.env.action_space(params)


# id -> (base gymnax id, wrapper factory)
WRAPPED: dict[str, tuple[str, Any]] = {
    "CartPole-v1-NoVelocity": ("CartPole-v1", lambda env: ObservationMask(env, (0, 2))),
}
