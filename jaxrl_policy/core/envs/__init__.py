"""Environments behind one protocol (``base.py``): an id picks the adapter.

- gymnax ids (``CartPole-v1``, ``Breakout-MinAtar``, …, with env parameters after ``?``), the
  probe ids of the tests (``Probe-*``) and observation-wrapper ids (``CartPole-v1-NoVelocity``):
  ``gymnax.py``;
- ``brax:NAME[@BACKEND]``: ``brax.py`` (the brax package is imported only when such an id is used).

Everything above this floor asks for an env through these four functions.
"""
from __future__ import annotations

from jaxrl_policy.core.envs import brax as _brax
from jaxrl_policy.core.envs import gymnax as _gymnax
from jaxrl_policy.core.envs.base import EnvSpec, EnvState, StepOutput, VecEnv
from jaxrl_policy.core.envs.gymnax import make_gymnax, registered_env_ids, split_env_id


def unknown_env_message(env_id: str) -> str | None:
    """None if ``env_id`` is known, else a message suggesting the closest registered ids."""
    if _brax.is_brax_id(env_id):
        return _brax.unknown_env_message(env_id)
    return _gymnax.unknown_env_message(env_id)


def env_spec(env_id: str) -> EnvSpec:
    """Static facts of ``env_id``: observation shape, actions, time limit."""
    if _brax.is_brax_id(env_id):
        return _brax.env_spec(env_id)
    return _gymnax.env_spec(env_id)


def make_vec_env(env_id: str, num_envs: int) -> VecEnv:
    """``num_envs`` auto-resetting copies of ``env_id`` as one pure batched env."""
    if _brax.is_brax_id(env_id):
        return _brax.make_vec_env(env_id, num_envs)
    return _gymnax.make_vec_env(env_id, num_envs)


__all__ = ["EnvSpec", "EnvState", "StepOutput", "VecEnv", "env_spec", "make_vec_env", "unknown_env_message",
           "make_gymnax", "registered_env_ids", "split_env_id"]
