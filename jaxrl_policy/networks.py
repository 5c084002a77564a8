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
    """Policy logits ``[B, A]`` and state value ``[B]``.

    ``share_torso=False`` (purejaxrl's layout) gives actor and critic their own torsos.
    """

    num_actions: int
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    orthogonal_init: bool = True
    torso: str = "mlp"
    share_torso: bool = False

    def setup(self):
        mk = lambda: make_torso(self.torso, self.hidden_sizes, self.activation, self.orthogonal_init)  # noqa: E731
        self.actor_torso = mk()
        if not self.share_torso:
            self.critic_torso = mk()
        self.policy_head = _dense(self.num_actions, 0.01, self.orthogonal_init)
        self.value_head = _dense(1, 1.0, self.orthogonal_init)

    def __call__(self, obs):
        logits = self.policy_head(self.actor_torso(obs))
        return logits, self.value(obs)

    def value(self, obs):
        torso = self.actor_torso if self.share_torso else self.critic_torso
        return self.value_head(torso(obs))[..., 0]


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
    """The actor-critic network a config asks for (PPO, V-trace): ``cfg`` network fields, ``spec`` the env's."""
    return ActorCritic(num_actions=spec.num_actions, hidden_sizes=tuple(cfg.hidden_sizes), activation=cfg.activation,
                       orthogonal_init=cfg.orthogonal_init, torso=torso_kind(spec.obs_shape, cfg.torso),
                       share_torso=cfg.share_torso)


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
