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

from types import SimpleNamespace
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


def observation_view(view_id: str, env_id: str):
    """``obs [..., O] -> obs [..., K]``: what an agent observing ``view_id`` sees of ``env_id``'s observation.

    ``view_id`` must be a masking wrapper (``ObservationMask``) of ``env_id``'s base env (its env
    parameters, if any, do not matter: the mask acts on the observation). Used by distillation: the env
    steps the full ``env_id``, the teacher sees its observation and the student the masked one.
    Raises ValueError naming the rule when the view does not apply.
    """
    base = env_id.partition("?")[0]
    base = WRAPPED[base][0] if base in WRAPPED else base
    if view_id not in WRAPPED:
        raise ValueError(f"must be an observation wrapper id ({', '.join(WRAPPED)})")
    wrapped_base, factory = WRAPPED[view_id]
    if wrapped_base != base:
        raise ValueError(f"wraps {wrapped_base}, not the env's {base}")
    if env_id.partition("?")[0] in WRAPPED:
        raise ValueError(f"the env {env_id} is already wrapped; step the full env ({base}) instead")
    mask = factory(SimpleNamespace())
    if not isinstance(mask, ObservationMask):
        raise ValueError("must mask observations (a deterministic view of the full observation)")
    return mask._mask


# id -> (base gymnax id, wrapper factory)
WRAPPED: dict[str, tuple[str, Any]] = {
    "CartPole-v1-NoVelocity": ("CartPole-v1", lambda env: ObservationMask(env, (0, 2))),
}
