"""Environments behind one protocol (``base.py``): an id picks the adapter.

- gymnax ids (``CartPole-v1``, ``Breakout-MinAtar``, …, with env parameters after ``?``), the
  probe ids of the tests (``Probe-*``) and observation-wrapper ids (``CartPole-v1-NoVelocity``):
  ``gymnax.py``;
- ``brax:NAME[@BACKEND]``: ``brax.py``;
- ``craftax:NAME``, ``xminigrid:NAME``, ``navix:NAME``, ``jumanji:NAME``: ``craftax.py``, ``xminigrid.py``,
  ``navix.py``, ``jumanji.py`` (what they share: ``suite.py``).

Each optional suite (an extra of the package: ``pip install "jaxrl-policy[craftax]"``) is imported only
when one of its ids is used. An id with another ``PREFIX:`` is refused, naming the known prefixes.

Everything above this floor asks for an env through these four functions.
"""
from __future__ import annotations

from typing import Any

from jaxrl_policy.core.envs import brax as _brax
from jaxrl_policy.core.envs import craftax as _craftax
from jaxrl_policy.core.envs import gymnax as _gymnax
from jaxrl_policy.core.envs import jumanji as _jumanji
from jaxrl_policy.core.envs import navix as _navix
from jaxrl_policy.core.envs import xminigrid as _xminigrid
from jaxrl_policy.core.envs.base import EnvSpec, EnvState, StepOutput, VecEnv
from jaxrl_policy.core.envs.gymnax import make_gymnax, registered_env_ids, split_env_id

# id prefix -> adapter module (each with unknown_env_message, env_spec, make_vec_env)
SUITES: dict[str, Any] = {_brax.PREFIX: _brax, _craftax.PREFIX: _craftax, _xminigrid.PREFIX: _xminigrid,
                          _navix.PREFIX: _navix, _jumanji.PREFIX: _jumanji}


# the optional JAX suites (extras of the package), as id prefixes
SUITE_PREFIXES = (_craftax.PREFIX, _xminigrid.PREFIX, _navix.PREFIX, _jumanji.PREFIX)


def _adapter(env_id: str):
    for prefix, module in SUITES.items():
        if env_id.startswith(prefix):
            return module
    return _gymnax


def _unknown_prefix(env_id: str) -> str | None:
    """A message for ``OTHER:NAME`` (no gymnax id holds a colon), else None."""
    prefix, sep, _ = env_id.partition(":")
    if sep and "?" not in prefix and prefix + sep not in SUITES:
        return f"unknown env suite {prefix + sep!r}; known: {', '.join(SUITES)} (and gymnax ids without a prefix)"
    return None


def unknown_env_message(env_id: str) -> str | None:
    """None if ``env_id`` is known, else a message suggesting the closest registered ids."""
    return _unknown_prefix(env_id) or _adapter(env_id).unknown_env_message(env_id)


def env_spec(env_id: str) -> EnvSpec:
    """Static facts of ``env_id``: observation shape, actions, time limit."""
    return _adapter(env_id).env_spec(env_id)


def make_vec_env(env_id: str, num_envs: int) -> VecEnv:
    """``num_envs`` auto-resetting copies of ``env_id`` as one pure batched env."""
    return _adapter(env_id).make_vec_env(env_id, num_envs)


__all__ = ["EnvSpec", "EnvState", "StepOutput", "VecEnv", "env_spec", "make_vec_env", "unknown_env_message",
           "make_gymnax", "registered_env_ids", "split_env_id", "SUITES", "SUITE_PREFIXES"]
