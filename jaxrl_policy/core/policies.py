"""Networks of the off-policy actor-critics for continuous actions (SAC, TD3), flax.linen.

Shape legend: ``B...`` batch dims, ``O...`` observation shape (rank ``obs_ndim``), ``D`` action
dimensions, ``C`` critics of an ensemble (2: the twin critics).

- ``SquashedGaussianActor``: MLP torso → mean and log-std of a Gaussian ``[B..., D]`` (one dense layer of
  2D outputs, split), the log-std clipped to ``[LOG_STD_MIN, LOG_STD_MAX]``; the result is a
  ``distributions.Gaussian``, so ``distributions.sample(key, g, space)`` with ``squash="tanh"`` gives the
  reparameterised, tanh-squashed action scaled to the bounds and its log-density (with the
  log-Jacobian), and ``distributions.mode`` the deterministic action (Haarnoja et al. 2018b, app. C).
- ``DeterministicActor``: MLP torso → D outputs → tanh, scaled to ``[low, high]`` (TD3's μ(s)).
- ``QCritic``: Q(s, a) ``[B...]`` of the observation (flattened) concatenated with the action.
- ``TwinCritic``: C independent ``QCritic``s as one stacked parameter tree ``[C, ...]``, initialised from C
  keys and applied with ``jax.vmap``, so the two critics of a batch run as one batched matmul per layer
  (the first layer's input is shared: one matmul against the critics' kernels side by side).

Initialisation: flax's default (LeCun normal, zero bias) unless ``orthogonal_init`` (gain √2 hidden,
1 for the heads), as rejax's and CleanRL's SAC/TD3 use their framework's default.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxrl_policy.core.distributions import Gaussian
from jaxrl_policy.core.networks import MLPTorso, _dense, dummy_obs, flatten_obs

# rejax's SquashedGaussianPolicy (log_std_range=(-10, 2)); distributions.py clips again to its wider range
LOG_STD_MIN, LOG_STD_MAX = -10.0, 2.0


class SquashedGaussianActor(nn.Module):
    """``obs [B..., O...] -> Gaussian(mean [B..., D], log_std [B..., D])`` (before the tanh squash)."""

    action_dim: int
    hidden_sizes: Sequence[int] = (256, 256)
    activation: str = "relu"
    orthogonal_init: bool = False
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, obs):
        h = MLPTorso(tuple(self.hidden_sizes), self.activation, self.orthogonal_init, self.obs_ndim)(obs)
        out = _dense(2 * self.action_dim, 1.0, self.orthogonal_init)(h)  # both heads in one matmul
        mean, log_std = out[..., :self.action_dim], out[..., self.action_dim:]
        return Gaussian(mean=mean, log_std=jnp.clip(log_std, LOG_STD_MIN, LOG_STD_MAX))


class DeterministicActor(nn.Module):
    """``obs [B..., O...] -> action [B..., D]`` within ``[low, high]``: ``low + (tanh(x) + 1)(high − low)/2``."""

    action_dim: int
    low: tuple[float, ...]
    high: tuple[float, ...]
    hidden_sizes: Sequence[int] = (256, 256)
    activation: str = "relu"
    orthogonal_init: bool = False
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, obs):
        h = MLPTorso(tuple(self.hidden_sizes), self.activation, self.orthogonal_init, self.obs_ndim)(obs)
        y = jnp.tanh(_dense(self.action_dim, 1.0, self.orthogonal_init)(h))
        low, high = jnp.asarray(self.low, y.dtype), jnp.asarray(self.high, y.dtype)
        return low + (y + 1.0) * (high - low) / 2.0


class QCritic(nn.Module):
    """``(obs [B..., O...], action [B..., D]) -> Q [B...]``."""

    hidden_sizes: Sequence[int] = (256, 256)
    activation: str = "relu"
    orthogonal_init: bool = False
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, obs, action):
        x = jnp.concatenate([flatten_obs(obs, self.obs_ndim), action.astype(jnp.float32)], -1)
        h = MLPTorso(tuple(self.hidden_sizes), self.activation, self.orthogonal_init, obs_ndim=1)(x)
        return _dense(1, 1.0, self.orthogonal_init)(h)[..., 0]


class TwinCritic(NamedTuple):
    """C critics as one parameter tree with a leading ``[C]`` axis (pure functions)."""

    init: Callable[[jax.Array], Any]  # key -> params [C, ...] (C independent initialisations)
    apply: Callable[..., jax.Array]  # (params [C, ...], obs [B, O...], action [B, D]) -> Q [C, B]
    apply_one: Callable[..., jax.Array]  # (params [C, ...], i, obs, action) -> Q [B] of critic i (static i)


def make_twin_critic(net: QCritic, obs_shape: tuple[int, ...], action_dim: int, num: int = 2) -> TwinCritic:
    """``num`` independent copies of ``net``: initialised from ``num`` keys and applied with ``jax.vmap``."""
    apply1: Callable[..., Any] = net.apply
    example = (dummy_obs(obs_shape), jnp.zeros((1, action_dim), jnp.float32))

    def init(key):
        return jax.vmap(lambda k: net.init(k, *example))(jax.random.split(key, num))

    def apply(params, obs, action):
        return jax.vmap(apply1, (0, None, None))(params, obs, action)

    def apply_one(params, i: int, obs, action):
        return apply1(jax.tree.map(lambda x: x[i], params), obs, action)

    return TwinCritic(init=init, apply=apply, apply_one=apply_one)


def action_dim(spec) -> int:
    """D of a continuous action space (``spec.action_shape`` flattened)."""
    return int(np.prod(spec.action_shape or (1,)))


def make_squashed_gaussian_actor(cfg, spec) -> SquashedGaussianActor:
    """SAC's actor for a config's network fields and an env ``spec``."""
    return SquashedGaussianActor(action_dim=action_dim(spec), hidden_sizes=tuple(cfg.hidden_sizes),
                                 activation=cfg.activation, orthogonal_init=cfg.orthogonal_init,
                                 obs_ndim=len(spec.obs_shape))


def make_deterministic_actor(cfg, spec) -> DeterministicActor:
    """TD3's actor for a config's network fields and an env ``spec`` (its action bounds)."""
    return DeterministicActor(action_dim=action_dim(spec), low=tuple(spec.action_low), high=tuple(spec.action_high),
                              hidden_sizes=tuple(cfg.hidden_sizes), activation=cfg.activation,
                              orthogonal_init=cfg.orthogonal_init, obs_ndim=len(spec.obs_shape))


def make_critics(cfg, spec, num: int = 2) -> TwinCritic:
    """``num`` Q(s, a) critics for a config's network fields and an env ``spec``."""
    net = QCritic(hidden_sizes=tuple(cfg.hidden_sizes), activation=cfg.activation,
                  orthogonal_init=cfg.orthogonal_init, obs_ndim=len(spec.obs_shape))
    return make_twin_critic(net, spec.obs_shape, action_dim(spec), num)


__all__ = ["LOG_STD_MIN", "LOG_STD_MAX", "SquashedGaussianActor", "DeterministicActor", "QCritic", "TwinCritic",
           "make_twin_critic", "action_dim", "make_squashed_gaussian_actor", "make_deterministic_actor",
           "make_critics"]
