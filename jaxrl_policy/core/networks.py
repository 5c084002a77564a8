"""Networks: an MLP or small CNN torso with policy, value and Q heads (flax.linen).

Shape legend: ``B...`` batch (any leading dims: ``[B]`` when acting, ``[T, M]`` in V-trace's
loss), ``O...`` observation shape (rank ``obs_ndim``), ``H, W, C`` image height, width and
channels, ``F`` conv features, ``A`` actions.

Initialisation follows PPO practice (Engstrom et al. 2020; Huang et al. 2022, "The 37
implementation details of PPO"): orthogonal hidden layers with gain √2, policy head gain 0.01,
value head gain 1. With ``orthogonal_init=False`` flax's default (LeCun normal) is used, as
purejaxrl's DQN does.

Two CPU-only code paths give the same values as flax's own layers, with the same parameter tree
(so checkpoints and initialisations are interchangeable): ``cpu_dot_general`` (``nn.Dense``'s
matmul with a cheaper weight gradient) and ``patch_conv_general_dilated`` (``nn.Conv``'s 3×3
convolution as patches + one matmul, ~20× faster than XLA:CPU's own convolution inside the
training loop). ``_dense`` / ``_conv`` pick them on the CPU backend only.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.linen.initializers import constant, orthogonal

from jaxrl_policy.core.distributions import Gaussian

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


_NHWC = ("NHWC", "HWIO", "NHWC")  # nn.Conv's layout for 2-D convolutions


def _patches(x, kh: int, kw: int, pads) -> jax.Array:
    """``[N, H, W, C] -> [N, H', W', kh·kw·C]`` stride-1 patches, features ordered ``(dy, dx, c)``.

    That order is an HWIO kernel's leading dims, so ``kernel.reshape(kh·kw·C, F)`` lines up with
    it without a transpose. Built from kh·kw shifted slices of the padded input: on XLA:CPU
    that is a few cheap copies (and its gradient a pad-and-add), where
    ``lax.conv_general_dilated_patches`` is itself a convolution (a one-hot depthwise kernel):
    1.6× slower for forward + weight gradient and 2–3× with the input gradient
    (benchmarks/conv.py, ``conv cgdp``).
    """
    (top, bottom), (left, right) = pads
    xp = jnp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    ho, wo = xp.shape[1] - kh + 1, xp.shape[2] - kw + 1
    return jnp.concatenate([xp[:, i:i + ho, j:j + wo, :] for i in range(kh) for j in range(kw)], axis=-1)


def patch_conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                               dimension_numbers=None, feature_group_count=1, batch_group_count=1, precision=None,
                               preferred_element_type=None):
    """``nn.Conv``'s ``lax.conv_general_dilated`` as patches + one matmul (same values, float rounding).

    ``lhs [N, H, W, C]``, ``rhs [kh, kw, C, F]`` (HWIO) → ``[N, H', W', F]``: the convolution is
    the dense layer ``patches [N·H'·W', kh·kw·C] @ kernel [kh·kw·C, F]`` (im2col; Chellapilla et
    al. 2006). Why: inside the training loop's ``lax.scan`` XLA:CPU's own convolution is an order
    of magnitude slower than outside it (MinAtar PPO minibatch, forward + weight gradient: ~500 ms
    in the loop, ~40 ms as a call of its own; this matmul ~25 ms in the loop; benchmarks/conv.py).
    ``_matmul``'s transposed-gradient trick measured no gain here (the weight gradient is a
    ``[kh·kw·C, N·H'·W']`` by ``[N·H'·W', F]`` dot either way), so the plain matmul is used.
    Anything other than a 2-D, stride-1, undilated, ungrouped NHWC convolution goes to
    ``lax.conv_general_dilated`` unchanged.
    """
    plain = lhs.ndim == 4 and rhs.ndim == 4 and feature_group_count == 1 and batch_group_count == 1 \
        and precision is None and preferred_element_type is None \
        and all(s == 1 for s in window_strides) \
        and all(d == 1 for d in (lhs_dilation or (1, 1))) and all(d == 1 for d in (rhs_dilation or (1, 1))) \
        and dimension_numbers == jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, _NHWC)
    if not plain:
        return jax.lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                                            dimension_numbers, feature_group_count, batch_group_count,
                                            precision, preferred_element_type)
    kh, kw, c, f = rhs.shape
    pads = jax.lax.padtype_to_pads(lhs.shape[1:3], (kh, kw), (1, 1), padding) if isinstance(padding, str) \
        else padding
    return jnp.matmul(_patches(lhs, kh, kw, pads), rhs.reshape(kh * kw * c, f))


CONV_IMPLS = ("auto", "patches", "xla")


def conv_impl(requested: str = "auto") -> str:
    """``auto`` → ``patches`` on the CPU backend (XLA:CPU's convolution is slow), ``xla`` elsewhere."""
    if requested not in CONV_IMPLS:
        raise ValueError(f"conv_impl = {requested!r}: must be one of {', '.join(CONV_IMPLS)}")
    if requested != "auto":
        return requested
    return "patches" if jax.default_backend() == "cpu" else "xla"


def _conv(features: int, gain: float, ortho: bool, impl: str) -> nn.Conv:
    # Always an nn.Conv (so the parameters are Conv_0/kernel [3, 3, C, F] and Conv_0/bias [F]
    # either way); only the primitive it calls differs.
    kw: dict[str, Any] = {"conv_general_dilated": patch_conv_general_dilated} if conv_impl(impl) == "patches" else {}
    if ortho:
        return nn.Conv(features, (3, 3), kernel_init=orthogonal(gain), bias_init=constant(0.0), **kw)
    return nn.Conv(features, (3, 3), **kw)


def flatten_obs(x, obs_ndim: int) -> jax.Array:
    """``[B..., O...] -> [B..., prod(O)]`` with ``O`` the trailing ``obs_ndim`` dims (0: a scalar → 1 feature)."""
    batch = x.shape[:x.ndim - obs_ndim]
    return x.reshape(batch + (math.prod(x.shape[x.ndim - obs_ndim:]),))


class MLPTorso(nn.Module):
    """``[B..., O...] -> [B..., hidden_sizes[-1]]``; observations of any rank are flattened per sample.

    ``obs_ndim`` is the rank of one observation (``len(spec.obs_shape)``), so the same module
    flattens ``[B, 10, 10, 4]`` and ``[T, M, 10, 10, 4]`` alike; without it a ``[B, H, W, C]``
    input would go through the dense layers along ``C`` only and come out ``[B, H, W, …]``.
    ``layer_norm``: Dense → LayerNorm → activation per hidden layer (Ba et al. 2016; what PQN relies on
    in place of a target network, Gallici et al. 2025 §4); off, the parameters are those without it.
    """

    hidden_sizes: Sequence[int]
    activation: str = "tanh"
    orthogonal_init: bool = True
    obs_ndim: int = 1
    layer_norm: bool = False

    @nn.compact
    def __call__(self, x):
        act = ACTIVATIONS[self.activation]
        x = flatten_obs(x, self.obs_ndim)
        for h in self.hidden_sizes:
            x = _dense(h, np.sqrt(2), self.orthogonal_init)(x)
            x = act(nn.LayerNorm()(x) if self.layer_norm else x)
        return x


class CNNTorso(nn.Module):
    """MinAtar-sized torso (Young & Tian 2019): one 3×3 SAME conv with 16 channels, then an MLP.

    ``[B..., H, W, C] -> [B..., hidden_sizes[-1]]``. ``conv_impl`` picks the convolution's code
    path (``auto``: by backend, see ``conv_impl``; ``patches`` / ``xla`` force one, for tests);
    the parameters and values are the same on both. ``layer_norm``: a LayerNorm over the conv's
    features before its activation and in every dense layer (as purejaxql's MinAtar PQN network).
    """

    hidden_sizes: Sequence[int]
    activation: str = "relu"
    orthogonal_init: bool = True
    channels: int = 16
    conv_impl: str = "auto"
    layer_norm: bool = False

    @nn.compact
    def __call__(self, x):
        act = ACTIVATIONS[self.activation]
        x = _conv(self.channels, np.sqrt(2), self.orthogonal_init, self.conv_impl)(x)  # [B..., H, W, F]
        x = act(nn.LayerNorm()(x) if self.layer_norm else x)
        return MLPTorso(self.hidden_sizes, self.activation, self.orthogonal_init, obs_ndim=3,
                        layer_norm=self.layer_norm)(x)


def make_torso(kind: str, hidden_sizes, activation, orthogonal_init, obs_ndim: int = 1,
               layer_norm: bool = False) -> nn.Module:
    if kind == "cnn":
        return CNNTorso(tuple(hidden_sizes), activation, orthogonal_init, layer_norm=layer_norm)
    return MLPTorso(tuple(hidden_sizes), activation, orthogonal_init, obs_ndim, layer_norm=layer_norm)


class ActorCritic(nn.Module):
    """Policy parameters and state value ``[B]`` (plus the next recurrent state).

    ``__call__(obs [B, O...], carry=None) -> (policy, value [B], carry)``. ``policy`` is logits ``[B, A]``
    (discrete) or ``distributions.Gaussian(mean [B, D], log_std [B, D])`` (continuous: ``num_actions``
    None, ``action_dim`` D; the log-std is one learned vector, or a head when ``state_dependent_std``).
    ``share_torso=False`` (purejaxrl's layout) gives actor and critic their own torsos. With
    ``rnn_size`` > 0 the torso feeds a GRU core (Cho et al. 2014) shared by both heads; ``carry`` is its
    state ``[B, rnn_size]`` and must be given (``initial_carry``). ``obs_ndim`` is the rank of one
    observation (the MLP torso flattens that many trailing dims).
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
    obs_ndim: int = 1

    def setup(self):
        mk = lambda: make_torso(self.torso, self.hidden_sizes, self.activation, self.orthogonal_init,  # noqa: E731
                                self.obs_ndim)
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
    """``[B..., O...]`` → action values ``[B..., A]`` (``obs_ndim`` as in ``ActorCritic``; ``layer_norm``:
    a LayerNorm in every hidden layer of the torso, see ``MLPTorso``)."""

    num_actions: int
    hidden_sizes: Sequence[int] = (120, 84)
    activation: str = "relu"
    orthogonal_init: bool = False
    torso: str = "mlp"
    obs_ndim: int = 1
    layer_norm: bool = False

    @nn.compact
    def __call__(self, obs):
        x = make_torso(self.torso, self.hidden_sizes, self.activation, self.orthogonal_init, self.obs_ndim,
                       self.layer_norm)(obs)
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
                       log_std_init=getattr(cfg, "log_std_init", 0.0), rnn_size=cfg.rnn_size if recurrent else 0,
                       obs_ndim=len(spec.obs_shape))


def make_q_network(cfg, spec) -> QNetwork:
    """The Q-network a config asks for (DQN, PQN; ``cfg.layer_norm`` where the config has it)."""
    return QNetwork(num_actions=spec.num_actions, hidden_sizes=tuple(cfg.hidden_sizes), activation=cfg.activation,
                    orthogonal_init=cfg.orthogonal_init, torso=torso_kind(spec.obs_shape, cfg.torso),
                    obs_ndim=len(spec.obs_shape), layer_norm=getattr(cfg, "layer_norm", False))


def module_kwargs(module: nn.Module) -> dict:
    """A flax module's own fields (what rebuilds it: ``type(module)(**module_kwargs(module))``)."""
    return {f.name: getattr(module, f.name) for f in dataclasses.fields(module) if f.name not in ("parent", "name")}


def torso_kind(obs_shape: tuple[int, ...], requested: str) -> str:
    """``auto`` picks the CNN for image observations ``[H, W, C]`` and the MLP otherwise."""
    if requested != "auto":
        return requested
    return "cnn" if len(obs_shape) == 3 else "mlp"


def dummy_obs(obs_shape):
    return jnp.zeros((1, *obs_shape), jnp.float32)
