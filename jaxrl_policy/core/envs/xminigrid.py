"""XLand-MiniGrid → the env protocol of ``base.py`` (``xminigrid:NAME`` ids; ``pip install "jaxrl-policy[xminigrid]"``).

Shape legend: ``E`` envs, ``V`` view size (7), ``H, W`` grid size.

Names: xminigrid's ``MiniGrid-*`` registry (``MiniGrid-Empty-5x5``, ``MiniGrid-DoorKey-8x8``,
``MiniGrid-FourRooms``, …) with its default ``EnvParams`` (each env's own ``max_steps``). The
``XLand-MiniGrid-*`` ids are refused: their task (a ruleset) comes from a benchmark file that
``xminigrid.load_benchmark`` downloads, and without one the goal can never be reached.

Observations: xminigrid's egocentric ``[V, V, 2]`` grid of (tile, colour) codes, cast to float32 and
kept as an image (the CNN torso under ``torso = auto``).

Semantics (Nikulin et al. 2024, "XLand-MiniGrid"): xminigrid's ``TimeStep`` is dm_env's: ``step_type``
LAST ends an episode and ``discount`` is 0 only when the goal was reached; the time limit sets LAST
with discount 1 (``step_num == max_steps``). So ``terminated`` = LAST ∧ discount = 0, ``truncated`` =
LAST ∧ discount ≠ 0. Auto-reset is ours, from the key xminigrid's ``GymAutoResetWrapper`` uses
(``split(state.key)[0]``), so the adapter replays that wrapper's episodes exactly; ``next_obs`` is the
observation before the reset, which the wrapper does not keep.
"""
from __future__ import annotations

import functools
from typing import Any

import jax

from jaxrl_policy.core.envs import suite
from jaxrl_policy.core.envs.base import EnvSpec, VecEnv

PREFIX = "xminigrid:"
EXTRA = "xminigrid"
XLAND_REASON = ("XLand-MiniGrid envs take their task (a ruleset) from a benchmark that xminigrid.load_benchmark "
                "downloads; this adapter runs xminigrid's MiniGrid-* envs")


def is_id(env_id: Any) -> bool:
    return isinstance(env_id, str) and env_id.startswith(PREFIX)


def _xminigrid():
    try:
        import xminigrid
    except ImportError:
        return None
    return xminigrid


def registered_names() -> list[str]:
    """xminigrid's MiniGrid-* names (empty without xminigrid)."""
    xm = _xminigrid()
    return [] if xm is None else [n for n in xm.registered_environments() if n.startswith("MiniGrid-")]


@functools.lru_cache(maxsize=None)
def make_env(name: str):
    """``(env, params)`` from ``xminigrid.make(name)``."""
    xm = _xminigrid()
    if xm is None:
        raise ImportError(suite.install_hint(EXTRA))
    return xm.make(name)


def unknown_env_message(env_id: str) -> str | None:
    try:
        name = suite.parse_name(env_id, PREFIX)
    except ValueError as e:
        return str(e)
    xm = _xminigrid()
    if xm is None:
        return suite.install_hint(EXTRA)
    if name.startswith("XLand-MiniGrid") and name in xm.registered_environments():
        return XLAND_REASON
    names = registered_names()
    if name not in names:
        return suite.unknown_name_message("xminigrid", PREFIX, name, names)
    try:
        env_spec(env_id)
    except Exception as e:  # any failure to build the env or read its observation is the id's, before compiling
        return f"xminigrid could not build {name!r}: {type(e).__name__}: {e}"
    return None


def suite_env(name: str) -> suite.SuiteEnv:
    env, params = make_env(name)

    def reset(key):
        ts = env.reset(params, key)
        return ts, ts.observation

    def step(key, ts, action):
        ts = env.step(params, ts, action)
        done = ts.last()
        terminated = done & (ts.discount == 0)  # the goal; the time limit keeps discount 1
        return ts, ts.observation, ts.reward, terminated, done & ~terminated

    def reset_done(key, ts):
        k, _ = jax.random.split(ts.state.key)  # GymAutoResetWrapper's reset key
        fresh = env.reset(params, k)
        return fresh, fresh.observation

    return suite.SuiteEnv(reset=reset, step=step, reset_done=reset_done)


@functools.lru_cache(maxsize=None)
def env_spec(env_id: str) -> EnvSpec:
    name = suite.parse_name(env_id, PREFIX)
    env, params = make_env(name)
    shape, _ = suite.observation_form(suite.abstract_obs(suite_env(name).reset))
    return EnvSpec(env_id=env_id, obs_shape=shape, num_actions=int(env.num_actions(params)),
                   max_episode_steps=int(params.max_steps))


def make_vec_env(env_id: str, num_envs: int) -> VecEnv:
    """Batched, auto-resetting env over ``num_envs`` copies of an ``xminigrid:`` id."""
    name = suite.parse_name(env_id, PREFIX)
    env = suite_env(name)
    _, encode = suite.observation_form(suite.abstract_obs(env.reset))
    return suite.batched(env_spec(env_id), env, encode, num_envs)
