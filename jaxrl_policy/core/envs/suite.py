"""What the adapters of the optional JAX suites share (``craftax.py``, ``xminigrid.py``, ``navix.py``,
``jumanji.py``): ids, messages, observation encoding and the batched auto-reset.

Shape legend: ``E`` envs, ``R`` reset slots, ``O...`` observation shape, ``N`` flat observation size.

A suite adapter describes one unbatched env as a ``SuiteEnv`` (three pure functions); ``batched``
turns it into the ``VecEnv`` of ``base.py``: E copies, auto-resetting, ``terminated`` kept apart from
``truncated`` (a step that is both is a termination), ``next_obs`` the true observation before any
reset, float32 observations, the return and length of the episode in flight.

Auto-reset is ours, with each suite's own choice of reset key (so an adapter replays the suite's own
auto-reset bit for bit on the same keys): an env that ended is reset by ``SuiteEnv.reset_done``. The
resets run under ``lax.cond`` only when some env ended (a real branch outside a seed ``vmap``; inside
one both branches run, as they do in the suites' own auto-reset wrappers). With ``reset_slots = R <
E``, only R resets are computed per step (for envs whose reset costs many steps: Craftax's world
generation): the first R envs that ended, by index, get their own reset (the one the suite would
give them); an env beyond the R-th in the same step starts from a copy of one of those R.

Observations (``observation_form``): one array of rank 1 (a vector) or 3 (an image ``[H, W, C]``: the
CNN torso under ``torso = auto``) is kept as it is; one array of another rank is flattened; a pytree of
arrays (a dict, a NamedTuple: Jumanji's observations) is flattened leaf by leaf, in the pytree's
order, and concatenated to one vector ``[N]``. Every leaf is cast to float32 (booleans to 0/1).
Non-numeric leaves, or none at all, are refused with the reason (config validation: exit 2).
"""
from __future__ import annotations

import difflib
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl_policy.core.envs.base import EnvSpec, EnvState, StepOutput, VecEnv


class SuiteEnv(NamedTuple):
    """One env of a suite as pure functions over its unbatched state (``inner``); observations raw (a pytree).

    ``reset(key) -> (inner, obs)``; ``step(key, inner, action) -> (inner, obs, reward, terminated,
    truncated)``, the observation before any reset; ``reset_done(key, inner) -> (inner, obs)``: the fresh
    episode that follows the ended ``inner`` (``key`` is the one its step got), as the suite's own
    auto-reset would start it.
    """

    reset: Callable[[jax.Array], tuple[Any, Any]]
    step: Callable[[jax.Array, Any, jax.Array], tuple[Any, Any, jax.Array, jax.Array, jax.Array]]
    reset_done: Callable[[jax.Array, Any], tuple[Any, Any]]


def install_hint(extra: str) -> str:
    return f'{extra} is not installed; install it with: pip install "jaxrl-policy[{extra}]"'


def parse_name(env_id: str, prefix: str) -> str:
    """``"prefix:NAME"`` → ``NAME``; raises ValueError for env parameters (``?``), which these suites do not take."""
    name = env_id[len(prefix):]
    if "?" in name:
        raise ValueError(f"env parameters ({name.partition('?')[2]!r}) are not supported for {prefix} ids; "
                         f"use {prefix}{name.partition('?')[0]}")
    return name


def unknown_name_message(suite: str, prefix: str, name: str, names: list[str]) -> str:
    """``unknown SUITE env 'X'; did you mean …?`` (or the list of known names)."""
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.4)
    hint = f"did you mean {', '.join(repr(prefix + c) for c in close)}?" if close else \
        f"known: {', '.join(prefix + n for n in names)}"
    return f"unknown {suite} env {name!r}; {hint}"


def observation_form(obs: Any) -> tuple[tuple[int, ...], Callable[[Any], jax.Array]]:
    """``(obs_shape, encode)`` for a suite's observation (a pytree of arrays or ``ShapeDtypeStruct``s, unbatched):
    ``encode`` maps the batched raw observation ``[E, ...]`` to float32 ``[E, *obs_shape]``.
    Raises ValueError naming what cannot be encoded."""
    leaves, _ = jax.tree.flatten(obs)
    if not leaves:
        raise ValueError("its observation holds no arrays")
    for leaf in leaves:
        dtype = np.dtype(leaf.dtype)
        if not (np.issubdtype(dtype, np.number) or dtype == np.bool_):
            raise ValueError(f"its observation has a leaf of dtype {dtype}: only numbers and booleans can be "
                             "fed to a network")
    if any(0 in tuple(leaf.shape) for leaf in leaves):
        raise ValueError(f"its observation has an empty leaf (shapes {[tuple(x.shape) for x in leaves]})")
    if len(leaves) == 1 and len(leaves[0].shape) in (1, 3):  # a vector or an image: as it is
        shape = tuple(int(d) for d in leaves[0].shape)
        return shape, lambda o: jax.tree.leaves(o)[0].astype(jnp.float32)
    size = sum(math.prod(leaf.shape) for leaf in leaves)

    def flat(o):
        xs = jax.tree.leaves(o)
        e = xs[0].shape[0]
        return jnp.concatenate([x.reshape(e, -1).astype(jnp.float32) for x in xs], axis=-1)

    return (int(size),), flat


def _where(done: jax.Array, a: Any, b: Any) -> Any:
    """Leaf by leaf ``a`` where ``done [E]`` else ``b`` (leaves ``[E, ...]``)."""
    return jax.tree.map(lambda x, y: jnp.where(done.reshape(-1, *([1] * (x.ndim - 1))), x, y), a, b)


def batched(spec: EnvSpec, env: SuiteEnv, encode: Callable[[Any], jax.Array], num_envs: int,
            reset_slots: int | None = None) -> VecEnv:
    """``num_envs`` auto-resetting copies of ``env`` as one ``VecEnv`` (``reset_slots``: see the module docstring)."""
    E = num_envs
    R = E if reset_slots is None else max(1, min(int(reset_slots), E))
    v_reset, v_step, v_reset_done = jax.vmap(env.reset), jax.vmap(env.step), jax.vmap(env.reset_done)

    def reset(key):
        inner, obs = v_reset(jax.random.split(key, E))
        return EnvState(inner=inner, obs=encode(obs), episode_return=jnp.zeros((E,), jnp.float32),
                        episode_length=jnp.zeros((E,), jnp.int32))

    def step(key, state: EnvState, action):
        keys = jax.random.split(key, E)
        inner, obs, reward, terminated, truncated = v_step(keys, state.inner, action.reshape(E))
        reward = reward.astype(jnp.float32).reshape(E)
        terminated = terminated.astype(bool).reshape(E)
        truncated = truncated.astype(bool).reshape(E) & ~terminated  # both at once: a termination
        done = terminated | truncated

        def with_resets(carry):  # the raw observations are selected, then encoded (one encode per output)
            inner, obs = carry
            if R == E:
                r_inner, r_obs = v_reset_done(keys, inner)
                return _where(done, r_inner, inner), _where(done, r_obs, obs)
            order = jnp.argsort((~done).astype(jnp.int32), stable=True)[:R]  # [R] the envs that ended first, by index
            r_inner, r_obs = v_reset_done(keys[order], jax.tree.map(lambda x: x[order], inner))
            slot = jnp.where(done, (jnp.cumsum(done) - 1) % R, 0)  # [E] the k-th env that ended takes slot k mod R
            take = lambda x: x[slot]  # noqa: E731
            return _where(done, jax.tree.map(take, r_inner), inner), _where(done, jax.tree.map(take, r_obs), obs)

        new_inner, new_obs = jax.lax.cond(done.any(), with_resets, lambda c: c, (inner, obs))
        new_obs, next_obs = encode(new_obs), encode(obs)
        ep_ret = state.episode_return + reward
        ep_len = state.episode_length + 1
        out = StepOutput(next_obs=next_obs, reward=reward, terminated=terminated, truncated=truncated,
                         episode_return=jnp.where(done, ep_ret, 0.0), episode_length=jnp.where(done, ep_len, 0))
        new = EnvState(inner=new_inner, obs=new_obs, episode_return=jnp.where(done, 0.0, ep_ret),
                       episode_length=jnp.where(done, 0, ep_len))
        return new, out

    return VecEnv(spec=spec, reset=reset, step=step)


def abstract_obs(reset: Callable[[jax.Array], tuple[Any, Any]]) -> Any:
    """The observation pytree of ``reset`` as ``ShapeDtypeStruct``s (traced, not run: Craftax's world generation
    takes seconds op by op)."""
    return jax.eval_shape(reset, jax.ShapeDtypeStruct((2,), jnp.uint32))[1]
