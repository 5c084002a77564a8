"""gymnax → the env protocol of ``base.py``: pure batched ``reset`` / ``step`` over E environments.

Shape legend: ``E`` envs, ``O...`` observation shape.

gymnax 1.0 already auto-resets inside ``step`` and returns six values
``obs, state, reward, terminated, truncated, info`` with the pre-reset observation in
``info["final_observation"]``. This adapter keeps ``terminated`` (the MDP ended: bootstrap with
0) apart from ``truncated`` (a time limit cut it: bootstrap from V(final observation)), exposes
the true next observation of every transition as ``next_obs``, casts observations to float32,
and tracks the undiscounted return and length of the episode in flight.

Env ids may carry env parameters (gymnax ``EnvParams`` fields) after a ``?``:
``CartPole-v1?length=1.0`` is CartPole with a 1 m pole; ``CartPole-v1?length=0.25|length=1.0`` is a
family of settings, ``|``-separated, where env copy ``e`` of a batch uses setting ``e mod n`` (so
E envs cover the n settings evenly; an evaluation averages over them the same way). CartPole's
derived fields (``total_mass``, ``polemass_length``) follow the fields given.

Env parameters are checked before anything compiles (``_parse_param``: the same rules for every gymnax env,
which declares no ranges of its own): every number must be finite; a field whose default is > 0 must stay > 0
(in gymnax such a field is a physical magnitude, a duration or a count: CartPole's masses, pole length,
gravity, force and time step, a time limit, MinAtar's intervals; zero or below makes the dynamics
meaningless or divides by zero), except positions (``*_position``: a place on MountainCar's track, of
either sign); a probability (``*_prob``) must be in [0, 1]; an integer field takes integers, a boolean
field true or false; array fields cannot be set from an id. A field whose default is 0 or negative
(MountainCar's ``goal_velocity``, ``min_position``) has no sign rule.

A discrete observation space (FrozenLake-misc: the agent's cell as one integer, shape ``()``)
is one-hot encoded to ``[n]``, as Stable-Baselines3's ``preprocess_obs`` does: the cell index as
one float would tell a network that cell 5 lies between cells 4 and 6.
"""
from __future__ import annotations

import difflib
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl_policy.core.envs.base import EnvSpec, EnvState, StepOutput, VecEnv
from jaxrl_policy.core.envs.wrappers import WRAPPED


def _probes() -> dict:
    # gymnax (which the probes subclass) builds jnp arrays when imported, which starts JAX's
    # backend; importing it lazily lets `import jaxrl_policy` come before backend settings
    # (PJRT_NPROC, jax_num_cpu_devices, jax_platforms).
    from jaxrl_policy.core.envs.probes import PROBES

    return PROBES


def split_env_id(env_id: str) -> tuple[str, list[dict[str, str]]]:
    """``base?k=v,k2=v2|k=v3`` → ``(base, [{k: v, k2: v2}, {k: v3}])``; ``[{}]`` without parameters.
    Raises ValueError on a malformed parameter list."""
    base, sep, rest = env_id.partition("?")
    if not sep:
        return env_id, [{}]
    options = []
    for opt in rest.split("|"):
        d: dict[str, str] = {}
        for item in opt.split(","):
            k, eq, v = item.partition("=")
            if not eq or not k.strip() or not v.strip():
                raise ValueError(f"env parameters {rest!r}: expected NAME=VALUE[,NAME=VALUE…][|…], got {item!r}")
            d[k.strip()] = v.strip()
        options.append(d)
    return base, options


def _parse_param(name: str, default: Any, text: str) -> Any:
    """``text`` as a value of the env parameter ``name`` whose default is ``default``; ValueError names the value and
    the rule (the module docstring)."""
    if np.ndim(default) == 0 and hasattr(default, "dtype"):  # a 0-d array default: its Python scalar
        default = np.asarray(default).item()
    if isinstance(default, (bool, np.bool_)):
        if text.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"env parameter {name}={text!r}: must be true or false")
        return text.lower() in ("true", "1")
    if not isinstance(default, (int, float, np.integer, np.floating)):
        raise ValueError(f"env parameter {name}: its default is {type(default).__name__} "
                         f"{np.asarray(default).tolist()!r}, not a number; only number and boolean fields can be set "
                         "in an id")
    integer = isinstance(default, (int, np.integer))
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        raise ValueError(f"env parameter {name}={text!r}: must be {'an integer' if integer else 'a number'}") \
            from None
    if not math.isfinite(value):
        raise ValueError(f"env parameter {name}={text}: must be a finite number")
    if name.endswith("_prob") and not 0 <= value <= 1:
        raise ValueError(f"env parameter {name}={text}: a probability must be in [0, 1]")
    if default > 0 and not name.endswith("_position") and value <= 0:
        raise ValueError(f"env parameter {name}={text}: must be > 0 (its default, {default}, is a positive magnitude, "
                         "duration or count)")
    return value


def _with_params(params, given: dict[str, str]):
    """``params`` with the given fields replaced (parsed and checked by ``_parse_param``); CartPole's derived
    masses follow. Raises ValueError naming an unknown field or a bad value and its rule."""
    fields = {f: getattr(params, f) for f in getattr(params, "__dataclass_fields__", {})}
    changes: dict[str, Any] = {}
    for k, v in given.items():
        if k not in fields:
            close = difflib.get_close_matches(k, fields, n=1)
            raise ValueError(f"env parameter {k!r}: not a field of {type(params).__name__}"
                             + (f"; did you mean {close[0]!r}?" if close else f" ({', '.join(fields)})"))
        changes[k] = _parse_param(k, fields[k], v)
    if {"masspole", "length", "polemass_length", "total_mass", "masscart"} <= set(fields):
        mp = changes.get("masspole", fields["masspole"])
        changes.setdefault("total_mass", mp + changes.get("masscart", fields["masscart"]))
        changes.setdefault("polemass_length", mp * changes.get("length", fields["length"]))
    return params.replace(**changes)


def registered_env_ids() -> list[str]:
    import gymnax

    return list(gymnax.registered_envs) + list(_probes()) + list(WRAPPED)


def unknown_env_message(env_id: str) -> str | None:
    """None if ``env_id`` is a known gymnax, probe or wrapped id, else a message suggesting the closest ones."""
    ids = registered_env_ids()
    base, options = env_id.partition("?")[0], None
    if base in ids and base != env_id:
        try:
            _, options = split_env_id(env_id)
            _, params = make_gymnax(base)
            for opt in options:
                _with_params(params, opt)
        except ValueError as e:
            return str(e)
        return None
    if env_id in ids:
        return None
    close = difflib.get_close_matches(env_id, ids, n=3, cutoff=0.4)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else f"; known: {', '.join(ids)}"
    return f"unknown gymnax env id{hint}"


def make_gymnax(env_id: str):
    """Return ``(env, params)`` for a gymnax id, a probe id or a wrapped id (``envs/wrappers.py``); with
    env parameters, the first setting's params (``env_param_options`` lists all of them)."""
    base, options = split_env_id(env_id)
    if base != env_id:
        env, params = make_gymnax(base)
        return env, _with_params(params, options[0])
    probes = _probes()
    if env_id in probes:
        env = probes[env_id]()
        return env, env.default_params
    import gymnax

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


def env_param_options(env_id: str) -> list[Any]:
    """The env params of each setting of ``env_id`` (one unless it lists several, ``|``-separated)."""
    base, options = split_env_id(env_id)
    env, params = make_gymnax(base)
    return [_with_params(params, opt) for opt in options]


def make_vec_env(env_id: str, num_envs: int) -> VecEnv:
    """Batched, auto-resetting env over ``num_envs`` copies of ``env_id`` (with several env settings, copy e
    uses setting e mod n)."""
    env, params = make_gymnax(env_id)
    spec = env_spec(env_id)
    encode = _obs_encoder(env, params)
    options = env_param_options(env_id) if "?" in env_id else [params]
    p_axis = None
    if len(options) > 1:  # per-env params [E]: copy e gets setting e mod n
        params = jax.tree.map(lambda *xs: jnp.asarray(np.array(xs)[np.arange(num_envs) % len(xs)]), *options)
        p_axis = 0

    def reset(key):
        obs, inner = jax.vmap(env.reset, in_axes=(0, p_axis))(jax.random.split(key, num_envs), params)
        zeros = jnp.zeros((num_envs,), jnp.float32)
        return EnvState(inner=inner, obs=encode(obs), episode_return=zeros,
                        episode_length=jnp.zeros((num_envs,), jnp.int32))

    def step(key, state, action):
        keys = jax.random.split(key, num_envs)
        if spec.num_actions is None:  # continuous: the policy's sample, clipped to the env's bounds here
            action = jnp.clip(action, jnp.asarray(spec.action_low), jnp.asarray(spec.action_high))
            action = action.reshape(num_envs, *env.action_space(params).shape)
        obs, inner, reward, terminated, truncated, info = jax.vmap(
            env.step, in_axes=(0, 0, 0, p_axis))(keys, state.inner, action, params)
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
