"""gymnax → pure batched ``reset`` / ``step`` over E environments (``brax:`` ids: ``brax_adapter.py``).

Shape legend: ``E`` envs, ``O...`` observation shape.

gymnax 1.0 already auto-resets inside ``step`` and returns six values
``obs, state, reward, terminated, truncated, info`` with the pre-reset observation in
``info["final_observation"]``. This adapter keeps ``terminated`` (the MDP ended: bootstrap with
0) apart from ``truncated`` (a time limit cut it: bootstrap from V(final observation)), exposes
the true next observation of every transition as ``next_obs``, casts observations to float32,
and tracks the undiscounted return and length of the episode in flight.

A discrete observation space (FrozenLake-misc: the agent's cell as one integer, shape ``()``)
is one-hot encoded to ``[n]``, as Stable-Baselines3's ``preprocess_obs`` does: the cell index as
one float would tell a network that cell 5 lies between cells 4 and 6.
"""
from __future__ import annotations

import difflib
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


def _probes() -> dict:
    # gymnax (which the probes subclass) builds jnp arrays when imported, which starts JAX's
    # backend; importing it lazily lets `import jaxrl_policy` come before backend settings
    # (PJRT_NPROC, jax_num_cpu_devices, jax_platforms).
    from jaxrl_policy.envs.probes import PROBES

    return PROBES


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


def registered_env_ids() -> list[str]:
    import gymnax

    from jaxrl_policy.envs.wrappers import WRAPPED

    return list(gymnax.registered_envs) + list(_probes()) + list(WRAPPED)


def _brax():
    # Brax is optional: its adapter (and brax itself) is imported only for ``brax:`` ids.
    from jaxrl_policy.envs import brax_adapter

    return brax_adapter


def _is_brax(env_id: str) -> bool:
    return env_id.startswith("brax:")


def unknown_env_message(env_id: str) -> str | None:
    """None if ``env_id`` is known, else a message suggesting the closest registered ids."""
    if _is_brax(env_id):
        return _brax().unknown_env_message(env_id)
    ids = registered_env_ids()
    if env_id in ids:
        return None
    close = difflib.get_close_matches(env_id, ids, n=3, cutoff=0.4)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else f"; known: {', '.join(ids)}"
    return f"unknown gymnax env id{hint}"


def make_gymnax(env_id: str):
    """Return ``(env, params)`` for a gymnax id, a probe id or a wrapped id (``envs/wrappers.py``)."""
    probes = _probes()
    if env_id in probes:
        env = probes[env_id]()
        return env, env.default_params
    import gymnax

    from jaxrl_policy.envs.wrappers import WRAPPED

    if env_id in WRAPPED:
        base, wrap = WRAPPED[env_id]
        env, params = gymnax.make(base)
        return wrap(env), params
    return gymnax.make(env_id)


def _discrete_obs(env, params) -> int | None:
    """``n`` of a discrete (scalar integer) observation space, else None."""
    space = env.observation_space(params)
    return int(space.n) if hasattr(space, "n") and tuple(space.shape) == () else None


def _obs_encoder(env, params) -> Callable[[jax.Array], jax.Array]:
    """``[E, O...]`` raw observations → float32 (one-hot ``[E, n]`` for a discrete observation space)."""
    n = _discrete_obs(env, params)
    if n is None:
        return lambda obs: obs.astype(jnp.float32)
    return lambda obs: jax.nn.one_hot(obs, n, dtype=jnp.float32)


def env_spec(env_id: str) -> EnvSpec:
    if _is_brax(env_id):
        return _brax().env_spec(env_id)
    env, params = make_gymnax(env_id)
    space = env.action_space(params)
    num_actions = int(space.n) if hasattr(space, "n") else None
    n_obs = _discrete_obs(env, params)
    obs_shape = (n_obs,) if n_obs is not None else tuple(int(d) for d in env.observation_space(params).shape)
    max_steps = getattr(params, "max_steps_in_episode", None)
    extra: dict[str, Any] = {}
    if num_actions is None:  # a Box: its shape and bounds, broadcast to [D]
        shape = tuple(int(d) for d in space.shape) or (1,)
        extra = dict(action_shape=shape,
                     action_low=tuple(float(x) for x in np.broadcast_to(np.asarray(space.low, np.float32), shape)),
                     action_high=tuple(float(x) for x in np.broadcast_to(np.asarray(space.high, np.float32), shape)))
    return EnvSpec(env_id=env_id, obs_shape=obs_shape, num_actions=num_actions,
                   max_episode_steps=None if max_steps is None else int(max_steps), **extra)


def make_vec_env(env_id: str, num_envs: int) -> VecEnv:
    """Batched, auto-resetting env over ``num_envs`` copies of ``env_id`` (gymnax, or Brax for ``brax:`` ids)."""
    if _is_brax(env_id):
        return _brax().make_vec_env(env_id, num_envs)
    env, params = make_gymnax(env_id)
    spec = env_spec(env_id)
    encode = _obs_encoder(env, params)

    def reset(key):
        obs, inner = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, num_envs), params)
        zeros = jnp.zeros((num_envs,), jnp.float32)
        return EnvState(inner=inner, obs=encode(obs), episode_return=zeros,
                        episode_length=jnp.zeros((num_envs,), jnp.int32))

    def step(key, state, action):
        keys = jax.random.split(key, num_envs)
        if spec.num_actions is None:  # continuous: the policy's sample, clipped to the env's bounds here
            action = jnp.clip(action, jnp.asarray(spec.action_low), jnp.asarray(spec.action_high))
            action = action.reshape(num_envs, *env.action_space(params).shape)
        obs, inner, reward, terminated, truncated, info = jax.vmap(
            env.step, in_axes=(0, 0, 0, None))(keys, state.inner, action, params)
        reward = reward.astype(jnp.float32)
        terminated = terminated.astype(bool)
        # A step can hit the time limit and a terminal state at once: it is a termination.
        truncated = jnp.logical_and(truncated.astype(bool), ~terminated)
        done = terminated | truncated
        ep_ret = state.episode_return + reward
        ep_len = state.episode_length + 1
        out = StepOutput(
            next_obs=encode(info["final_observation"]),
            reward=reward,
            terminated=terminated,
            truncated=truncated,
            episode_return=jnp.where(done, ep_ret, 0.0),
            episode_length=jnp.where(done, ep_len, 0),
        )
        new = EnvState(inner=inner, obs=encode(obs), episode_return=jnp.where(done, 0.0, ep_ret),
                       episode_length=jnp.where(done, 0, ep_len))
        return new, out

    return VecEnv(spec=spec, reset=reset, step=step)
