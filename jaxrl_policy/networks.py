"""Networks: an MLP or small CNN torso with policy, value and Q heads (flax.linen).

Shape legend: ``B`` batch (any leading dims), ``O...`` observation shape, ``A`` actions.

Initialisation follows PPO practice (Engstrom et al. 2020; Huang et al. 2022, "The 37
implementation details of PPO"): orthogonal hidden layers with gain √2, policy head gain 0.01,
value head gain 1. With ``orthogonal_init=False`` flax's default (LeCun normal) is used, as
purejaxrl's DQN does.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
from flax.linen.initializers import constant, orthogonal

ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu, "gelu": nn.gelu, "silu": nn.silu}


def _dense(features: int, gain: float, ortho: bool) -> nn.Dense:
    if ortho:
        return nn.Dense(features, kernel_init=orthogonal(gain), bias_init=constant(0.0))
    return nn.Dense(features)


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


def torso_kind(obs_shape: tuple[int, ...], requested: str) -> str:
    """``auto`` picks the CNN for image observations ``[H, W, C]`` and the MLP otherwise."""
    if requested != "auto":
        return requested
    return "cnn" if len(obs_shape) == 3 else "mlp"


def dummy_obs(obs_shape):
    return jnp.zeros((1, *obs_shape), jnp.float32)
