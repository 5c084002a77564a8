"""A trained policy outside the framework: the exported folder's format and ``load_policy``.

Shape legend: ``B`` observations in a batch, ``O...`` one observation, ``A`` actions, ``D`` action
dimensions, ``H`` recurrent state.

``jaxrl-policy export RUN_DIR --out DIR`` (``running/export.py``) writes::

    DIR/manifest.json    format and version, package version, config hash, the env id and its spaces, the
                         network (a class of core.networks / core.policies and its fields), how its output
                         becomes an action, whether it is recurrent, where it came from (run folder, seed)
    DIR/params.msgpack   the network's parameters and the observation statistics (flax msgpack)

``load_policy(DIR)`` rebuilds the network from ``core`` alone — no loop, algorithm or run module is
imported — and returns a ``Policy``: a pure, jittable ``policy(obs [B, O...]) -> action [B, ...]`` (or
``policy(obs, carry) -> (action, carry)`` for a recurrent one, with ``policy.initial_carry(B)``).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from jaxrl_policy._version import __version__
from jaxrl_policy.core import distributions as dist
from jaxrl_policy.core import networks, policies
from jaxrl_policy.core.normalization import RunningStats, normalize
from jaxrl_policy.io.rundir import atomic_write_bytes, atomic_write_text

FORMAT = "jaxrl_policy.policy"
VERSION = 1
MANIFEST, PARAMS = "manifest.json", "params.msgpack"
HEADS = ("mode", "argmax", "action", "squashed_mode")


class PolicyFormatError(ValueError):
    """An exported policy folder that cannot be loaded (the message says which file and why)."""


class Policy:
    """A loaded policy: ``policy(obs)`` → action (``policy(obs, carry)`` → ``(action, carry)`` when recurrent);
    a plain callable, so ``jax.jit(policy)`` and ``jax.vmap(policy)`` work."""

    def __init__(self, apply: Callable[..., Any], manifest: dict[str, Any],
                 initial_carry: Callable[[int], Any] | None):
        self.apply = apply
        self.manifest = manifest
        self.initial_carry = initial_carry  # recurrent: the state at an episode's start for B envs

    def __call__(self, *args):
        return self.apply(*args)


def to_jsonable(v: Any) -> Any:
    """A network field as JSON (tuples become lists; ``from_json`` turns them back)."""
    if isinstance(v, (tuple, list)):
        return [to_jsonable(x) for x in v]
    if isinstance(v, (np.integer, np.floating, np.bool_)):
        return v.item()
    return v


def _network_class(name: str):
    for mod in (networks, policies):
        cls = getattr(mod, name, None)
        if isinstance(cls, type):
            return cls
    raise PolicyFormatError(f"{MANIFEST}: network {name!r} is not a network of this package version ({__version__})")


def _read(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    if not folder.is_dir():
        raise PolicyFormatError(f"{folder}: no such folder")
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError:
        raise PolicyFormatError(f"{folder}: not an exported policy (no {MANIFEST}; make one with "
                                "`jaxrl-policy export RUN_DIR --out DIR`)") from None
    except ValueError as e:
        raise PolicyFormatError(f"{folder / MANIFEST}: not valid JSON ({e}); the file may be truncated") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise PolicyFormatError(f"{folder / MANIFEST}: not a {FORMAT} manifest")
    if manifest.get("version") != VERSION:
        raise PolicyFormatError(f"{folder / MANIFEST}: format version {manifest.get('version')!r} (written by "
                                f"jaxrl_policy {manifest.get('package_version')}); this package ({__version__}) reads "
                                f"version {VERSION}: export the run again with this version")
    if manifest.get("head") not in HEADS:
        raise PolicyFormatError(f"{folder / MANIFEST}: head = {manifest.get('head')!r}: must be one of {HEADS}")
    try:
        state = serialization.msgpack_restore((folder / PARAMS).read_bytes())
    except FileNotFoundError:
        raise PolicyFormatError(f"{folder}: {PARAMS} is missing") from None
    except Exception as e:  # msgpack raises several kinds for a cut or corrupted file
        raise PolicyFormatError(f"{folder / PARAMS}: cannot be read ({type(e).__name__}); the file may be "
                                "truncated: export the run again") from None
    if not isinstance(state, dict) or "params" not in state:
        raise PolicyFormatError(f"{folder / PARAMS}: holds no parameters")
    return manifest, state


def load_policy(folder: str | os.PathLike) -> Policy:
    """The exported policy in ``folder`` as a pure, jittable function (see the module docstring).

    Raises ``PolicyFormatError`` naming the file and the reason for a folder that is not an export of this
    format version, a truncated file or parameters that do not fit the network.
    """
    folder = Path(folder)
    manifest, state = _read(folder)
    net = _network_class(manifest["network"])(**{k: tuple(v) if isinstance(v, list) else v
                                                 for k, v in manifest["kwargs"].items()})
    params = jax.tree.map(jnp.asarray, state["params"])
    stats = None if state.get("obs_stats") is None else RunningStats(**{k: jnp.asarray(v)
                                                                        for k, v in state["obs_stats"].items()})
    obs_shape = tuple(manifest["obs_shape"])
    recurrent = bool(manifest.get("recurrent"))
    carry0 = net.initial_carry(1) if recurrent else None
    try:  # parameters that do not fit the network fail here, not at the first call
        dummy = jnp.zeros((1, *obs_shape), jnp.float32)
        jax.eval_shape(lambda p: net.apply(p, dummy, carry0) if recurrent else net.apply(p, dummy), params)
    except Exception as e:
        raise PolicyFormatError(f"{folder / PARAMS}: the parameters do not fit the manifest's network "
                                f"({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
    space = dist.ActionSpace(num_actions=manifest["num_actions"],
                             low=None if manifest.get("action_low") is None else tuple(manifest["action_low"]),
                             high=None if manifest.get("action_high") is None else tuple(manifest["action_high"]),
                             squash=manifest.get("action_squash", "clip"))
    head = manifest["head"]

    def act(out):
        if head == "mode":
            return dist.mode(out[0], space)
        if head == "argmax":
            return jnp.argmax(out, -1)
        if head == "squashed_mode":  # a Gaussian before the tanh squash (SAC's actor)
            return dist.mode(out, space._replace(squash="tanh"))
        return out

    if recurrent:
        def apply(obs, carry):
            out = net.apply(params, normalize(stats, jnp.asarray(obs, jnp.float32)), carry)
            return act(out), out[2]

        return Policy(apply, manifest, net.initial_carry)

    def apply_ff(obs):
        return act(net.apply(params, normalize(stats, jnp.asarray(obs, jnp.float32))))

    return Policy(apply_ff, manifest, None)


def write_policy(folder: str | os.PathLike, manifest: dict[str, Any], params: Any, obs_stats: Any) -> Path:
    """Write an export (``running/export.py`` builds the manifest); the parameters first, the manifest last, so a
    folder with a manifest is complete."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {"params": jax.tree.map(np.asarray, params),
             "obs_stats": None if obs_stats is None else {k: np.asarray(v) for k, v in obs_stats._asdict().items()}}
    atomic_write_bytes(folder / PARAMS, serialization.msgpack_serialize(state))
    atomic_write_text(folder / MANIFEST, json.dumps({"format": FORMAT, "version": VERSION, **manifest}, indent=2))
    return folder
