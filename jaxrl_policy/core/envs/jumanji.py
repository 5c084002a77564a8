"""Jumanji → the env protocol of ``base.py`` (``jumanji:NAME`` ids; ``pip install "jaxrl-policy[jumanji]"``).

Shape legend: ``E`` envs, ``N`` flat observation size, ``K`` action components.

Names: Jumanji's registry with its default generators (``Snake-v1``, ``Maze-v0``, ``Game2048-v1``,
``PacMan-v1``, ``SlidingTilePuzzle-v0``, ``Knapsack-v1``, ``TSP-v1``, ``Minesweeper-v0``,
``RubiksCube-v0``, ``Tetris-v0``, …) where the env fits one agent with discrete actions:

- a ``DiscreteArray`` action is the action; a ``MultiDiscreteArray`` of K components (Minesweeper's
  row and column, Tetris's rotation and column) is flattened to one discrete action over their
  product (``unravel_index`` back), up to ``MAX_JOINT_ACTIONS``;
- refused, with the reason: continuous actions (``BoundedArray``: MultiCVRP, SearchAndRescue),
  per-agent rewards (Connector, LevelBasedForaging), more joint actions than ``MAX_JOINT_ACTIONS``
  (JobShop, MMST, FlatPack), and envs whose state has no ``key`` to reset from.

Observations are Jumanji ``Observation`` NamedTuples; they are flattened leaf by leaf into one
float32 vector (``suite.observation_form``; the MLP torso), the ``action_mask`` included: the learners
see the mask but do not enforce it (each env treats an invalid action its own way, e.g. Snake turns
back into itself and ends the episode).

Semantics: Jumanji's ``TimeStep`` is dm_env's: ``step_type`` LAST ends an episode, with ``discount`` 0 for
a termination and 1 for a truncation (``jumanji.types.truncation``). So ``terminated`` = LAST ∧
discount = 0 and ``truncated`` = LAST ∧ discount ≠ 0: the adapter follows the env's own signal. Note
that the envs this adapter drives end at their ``time_limit`` with ``termination`` (discount 0: Snake,
Maze, PacMan, SlidingTilePuzzle, Tetris, RubiksCube, Cleaner, …; all but PacMan observe their step
count, so the limit is part of their MDP); only LevelBasedForaging, refused above, calls ``truncation``.
``max_episode_steps`` is the env's ``time_limit`` (None when it has none: then evaluation needs
``eval_max_steps``). Auto-reset is ours, from the key Jumanji's ``AutoResetWrapper`` uses
(``split(state.key)[0]``), so the adapter replays that wrapper's episodes exactly, with the final
observation as ``next_obs``.
"""
from __future__ import annotations

import contextlib
import functools
import io
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl_policy.core.envs import suite
from jaxrl_policy.core.envs.base import EnvSpec, VecEnv

PREFIX = "jumanji:"
EXTRA = "jumanji"
MAX_JOINT_ACTIONS = 1024  # a flattened MultiDiscrete action space larger than this is refused (a policy head that size)


def is_id(env_id: Any) -> bool:
    return isinstance(env_id, str) and env_id.startswith(PREFIX)


def _jumanji():
    try:
        import jumanji
    except ImportError:
        return None
    return jumanji


def registered_names() -> list[str]:
    jm = _jumanji()
    return [] if jm is None else sorted(jm.registered_environments())


@functools.lru_cache(maxsize=None)
def make_env(name: str):
    """The Jumanji env of ``name`` (``jumanji.make``, default generator)."""
    jm = _jumanji()
    if jm is None:
        raise ImportError(suite.install_hint(EXTRA))
    with contextlib.redirect_stdout(io.StringIO()):
        return jm.make(name)


def action_sizes(env) -> tuple[int, ...]:
    """The number of values of each action component (``()`` components: a ``DiscreteArray``); ValueError when the
    action space is not discrete."""
    from jumanji import specs

    spec = env.action_spec
    if isinstance(spec, specs.DiscreteArray):
        return (int(spec.num_values),)
    if isinstance(spec, specs.MultiDiscreteArray):
        return tuple(int(n) for n in np.asarray(spec.num_values).reshape(-1))
    raise ValueError(f"its action space is {type(spec).__name__}, not discrete (the jumanji adapter takes "
                     "DiscreteArray and MultiDiscreteArray actions)")


def _check(env) -> tuple[int, ...]:
    """The action sizes of ``env``, or ValueError naming why the adapter cannot drive it."""
    sizes = action_sizes(env)
    if math.prod(sizes) > MAX_JOINT_ACTIONS:
        raise ValueError(f"its MultiDiscrete actions {list(sizes)} make {math.prod(sizes)} joint actions, more "
                         f"than the {MAX_JOINT_ACTIONS} this adapter flattens")
    if tuple(env.reward_spec.shape) != ():
        raise ValueError(f"its reward has shape {tuple(env.reward_spec.shape)} (one per agent); the learners "
                         "take one scalar reward")
    state = jax.eval_shape(env.reset, jax.ShapeDtypeStruct((2,), jnp.uint32))[0]
    if not hasattr(state, "key"):
        raise ValueError("its state has no key to reset from")
    return sizes


def unknown_env_message(env_id: str) -> str | None:
    try:
        name = suite.parse_name(env_id, PREFIX)
    except ValueError as e:
        return str(e)
    if _jumanji() is None:
        return suite.install_hint(EXTRA)
    names = registered_names()
    if name not in names:
        return suite.unknown_name_message("Jumanji", PREFIX, name, names)
    try:
        env = make_env(name)
    except Exception as e:  # Sokoban downloads its levels when built: offline, that fails here
        return f"Jumanji could not build {name!r}: {type(e).__name__}: {e}"
    try:
        _check(env)
        env_spec(env_id)
    except ValueError as e:
        return f"{PREFIX}{name} is not supported: {e}"
    return None


def suite_env(name: str) -> suite.SuiteEnv:
    env = make_env(name)
    sizes = _check(env)
    spec = env.action_spec
    multi = len(sizes) > 1 or tuple(spec.shape) != ()

    def to_env_action(a):
        if not multi:
            return a.astype(spec.dtype)
        parts = jnp.unravel_index(a, sizes)  # joint index → one index per component, row-major
        return jnp.stack(parts).reshape(spec.shape).astype(spec.dtype)

    def reset(key):
        state, ts = env.reset(key)
        return state, ts.observation

    def step(key, state, action):
        state, ts = env.step(state, to_env_action(action))
        done = ts.last()
        terminated = done & (ts.discount == 0)  # a truncation (time limit) keeps discount 1
        return state, ts.observation, ts.reward, terminated, done & ~terminated

    def reset_done(key, state):
        k, _ = jax.random.split(state.key)  # AutoResetWrapper's reset key
        state, ts = env.reset(k)
        return state, ts.observation

    return suite.SuiteEnv(reset=reset, step=step, reset_done=reset_done)


@functools.lru_cache(maxsize=None)
def env_spec(env_id: str) -> EnvSpec:
    name = suite.parse_name(env_id, PREFIX)
    env = make_env(name)
    sizes = _check(env)
    shape, _ = suite.observation_form(suite.abstract_obs(suite_env(name).reset))
    limit = getattr(env, "time_limit", None)
    return EnvSpec(env_id=env_id, obs_shape=shape, num_actions=math.prod(sizes),
                   max_episode_steps=None if limit is None else int(limit))


def make_vec_env(env_id: str, num_envs: int) -> VecEnv:
    """Batched, auto-resetting env over ``num_envs`` copies of a ``jumanji:`` id."""
    name = suite.parse_name(env_id, PREFIX)
    env = suite_env(name)
    _, encode = suite.observation_form(suite.abstract_obs(env.reset))
    return suite.batched(env_spec(env_id), env, encode, num_envs)
