"""Brax → the same pure batched ``reset`` / ``step`` over E environments as the gymnax adapter.

Shape legend: ``E`` envs, ``O`` observation size, ``D`` action dimensions.

Env ids are ``brax:NAME`` or ``brax:NAME@BACKEND``: any name in Brax's registry (``ant``,
``halfcheetah``, ``hopper``, ``inverted_pendulum``, ``reacher``, …) and one of Brax's physics
backends. The default backend is ``spring``, the fastest of Brax's four on CPU (ant, 64 envs, 2-core
AMD EPYC: spring ≈ 11.5k env-steps/s, mjx ≈ 4.5k, generalized ≈ 3.1k, positional ≈ 2.2k; see
``docs/brax.md``); Brax itself defaults to ``generalized``, the most accurate.

Brax is optional (``pip install "jaxrl-policy[brax]"``) and imported only when a ``brax:`` id is
used, so ``import jaxrl_policy`` never imports it.

Semantics, the same as ``gymnax.make_vec_env`` (the protocol of ``base.py``):

- Brax's ``EpisodeWrapper`` counts steps and sets ``done = 1`` at ``episode_length`` (default 1000,
  Brax's), with ``info["truncation"] = 1`` when the time limit, not a terminal state, ended the
  episode. ``terminated = done ∧ ¬truncation``; ``truncated = done ∧ truncation``.
- Auto-reset is ours, not Brax's ``AutoResetWrapper`` (which restarts every episode from the env's
  first initial state): an env that is done is reset with a fresh key, so every episode starts from
  a new random initial state, and ``next_obs`` is the true final observation, before the reset.
  The resets run under ``lax.cond`` only when some env is done (unbatched: a real branch outside a
  seed ``vmap``).
- Actions are clipped to Brax's range ``[-1, 1]``; observations are float32.
"""
from __future__ import annotations

import contextlib
import difflib
import functools
import io
import warnings
from typing import Any

import jax
import jax.numpy as jnp

from jaxrl_policy.core.envs.base import EnvSpec, EnvState, StepOutput, VecEnv

PREFIX = "brax:"
DEFAULT_BACKEND = "spring"
BACKENDS = ("spring", "positional", "generalized", "mjx")
EPISODE_LENGTH = 1000  # Brax's default episode_length (brax.envs.create, brax.training's ppo/sac configs)
ACTION_LOW, ACTION_HIGH = -1.0, 1.0  # Brax envs take actions in [-1, 1] (actuator ctrlrange is rescaled)
INSTALL_HINT = 'brax is not installed; install it with: pip install "jaxrl-policy[brax]"'


def is_brax_id(env_id: Any) -> bool:
    return isinstance(env_id, str) and env_id.startswith(PREFIX)


def parse_id(env_id: str) -> tuple[str, str]:
    """``"brax:ant@positional"`` → ``("ant", "positional")``; no ``@`` → the default backend."""
    rest = env_id[len(PREFIX):]
    name, _, backend = rest.partition("@")
    return name, backend or DEFAULT_BACKEND


def _brax_envs():
    """``brax.envs``, or ``None`` when brax cannot be imported."""
    try:
        # mujoco's mjx prints "Failed to import warp: …" to stdout when the optional warp is absent;
        # keep it off our stdout (the CLI prints its summary there).
        with contextlib.redirect_stdout(io.StringIO()):
            from brax import envs
    except ImportError:
        return None
    return envs


def registered_names() -> list[str]:
    """Env names in Brax's registry (empty without brax)."""
    envs = _brax_envs()
    return [] if envs is None else sorted(getattr(envs, "_envs", {}))


def unknown_env_message(env_id: str) -> str | None:
    """None if ``env_id`` names a Brax env this adapter can build, else why not (before any compile)."""
    name, backend = parse_id(env_id)
    if _brax_envs() is None:
        return INSTALL_HINT
    names = registered_names()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.4)
        hint = f"did you mean {', '.join(repr(PREFIX + c) for c in close)}?" if close else \
            f"known: {', '.join(names)}"
        return f"unknown Brax env {name!r}; {hint} (optionally @backend: {', '.join(BACKENDS)})"
    if backend not in BACKENDS:
        return f"unknown Brax backend {backend!r}; use one of {', '.join(BACKENDS)} (default {DEFAULT_BACKEND})"
    try:
        _base_env(name, backend)
    except Exception as e:  # any failure to build the env is reported by the config, before compiling
        return f"Brax could not build {name!r} with backend {backend!r}: {type(e).__name__}: {e}"
    return None


@functools.lru_cache(maxsize=None)
def _base_env(name: str, backend: str):
    """The Brax env (no wrappers); cached, as loading its MJCF model takes a while."""
    envs = _brax_envs()
    if envs is None:
        raise ImportError(INSTALL_HINT)
    with warnings.catch_warnings():  # brax.io.mjcf warns on every load that Brax's pipelines are unmaintained
        warnings.simplefilter("ignore", UserWarning)
        return envs.get_environment(name, backend=backend)


def make_env(env_id: str, episode_length: int = EPISODE_LENGTH):
    """The Brax env of ``env_id`` inside Brax's ``EpisodeWrapper`` (unbatched, no auto-reset)."""
    name, backend = parse_id(env_id)
    base = _base_env(name, backend)  # imports brax quietly first
    from brax.envs.wrappers.training import EpisodeWrapper

    return EpisodeWrapper(base, episode_length, action_repeat=1)


@functools.lru_cache(maxsize=None)
def env_spec(env_id: str, episode_length: int = EPISODE_LENGTH) -> EnvSpec:
    name, backend = parse_id(env_id)
    env = _base_env(name, backend)
    d = int(env.action_size)
    # Brax's `observation_size` runs a reset op by op (seconds); tracing it abstractly is enough.
    obs = jax.eval_shape(env.reset, jax.ShapeDtypeStruct((2,), jnp.uint32)).obs
    return EnvSpec(env_id=env_id, obs_shape=tuple(int(n) for n in obs.shape), num_actions=None,
                   max_episode_steps=episode_length, action_shape=(d,), action_low=(ACTION_LOW,) * d,
                   action_high=(ACTION_HIGH,) * d)


def _raw_key(key: jax.Array) -> jax.Array:
    # Brax's EpisodeWrapper reads the batch shape off rng.shape[:-1]: it needs raw uint32 keys.
    return jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key


def make_vec_env(env_id: str, num_envs: int, episode_length: int = EPISODE_LENGTH) -> VecEnv:
    """Batched, auto-resetting env over ``num_envs`` copies of a ``brax:`` id."""
    env = make_env(env_id, episode_length)
    spec = env_spec(env_id, episode_length)
    E, D = num_envs, spec.action_shape[0]
    v_reset = jax.vmap(env.reset)
    v_step = jax.vmap(env.step)

    def reset(key):
        inner = v_reset(jax.random.split(_raw_key(key), E))
        return EnvState(inner=inner, obs=inner.obs.astype(jnp.float32),
                        episode_return=jnp.zeros((E,), jnp.float32), episode_length=jnp.zeros((E,), jnp.int32))

    def step(key, state: EnvState, action):
        action = jnp.clip(action.reshape(E, D).astype(jnp.float32), ACTION_LOW, ACTION_HIGH)
        nxt = v_step(state.inner, action)
        done = nxt.done > 0.5
        # EpisodeWrapper: truncation = 1 − done_before_limit at the time limit, so it is 0 where the
        # last step also reached a terminal state (a termination, as in the gymnax adapter).
        truncated = done & (nxt.info["truncation"] > 0.5)
        terminated = done & ~truncated
        reward = nxt.reward.astype(jnp.float32)

        def with_resets(s):
            fresh = v_reset(jax.random.split(_raw_key(key), E))
            return jax.tree.map(lambda r, x: jnp.where(done.reshape(-1, *([1] * (x.ndim - 1))), r, x), fresh, s)

        # Unbatched `done.any()`: most steps end no episode, and then no reset is computed.
        inner = jax.lax.cond(done.any(), with_resets, lambda s: s, nxt)
        ep_ret = state.episode_return + reward
        ep_len = state.episode_length + 1
        out = StepOutput(next_obs=nxt.obs.astype(jnp.float32), reward=reward, terminated=terminated,
                         truncated=truncated, episode_return=jnp.where(done, ep_ret, 0.0),
                         episode_length=jnp.where(done, ep_len, 0))
        new = EnvState(inner=inner, obs=inner.obs.astype(jnp.float32), episode_return=jnp.where(done, 0.0, ep_ret),
                       episode_length=jnp.where(done, 0, ep_len))
        return new, out

    return VecEnv(spec=spec, reset=reset, step=step)
