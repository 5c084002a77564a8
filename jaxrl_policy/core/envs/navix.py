"""Navix → the env protocol of ``base.py`` (``navix:NAME`` ids; ``pip install "jaxrl-policy[navix]"``).

Shape legend: ``E`` envs, ``H, W`` grid size.

Names: Navix's registry (``Navix-Empty-5x5-v0``, ``Navix-DoorKey-5x5-v0``, ``Navix-FourRooms-v0``, …), built
by ``navix.make(name)``: Navix's default 100-step time limit and its default observation,
``observations.symbolic``, the fully observed ``[H, W, 3]`` grid of (object, colour, state) codes,
cast to float32 (an image: the CNN torso under ``torso = auto``; Navix's own PPO baseline flattens it
into an MLP, which the navix presets choose).

Semantics (Pignatelli et al. 2024, "NAVIX: Scaling MiniGrid Environments with JAX"): a Navix
``Timestep``'s ``step_type`` is 0 (transition), 1 (truncation: ``t >= max_steps``) or 2 (termination;
both at once count as a termination, ``terminations.check_truncation``), so ``terminated`` =
``step_type == 2`` and ``truncated`` = ``step_type == 1``. Navix resets dm_env style, on the step after
an episode ended, wasting that step's action; the adapter instead steps with Navix's ``_step`` (its
``step`` without the reset branch) and resets at once, from the key Navix's own reset would use
(``state.key``), so ``next_obs`` is the final observation and every step is a transition.
"""
from __future__ import annotations

import functools
from typing import Any

from jaxrl_policy.core.envs import suite
from jaxrl_policy.core.envs.base import EnvSpec, VecEnv

PREFIX = "navix:"
EXTRA = "navix"


def is_id(env_id: Any) -> bool:
    return isinstance(env_id, str) and env_id.startswith(PREFIX)


def _navix():
    try:
        import navix
    except ImportError:
        return None
    return navix


def registered_names() -> list[str]:
    nx = _navix()
    return [] if nx is None else sorted(nx.registry())


@functools.lru_cache(maxsize=None)
def make_env(name: str):
    """The Navix env of ``name`` (``navix.make``: its default time limit and symbolic observations)."""
    nx = _navix()
    if nx is None:
        raise ImportError(suite.install_hint(EXTRA))
    return nx.make(name)


def unknown_env_message(env_id: str) -> str | None:
    try:
        name = suite.parse_name(env_id, PREFIX)
    except ValueError as e:
        return str(e)
    if _navix() is None:
        return suite.install_hint(EXTRA)
    names = registered_names()
    if name not in names:
        return suite.unknown_name_message("Navix", PREFIX, name, names)
    try:
        env_spec(env_id)
    except Exception as e:  # any failure to build the env or read its observation is the id's, before compiling
        return f"Navix could not build {name!r}: {type(e).__name__}: {e}"
    return None


def suite_env(name: str) -> suite.SuiteEnv:
    env = make_env(name)

    def reset(key):
        ts = env.reset(key)
        return ts, ts.observation

    def step(key, ts, action):
        # `Environment.step` is `cond(step_type > 0, reset, _step)`: our envs never hold an ended timestep, and
        # under vmap that cond would compute a reset on every step
        ts = env._step(ts, action)
        return ts, ts.observation, ts.reward, ts.step_type == 2, ts.step_type == 1

    def reset_done(key, ts):
        fresh = env.reset(ts.state.key, ts.state.cache)  # as Navix's own step resets an ended timestep
        return fresh, fresh.observation

    return suite.SuiteEnv(reset=reset, step=step, reset_done=reset_done)


@functools.lru_cache(maxsize=None)
def env_spec(env_id: str) -> EnvSpec:
    name = suite.parse_name(env_id, PREFIX)
    env = make_env(name)
    shape, _ = suite.observation_form(suite.abstract_obs(suite_env(name).reset))
    return EnvSpec(env_id=env_id, obs_shape=shape, num_actions=int(len(env.action_set)),
                   max_episode_steps=int(env.max_steps))


def make_vec_env(env_id: str, num_envs: int) -> VecEnv:
    """Batched, auto-resetting env over ``num_envs`` copies of a ``navix:`` id."""
    name = suite.parse_name(env_id, PREFIX)
    env = suite_env(name)
    _, encode = suite.observation_form(suite.abstract_obs(env.reset))
    return suite.batched(env_spec(env_id), env, encode, num_envs)
