"""Networks: an MLP or small CNN torso with policy, value and Q heads (flax.linen).

Shape legend: ``B`` batch (any leading dims), ``O...`` observation shape, ``A`` actions.

Initialisation follows PPO practice (Engstrom et al. 2020; Huang et al. 2022, "The 37
implementation details of PPO"): orthogonal hidden layers with gain √2, policy head gain 0.01,
value head gain 1. With ``orthogonal_init=False`` flax's default (LeCun normal) is used, as
purejaxrl's DQN does.
"""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.linen.initializers import constant, orthogonal

ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu, "gelu": nn.gelu, "silu": nn.silu}


@jax.custom_vjp
def _matmul(x, w):
    return jnp.matmul(x, w)


def _matmul_fwd(x, w):
    return jnp.matmul(x, w), (x, w)


def _matmul_bwd(res, g):
    # dW = xᵀ g contracts the batch axis, dim 0 of both operands. XLA folds a plain transpose
    # into the dot, and XLA:CPU then runs that "TN" dot through a slow generic path (measured:
    # 54 µs for DQN's [128,120]ᵀ[128,84], 3× the forward dot). Materialising xᵀ behind an
    # optimization barrier keeps the transpose a cheap copy and the dot in the fast NN form.
    x, w = res
    x2, g2 = x.reshape(-1, x.shape[-1]), g.reshape(-1, g.shape[-1])
    xt = jax.lax.optimization_barrier(x2.T)
    return jnp.matmul(g, w.T), jnp.matmul(xt, g2)


_matmul.defvjp(_matmul_fwd, _matmul_bwd)


def cpu_dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None, **_):
    """``nn.Dense``'s ``x @ W`` with the CPU-friendly gradient above (same values, ~1 ulp)."""
    (lc, rc), (lb, rb) = dimension_numbers
    if tuple(lc) != (lhs.ndim - 1,) or tuple(rc) != (0,) or lb or rb:  # not Dense's contraction
        return jax.lax.dot_general(lhs, rhs, dimension_numbers, precision, preferred_element_type)
    return _matmul(lhs, rhs)


def _dense(features: int, gain: float, ortho: bool) -> nn.Dense:
    # The CPU gradient path only where XLA:CPU compiles it; GPU/TPU keep the fused transpose.
    kw: dict[str, Any] = {"dot_general": cpu_dot_general} if jax.default_backend() == "cpu" else {}
    if ortho:
        return nn.Dense(features, kernel_init=orthogonal(gain), bias_init=constant(0.0), **kw)
    return nn.Dense(features, **kw)


class MLPTorso(nn.Module):
    """``[B, O...] -> [B, hidden_sizes[-1]]``; flattens image-shaped observations."""

    hidden_sizes: Sequence[int]
    activation: str = "tanh"
    orthogonal_init: bool = True

    @nn.compact
    def __call__(self, x):
        act = ACTIVATIONS[self.activation]
        for h in self.hidden_sizes:
            x = act(_dense(h, np.sqrt(2), self.orthogonal_init)(x))
        return x


class CNNTorso(nn.Module):
    """MinAtar-sized torso (Young & Tian 2019): one 3×3 conv with 16 channels, then an MLP.

    ``[B, H, W, C] -> [B, hidden_sizes[-1]]``.
    """

    hidden_sizes: Sequence[int]
    activation: str = "relu"
    orthogonal_init: bool = True
    channels: int = 16

    @nn.compact
    def __call__(self, x):
        act = ACTIVATIONS[self.activation]
        if self.orthogonal_init:
            conv = nn.Conv(self.channels, (3, 3), kernel_init=orthogonal(np.sqrt(2)), bias_init=constant(0.0))
        else:
            conv = nn.Conv(self.channels, (3, 3))
        x = act(conv(x))
        x = x.reshape(x.shape[:-3] + (-1,))
        return MLPTorso(self.hidden_sizes, self.activation, self.orthogonal_init)(x)


def make_torso(kind: str, hidden_sizes, activation, orthogonal_init) -> nn.Module:
    if kind == "cnn":
        return CNNTorso(tuple(hidden_sizes), activation, orthogonal_init)
    return MLPTorso(tuple(hidden_sizes), activation, orthogonal_init)


class ActorCritic(nn.Module):
    """Policy parameters and state value ``[B]`` (plus the next recurrent state).

    ``__call__(obs [B, O...], carry=None) -> (policy, value [B], carry)``. ``policy`` is logits ``[B, A]``
    (discrete) or ``distributions.Gaussian(mean [B, D], log_std [B, D])`` (continuous: ``num_actions``
    None, ``action_dim`` D; the log-std is one learned vector, or a head when ``state_dependent_std``).
    ``share_torso=False`` (purejaxrl's layout) gives actor and critic their own torsos. With
    ``rnn_size`` > 0 the torso feeds a GRU core (Cho et al. 2014) shared by both heads; ``carry`` is its
    state ``[B, rnn_size]`` and must be given (``initial_carry``).
    """

    num_actions: int | None
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    orthogonal_init: bool = True
    torso: str = "mlp"
    share_torso: bool = False
    action_dim: int = 0
    state_dependent_std: bool = False
    log_std_init: float = 0.0
    rnn_size: int = 0

    def setup(self):
        mk = lambda: make_torso(self.torso, self.hidden_sizes, self.activation, self.orthogonal_init)  # noqa: E731
        self.actor_torso = mk()
        if not self.share_torso and not self.rnn_size:
            self.critic_torso = mk()
        if self.rnn_size:
            self.core = nn.GRUCell(self.rnn_size)
        self.policy_head = _dense(self.num_actions or self.action_dim, 0.01, self.orthogonal_init)
        if self.num_actions is None and self.state_dependent_std:
            self.log_std_head = _dense(self.action_dim, 0.01, self.orthogonal_init)
        elif self.num_actions is None:
            self.log_std = self.param("log_std", constant(self.log_std_init), (self.action_dim,))
        self.value_head = _dense(1, 1.0, self.orthogonal_init)

    def _policy(self, h):
        out = self.policy_head(h)
        if self.num_actions is not None:
            return out
        from jaxrl_policy.distributions import Gaussian
        log_std = self.log_std_head(h) if self.state_dependent_std else jnp.broadcast_to(self.log_std, out.shape)
        return Gaussian(mean=out, log_std=log_std)

    def __call__(self, obs, carry=None):
        if self.rnn_size:
            carry, h = self.core(carry, self.actor_torso(obs))
            return self._policy(h), self.value_head(h)[..., 0], carry
        return self._policy(self.actor_torso(obs)), self.value(obs), carry

    def value(self, obs, carry=None):
        """V(obs) ``[B]`` (a recurrent net: from ``carry``, the state before ``obs``)."""
        if self.rnn_size:
            return self(obs, carry)[1]
        torso = self.actor_torso if self.share_torso else self.critic_torso
        return self.value_head(torso(obs))[..., 0]

    def initial_carry(self, batch: int):
        """The recurrent state at an episode's start: zeros ``[batch, rnn_size]`` (None without a core)."""
        return jnp.zeros((batch, self.rnn_size), jnp.float32) if self.rnn_size else None


class QNetwork(nn.Module):
    """Action values ``[B, A]``."""

    num_actions: int
    hidden_sizes: Sequence[int] = (120, 84)
    activation: str = "relu"
    orthogonal_init: bool = False
    torso: str = "mlp"

    @nn.compact
    def __call__(self, obs):
        x = make_torso(self.torso, self.hidden_sizes, self.activation, self.orthogonal_init)(obs)
        return _dense(self.num_actions, 1.0, self.orthogonal_init)(x)


def make_actor_critic(cfg, spec) -> ActorCritic:
    """The actor-critic network a config asks for (PPO, V-trace): ``cfg`` network fields, ``spec`` the env's.

    ``torso = "gru"``: an MLP torso then a GRU core of ``rnn_size`` units.
    """
    recurrent = cfg.torso == "gru"
    return ActorCritic(num_actions=spec.num_actions, hidden_sizes=tuple(cfg.hidden_sizes), activation=cfg.activation,
                       orthogonal_init=cfg.orthogonal_init,
                       torso="mlp" if recurrent else torso_kind(spec.obs_shape, cfg.torso),
                       share_torso=cfg.share_torso, action_dim=int(np.prod(spec.action_shape or (0,))),
                       state_dependent_std=getattr(cfg, "state_dependent_std", False),
                       log_std_init=getattr(cfg, "log_std_init", 0.0), rnn_size=cfg.rnn_size if recurrent else 0)


def make_q_network(cfg, spec) -> QNetwork:
    """The Q-network a config asks for (DQN)."""
    return QNetwork(num_actions=spec.num_actions, hidden_sizes=tuple(cfg.hidden_sizes), activation=cfg.activation,
                    orthogonal_init=cfg.orthogonal_init, torso=torso_kind(spec.obs_shape, cfg.torso))


def torso_kind(obs_shape: tuple[int, ...], requested: str) -> str:
    """``auto`` picks the CNN for image observations ``[H, W, C]`` and the MLP otherwise."""
    if requested != "auto":
        return requested
    return "cnn" if len(obs_shape) == 3 else "mlp"


def dummy_obs(obs_shape):
    return jnp.zeros((1, *obs_shape), jnp.float32)
