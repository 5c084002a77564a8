"""Craftax → the env protocol of ``base.py`` (``craftax:NAME`` ids; ``pip install "jaxrl-policy[craftax]"``).

Shape legend: ``E`` envs, ``R`` reset slots, ``N`` symbolic observation size.

Names: ``Craftax-Classic-Symbolic-v1`` (``[1345]``, 17 actions), ``Craftax-Classic-Pixels-v1`` (``[63, 63,
3]``: the CNN torso), ``Craftax-Symbolic-v1`` (``[8268]``, 43 actions) and ``Craftax-Pixels-v1`` (``[130,
110, 3]``), with Craftax's default ``EnvParams`` (Classic: 10 000 steps per episode, full: 100 000).

Semantics (Matthews et al. 2024, "Craftax: A Lightning-Fast Benchmark for Open-Ended RL"):

- Craftax reports one ``done`` for the time limit and for death (and, in full Craftax, for beating the
  final boss), and its ``discount`` is 0 for all of them. The adapter asks Craftax's own ``is_terminal``
  again with the time limit lifted: ``terminated`` = that (dead, lava, boss), ``truncated`` = ``done``
  and not that (``state.timestep >= max_timesteps``).
- Auto-reset is ours on Craftax's no-auto-reset env, with the key Craftax's own auto-reset env uses
  (``key_step, key_reset = split(key)``), so an env's fresh world is the one Craftax would give it.
- A reset is world generation, ~30 steps' worth of compute on CPU; Craftax's own auto-reset env pays
  it on every step of every env. The adapter generates ``R = max(1, E // 16)`` worlds per step (only
  when some env ended), as Craftax's PPO baseline does (``OptimisticResetVecEnvWrapper``, reset ratio
  16, Craftax_Baselines/ppo.py): each of the first R envs that end in one step gets its own world;
  more than R ending in the same step start from copies of those (``suite.batched``).

Craftax is imported only when a ``craftax:`` id is used (its import takes seconds and its pixel
renderer prints to stdout, which the adapter keeps off the CLI's stdout).
"""
from __future__ import annotations

import contextlib
import functools
import io
from typing import Any

import jax
import numpy as np

from jaxrl_policy.core.envs import suite
from jaxrl_policy.core.envs.base import EnvSpec, VecEnv

PREFIX = "craftax:"
EXTRA = "craftax"
NAMES = ("Craftax-Classic-Symbolic-v1", "Craftax-Classic-Pixels-v1", "Craftax-Symbolic-v1", "Craftax-Pixels-v1")
RESET_RATIO = 16  # envs per fresh world each step: Craftax_Baselines' OPTIMISTIC_RESET_RATIO default
NO_LIMIT = int(np.iinfo(np.int32).max)  # max_timesteps when asking whether a state is terminal without the limit


def is_id(env_id: Any) -> bool:
    return isinstance(env_id, str) and env_id.startswith(PREFIX)


def _craftax_env():
    """``craftax.craftax_env``, or None when craftax cannot be imported."""
    try:
        from craftax import craftax_env
    except ImportError:
        return None
    return craftax_env


@functools.lru_cache(maxsize=None)
def make_env(name: str, auto_reset: bool = False):
    """``(env, params)``: Craftax's env of ``name`` (its no-auto-reset class unless ``auto_reset``), default params."""
    mod = _craftax_env()
    if mod is None:
        raise ImportError(suite.install_hint(EXTRA))
    with contextlib.redirect_stdout(io.StringIO()):  # "Loading Craftax textures …"
        env = mod.make_craftax_env_from_name(name, auto_reset=auto_reset)
    return env, env.default_params


def unknown_env_message(env_id: str) -> str | None:
    try:
        name = suite.parse_name(env_id, PREFIX)
    except ValueError as e:
        return str(e)
    if _craftax_env() is None:
        return suite.install_hint(EXTRA)
    if name not in NAMES:
        return suite.unknown_name_message("Craftax", PREFIX, name, list(NAMES))
    try:
        env_spec(env_id)
    except Exception as e:  # any failure to build the env or read its observation is the id's, before compiling
        return f"Craftax could not build {name!r}: {type(e).__name__}: {e}"
    return None


def suite_env(name: str, max_timesteps: int | None = None) -> suite.SuiteEnv:
    """Craftax's ``name`` as a ``SuiteEnv`` (``max_timesteps``: another time limit than Craftax's, for tests)."""
    env, params = make_env(name)
    if max_timesteps is not None:
        params = params.replace(max_timesteps=max_timesteps)
    no_limit = params.replace(max_timesteps=NO_LIMIT)

    def reset(key):
        obs, state = env.reset_env(key, params)
        return state, obs

    def step(key, state, action):
        k_step, _ = jax.random.split(key)
        obs, state, reward, done, _info = env.step_env(k_step, state, action, params)
        terminated = env.is_terminal(state, no_limit)  # dead, in lava, boss beaten: not the time limit
        return state, obs, reward, terminated, done & ~terminated

    def reset_done(key, _state):
        _, k_reset = jax.random.split(key)
        obs, state = env.reset_env(k_reset, params)
        return state, obs

    return suite.SuiteEnv(reset=reset, step=step, reset_done=reset_done)


@functools.lru_cache(maxsize=None)
def env_spec(env_id: str) -> EnvSpec:
    name = suite.parse_name(env_id, PREFIX)
    env, params = make_env(name)
    shape, _ = suite.observation_form(suite.abstract_obs(suite_env(name).reset))
    return EnvSpec(env_id=env_id, obs_shape=shape, num_actions=int(env.num_actions),
                   max_episode_steps=int(params.max_timesteps))


def default_reset_slots(num_envs: int) -> int:
    return max(1, num_envs // RESET_RATIO)


def make_vec_env(env_id: str, num_envs: int, reset_slots: int | None = None,
                 max_timesteps: int | None = None) -> VecEnv:
    """Batched, auto-resetting env over ``num_envs`` copies of a ``craftax:`` id (``reset_slots``: fresh worlds per
    step, default ``max(1, num_envs // 16)``; ``num_envs`` gives every env its own; ``max_timesteps``: another
    time limit, for tests)."""
    name = suite.parse_name(env_id, PREFIX)
    env = suite_env(name, max_timesteps)
    _, encode = suite.observation_form(suite.abstract_obs(env.reset))
    slots = default_reset_slots(num_envs) if reset_slots is None else reset_slots
    spec = env_spec(env_id)
    if max_timesteps is not None:
        spec = spec._replace(max_episode_steps=max_timesteps)
    return suite.batched(spec, env, encode, num_envs, reset_slots=slots)
