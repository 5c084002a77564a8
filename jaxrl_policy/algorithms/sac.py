"""SAC (Haarnoja et al. 2018a, 2018b) for continuous actions, as pure functions; and the replay config TD3 shares.

Shape legend: ``E`` envs, ``G`` gradient steps per iteration, ``B`` replay batch, ``D`` action dimensions,
``C`` critics (2).

Storage: the ring of unrolls sampled as uniform ``transitions`` (a replay buffer, as DQN's), held in the
loop's carry. Acting: a sample of the tanh-squashed Gaussian policy from the first step (no uniform
warm-up: rejax's SAC). Learning starts once ``learning_starts`` env steps are collected (gated inside
``learn``; the ``learned`` metric is 0 before); then every iteration takes G = replay_ratio × num_envs ×
num_steps gradient steps (the update-to-data ratio), each on its own minibatch, in rejax's order
(``SAC.update``):

1. actor: J_π = mean_B(α log π(ã|s) − min_c Q_c(s, ã)) with ã = f_φ(ε; s) reparameterised and the current
   critics (``losses.sac_actor_loss``, Haarnoja et al. 2018b eq. 7); only the actor's parameters move;
2. critics: y = r + γ(1 − terminated)(min_c Q⁻_c(s', a') − α log π(a'|s')) with a' a fresh sample of the
   actor just updated and Q⁻ the target critics (``losses.sac_critic_target``, eqs. 3, 5); loss
   Σ_c ½(Q_c(s, a) − y)², mean over the batch (rejax); a time-limit truncation bootstraps from s';
3. temperature: log α by ``losses.sac_temperature_loss`` (eq. 18) on the actor step's log π, toward the
   target entropy H̄ = ``target_entropy_per_dim`` × D (−D: the paper's, rejax's and CleanRL's);
4. target critics: Polyak averaging after every gradient step, Q⁻ ← τ Q + (1 − τ) Q⁻ (rejax's
   ``polyak`` ρ is 1 − τ).

Each of the three is the house's ``make_update`` (global-norm clipping, Adam, the learning-rate schedule)
with its own optimizer state, at the one ``learning_rate`` (rejax: one optimiser setting for all three).
α = exp(log α), log α starts at 0 (α = 1).

Log-probabilities are densities of the action in normalised units, a/h ∈ [−1, 1] per dimension (h the
half-range): ``distributions.sample``'s log-density of the env-unit action plus Σ_d log h_d, i.e. the
density of tanh(u) itself, as in the SAC paper (actions in [−1, 1]), rejax and brax.training. The target
entropy −D then means the same for any bounds; CleanRL's log π includes −Σ_d log h_d, so its −D asks for
Σ_d log h_d nats less entropy (Pendulum: log 2).

Discrete SAC (Christodoulou 2019) is not here: a categorical actor, Q(s, ·) critics and expectations over
the actions in all three losses are a second set of networks and losses, not a few lines, so SAC refuses
discrete action spaces (``DISCRETE_ACTIONS = False``) by name, before compiling.

Traced hyperparameters (``hp``): learning rate, its annealing, Adam ε, gradient clipping, γ, reward scale,
learning starts, τ, target entropy.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxrl_policy.algorithms.common import (
    ActorState,
    HParams,
    ReplaySizes,
    age_diagnostics,
    init_obs_stats,
    init_optimizer,
    make_update,
    mean_metrics,
    nan_like,
    observe_obs_stats,
)
from jaxrl_policy.core import distributions as dist
from jaxrl_policy.core import losses
from jaxrl_policy.core.config import Activation, BaseConfig, Torso, Traced, is_int, is_number
from jaxrl_policy.core.distributions import ActionSpace
from jaxrl_policy.core.envs import EnvSpec, env_spec
from jaxrl_policy.core.networks import dummy_obs, module_kwargs
from jaxrl_policy.core.normalization import RunningStats, normalize
from jaxrl_policy.core.policies import TwinCritic, action_dim, make_critics, make_squashed_gaussian_actor
from jaxrl_policy.core.storage import make_ring
from jaxrl_policy.core.types import Algorithm, Params, PolicyExport, Transition


@dataclass(frozen=True)
class ContinuousReplayConfig(ReplaySizes, BaseConfig):
    """Fields of the replay-based actor-critics for continuous actions (SAC, TD3): the replay ring, the update-to-
    data ratio, learning starts, Polyak targets. General defaults: CleanRL's (sac_continuous_action.py,
    td3_continuous_action.py; Huang et al. 2022), one env, one gradient step per env step."""

    num_envs: int = 1
    num_steps: int = 1
    total_timesteps: int = 1_000_000
    learning_rate: float = 3e-4
    anneal_lr: bool = False
    adam_eps: float = 1e-8
    max_grad_norm: float | None = None
    hidden_sizes: tuple[int, ...] = (256, 256)
    activation: Activation = "relu"
    orthogonal_init: bool = False
    torso: Torso = "mlp"
    buffer_size: int = 1_000_000
    """replay capacity in transitions (rounded down to whole unrolls of num_envs × num_steps)."""
    batch_size: int = 256
    """transitions per gradient step."""
    replay_ratio: float = 1.0
    """gradient (critic) steps per env step, the update-to-data ratio; × num_envs × num_steps must be a whole
    number >= 1."""
    learning_starts: Traced[int] = 5_000
    """env steps collected before the first gradient step."""
    tau: Traced[float] = 0.005
    """Polyak step of the target networks, θ⁻ ← τ θ + (1 − τ) θ⁻ (rejax's polyak is 1 − τ)."""

    CONTINUOUS_ACTIONS: ClassVar[bool] = True
    DISCRETE_ACTIONS: ClassVar[bool] = False

    def _problems(self):
        p = super()._problems()
        for name in ("buffer_size", "batch_size"):
            if not (is_int(getattr(self, name)) and getattr(self, name) >= 1):
                p.append((name, getattr(self, name), "must be an integer >= 1"))
        if not (is_int(self.learning_starts) and self.learning_starts >= 0):
            p.append(("learning_starts", self.learning_starts, "must be an integer >= 0"))
        elif is_int(self.total_timesteps) and self.learning_starts >= self.total_timesteps:
            p.append(("learning_starts", self.learning_starts, f"must be < total_timesteps = {self.total_timesteps}"))
        if not (is_number(self.tau) and 0 < self.tau <= 1):
            p.append(("tau", self.tau, "must be in (0, 1]"))
        if self.torso not in ("mlp", "gru"):  # (gru: the base class names the rule)
            p.append(("torso", self.torso, f"{self.algo}'s networks are MLPs (observations are flattened): use mlp"))
        if is_int(self.num_envs) and is_int(self.num_steps) and self.num_envs > 0 < self.num_steps:
            spi = self.steps_per_iteration
            if is_int(self.buffer_size) and self.buffer_size < spi:
                p.append(("buffer_size", self.buffer_size, f"must hold one iteration: >= num_envs × num_steps = {spi}"))
            elif is_int(self.batch_size) and is_int(self.buffer_size) and self.batch_size > self.buffer_unrolls * spi:
                p.append(("batch_size", self.batch_size, f"must be <= buffer_size = {self.buffer_unrolls * spi}"))
            r = self.replay_ratio * spi if is_number(self.replay_ratio) else float("nan")
            if not (math.isfinite(r) and r >= 1 - 1e-9 and abs(r - round(r)) < 1e-6):
                p.append(("replay_ratio", self.replay_ratio, f"× num_envs × num_steps (= {spi}) must be a whole "
                                                             "number >= 1 of gradient steps per iteration"))
        if not any(q[0] == "env_id" for q in p):
            spec = env_spec(self.env_id)
            if spec.num_actions is None and not all(math.isfinite(x) for x in (*spec.action_low, *spec.action_high)):
                p.append(("env_id", self.env_id, f"{self.algo} needs finite action bounds; got "
                                                 f"[{spec.action_low}, {spec.action_high}]"))
        return p


# rejax's tuned Pendulum-v1 SAC (keraJLi/rejax configs/gymnax/pendulum.yaml, `sac`; algos/sac.py, networks.py):
# one env, 10⁴ transitions kept, learning from 256, batch 256, lr 0.01 (actor, critics and α), one gradient step
# per env step, polyak 0.98 (τ 0.02), swish, (64, 64), observations normalised, no gradient clipping, 10⁴ steps.
SAC_PENDULUM: dict[str, Any] = dict(
    num_envs=1, num_steps=1, buffer_size=10_000, learning_starts=256, batch_size=256, learning_rate=0.01,
    replay_ratio=1.0, total_timesteps=10_000, gamma=0.99, tau=0.02, activation="silu", hidden_sizes=(64, 64),
    normalize_observations=True, max_grad_norm=None, adam_eps=1e-8, orthogonal_init=False)


@dataclass(frozen=True)
class SACConfig(ContinuousReplayConfig):
    """Soft actor-critic (Haarnoja et al. 2018b): tanh-squashed Gaussian actor, twin critics with Polyak targets,
    learned temperature. Defaults: CleanRL's sac_continuous_action.py (one learning rate, 3e-4; no delayed actor
    updates); Pendulum-v1: rejax's tuned config (``env_defaults``)."""

    target_entropy_per_dim: Traced[float] = -1.0
    """target entropy of the policy per action dimension, in nats of the normalised action in [-1, 1]; the
    temperature α is tuned toward target_entropy_per_dim × D (−1: SAC's −D)."""

    algo: ClassVar[str] = "sac"

    @classmethod
    def env_defaults(cls, env_id: str) -> dict[str, Any]:
        """Pendulum-v1: rejax's tuned SAC (``SAC_PENDULUM``); elsewhere the class defaults (CleanRL's)."""
        if env_id == "Pendulum-v1":
            return dict(SAC_PENDULUM)
        return super().env_defaults(env_id)

    def _problems(self):
        p = super()._problems()
        if not (is_number(self.target_entropy_per_dim) and math.isfinite(self.target_entropy_per_dim)):
            p.append(("target_entropy_per_dim", self.target_entropy_per_dim, "must be a finite number"))
        return p


class SACState(NamedTuple):
    actor_params: Params  # squashed Gaussian policy
    critic_params: Params  # twin critics, leaves [C, ...]
    target_params: Params  # target critics Q⁻, leaves [C, ...]
    actor_opt: optax.OptState
    critic_opt: optax.OptState
    log_alpha: jax.Array  # float32 scalar: log of the temperature α
    alpha_opt: optax.OptState
    grad_steps: jax.Array  # int32 scalar: gradient steps taken (each: actor, critics, α, targets)
    obs_stats: RunningStats | None  # running observation statistics (normalize_observations)


# ---------------------------------------------------------------------------------------------
# what SAC and TD3 share
# ---------------------------------------------------------------------------------------------
def bounds(spec: EnvSpec) -> tuple[np.ndarray, np.ndarray]:
    """The action bounds ``[D]`` as float32 numpy arrays (constants of the program)."""
    return np.asarray(spec.action_low, np.float32), np.asarray(spec.action_high, np.float32)


def twin_critic_loss(critic: TwinCritic) -> Callable[..., tuple[jax.Array, dict]]:
    """``loss(params, hp, obs [B, O...], action [B, D], y [B]) -> (Σ_c ½(Q_c(s, a) − y)² mean over B, aux)``
    (rejax's critic loss: optax.l2_loss per critic, summed over the critics)."""
    def loss(params, hp: HParams, obs, action, y):
        q = critic.apply(params, obs, action)  # [C, B]
        return 0.5 * jnp.square(q - y).sum(0).mean(), {"q_mean": q.mean()}

    return loss


def discounts(b: Transition, hp: HParams) -> tuple[jax.Array, jax.Array]:
    """``(reward × reward_scale, γ(1 − terminated))`` ``[B]``: a truncation keeps γ and bootstraps from s'."""
    return b.reward * hp["reward_scale"], hp["gamma"] * (1.0 - b.terminated.astype(jnp.float32))


def gated_learn(train_step: Callable) -> Callable:
    """``Algorithm.learn`` from ``train_step(state, batch [G, B], key, env_step, hp) -> (state, metrics)``: a step
    once ``env_step >= learning_starts``, before that the state unchanged and NaN metrics (``grad_steps`` kept),
    and ``learned`` 1 / 0 (as DQN's). The predicate is unbatched unless learning_starts itself is swept."""
    def learn(state, batch: Transition, key, env_step, hp: HParams):
        def step(s, b, k):
            return train_step(s, b, k, env_step, hp)

        def wait(s, b, k):
            metrics = nan_like(jax.eval_shape(step, s, b, k)[1])
            metrics["grad_steps"] = s.grad_steps.astype(jnp.float32)
            return s, metrics

        on = env_step >= hp["learning_starts"]
        state, metrics = jax.lax.cond(on, step, wait, state, batch, key)
        metrics["learned"] = on.astype(jnp.float32)  # 0: still filling the buffer
        return state, metrics

    return learn


def version_extras(actor_state: ActorState, action: jax.Array) -> dict[str, jax.Array]:
    """``extras`` of an acting step: the acting parameters' version per env, for the data-age diagnostics."""
    return {"version": jnp.broadcast_to(actor_state.version, action.shape[:1])}


# ---------------------------------------------------------------------------------------------
# SAC
# ---------------------------------------------------------------------------------------------
class SACLosses(NamedTuple):
    """SAC's pieces as pure functions of parameters (``make_sac`` builds the updates from them; tests call them)."""

    sample: Callable  # (actor_params, obs [B, O...], key) -> (action [B, D], log π [B] in normalised units)
    actor: Callable  # (actor_params, hp, critic_params, obs, key, alpha) -> (J_π, {"log_prob": [B]})
    critic: Callable  # (critic_params, hp, obs, action, y) -> (Σ_c ½(Q_c − y)², {"q_mean"})
    temperature: Callable  # (log_alpha, hp, log_prob [B]) -> (J(α), {})
    target: Callable  # (actor_params, target_params, hp, b: Transition, next_obs, key, alpha) -> y [B]


def sac_losses(cfg: SACConfig, spec: EnvSpec) -> SACLosses:
    """SAC's losses and targets for ``cfg``'s networks on an env of ``spec`` (tanh-squashed actions in its bounds)."""
    actor_apply: Callable[..., Any] = make_squashed_gaussian_actor(cfg, spec).apply
    critic = make_critics(cfg, spec)
    low, high = bounds(spec)
    space = ActionSpace(num_actions=None, low=low, high=high, squash="tanh")
    log_half_range = float(np.sum(np.log((high.astype(np.float64) - low) / 2)))  # Σ_d log h_d
    D = action_dim(spec)

    def sample(params, obs, key):
        action, log_prob = dist.sample(key, actor_apply(params, obs), space)
        return action, log_prob + log_half_range  # the density of a/h ∈ [−1, 1] (module docstring)

    def actor(params, hp: HParams, critic_params, obs, key, alpha):
        action, log_prob = sample(params, obs, key)  # ã = f_φ(ε; s): the gradient flows through it
        q = critic.apply(critic_params, obs, action)  # [C, B]
        return losses.sac_actor_loss(q[0], q[1], log_prob, alpha), {"log_prob": log_prob}

    def temperature(log_alpha, hp: HParams, log_prob):
        return losses.sac_temperature_loss(log_alpha, log_prob, hp["target_entropy_per_dim"] * D), {}

    def target(actor_params, target_params, hp: HParams, b: Transition, next_obs, key, alpha):
        next_action, next_log_prob = sample(actor_params, next_obs, key)  # a' ~ π(·|s'), the current actor
        q_t = critic.apply(target_params, next_obs, next_action)  # [C, B]
        reward, discount_t = discounts(b, hp)
        return losses.sac_critic_target(reward, discount_t, q_t[0], q_t[1], next_log_prob, alpha)

    return SACLosses(sample=sample, actor=actor, critic=twin_critic_loss(critic), temperature=temperature,
                     target=target)


def scan_steps(step: Callable, carry, xs, num: int):
    """``lax.scan(step, carry, xs)`` over ``num`` gradient steps; one step is called directly (no loop in the
    program), its metrics given the scan's leading ``[1]`` axis."""
    if num == 1:
        carry, m = step(carry, jax.tree.map(lambda x: x[0], xs))
        return carry, jax.tree.map(lambda x: x[None], m)
    return jax.lax.scan(step, carry, xs)


def make_sac_gradient_step(cfg: SACConfig, spec: EnvSpec) -> Callable:
    """``step(state, b: Transition [B], key, hp) -> (state, metrics)``: one SAC gradient step in the module
    docstring's order (actor, critics, α, targets); ``key`` splits into the actor's sample and the next action's."""
    L = sac_losses(cfg, spec)
    G, n = cfg.gradient_steps_per_iteration, cfg.num_iterations
    update_actor, update_critic = make_update(L.actor, G, n), make_update(L.critic, G, n)
    update_alpha = make_update(L.temperature, G, n)

    def step(state: SACState, b: Transition, key, hp: HParams):
        k_actor, k_next = jax.random.split(key)
        obs, next_obs = normalize(state.obs_stats, b.obs), normalize(state.obs_stats, b.next_obs)
        alpha = jnp.exp(state.log_alpha)
        # 1. actor, with the current critics (the critics are an argument: only the actor's parameters move)
        actor_params, actor_opt, am = update_actor(state.actor_params, state.actor_opt, hp, state.critic_params, obs,
                                                   k_actor, alpha)
        log_prob = am.pop("log_prob")
        # 2. critics, toward targets from the target critics and a fresh action of the actor just updated
        y = L.target(actor_params, state.target_params, hp, b, next_obs, k_next, alpha)
        critic_params, critic_opt, cm = update_critic(state.critic_params, state.critic_opt, hp, obs, b.action, y)
        # 3. temperature, on the actor step's log π
        log_alpha, alpha_opt, tm = update_alpha(state.log_alpha, state.alpha_opt, hp, log_prob)
        # 4. Polyak targets
        target_params = optax.incremental_update(critic_params, state.target_params, hp["tau"])
        new = state._replace(actor_params=actor_params, critic_params=critic_params, target_params=target_params,
                             actor_opt=actor_opt, critic_opt=critic_opt, log_alpha=log_alpha, alpha_opt=alpha_opt)
        metrics = {"loss": cm["loss"], "grad_norm": cm["grad_norm"], "q_mean": cm["q_mean"],
                   "actor_loss": am["loss"], "actor_grad_norm": am["grad_norm"], "alpha": alpha,
                   "alpha_loss": tm["loss"], "entropy": -log_prob.mean()}
        return new, metrics

    return step


def make_sac(cfg: SACConfig, spec: EnvSpec) -> Algorithm:
    actor_net = make_squashed_gaussian_actor(cfg, spec)
    actor_apply: Callable[..., Any] = actor_net.apply
    critic = make_critics(cfg, spec)
    low, high = bounds(spec)
    space = ActionSpace(num_actions=None, low=low, high=high, squash="tanh")
    G = cfg.gradient_steps_per_iteration
    gradient_step = make_sac_gradient_step(cfg, spec)

    def init(key):
        k_actor, k_critic = jax.random.split(key)
        actor_params = actor_net.init(k_actor, dummy_obs(spec.obs_shape))
        critic_params = critic.init(k_critic)
        log_alpha = jnp.zeros((), jnp.float32)  # α = 1 (rejax, CleanRL)
        return SACState(actor_params=actor_params, critic_params=critic_params, target_params=critic_params,
                        actor_opt=init_optimizer(actor_params), critic_opt=init_optimizer(critic_params),
                        log_alpha=log_alpha, alpha_opt=init_optimizer(log_alpha), grad_steps=jnp.zeros((), jnp.int32),
                        obs_stats=init_obs_stats(cfg, spec))

    def actor(state: SACState, hp: HParams) -> ActorState:
        return ActorState(state.actor_params, state.grad_steps, state.obs_stats)

    def act(actor_state: ActorState, obs, carry, key, env_step, hp: HParams):
        policy = actor_apply(actor_state.params, normalize(actor_state.obs_stats, obs))
        action, _ = dist.sample(key, policy, space)
        return action, version_extras(actor_state, action), carry

    def train_step(state: SACState, batch: Transition, key, env_step, hp: HParams):
        # batch: Transition [G, B]; one gradient step per draw (the replay ratio)
        def body(s, xs):
            b, k = xs
            return gradient_step(s, b, k, hp)

        new, stats = scan_steps(body, state, (batch, jax.random.split(key, G)), G)
        grad_steps = state.grad_steps + G
        metrics = mean_metrics(stats)
        metrics.update(age_diagnostics(state.grad_steps, batch.extras["version"]))
        metrics["grad_steps"] = grad_steps.astype(jnp.float32)
        return new._replace(grad_steps=grad_steps), metrics

    def greedy(state: SACState, obs, carry, hp: HParams):  # tanh of the mean, scaled to the bounds
        return dist.mode(actor_apply(state.actor_params, normalize(state.obs_stats, obs)), space), carry

    def export(state: SACState) -> PolicyExport:  # the actor; its squashed mean is the greedy action
        return PolicyExport("SquashedGaussianActor", module_kwargs(actor_net), state.actor_params, state.obs_stats,
                            "squashed_mode")

    storage = make_ring(cfg.buffer_unrolls, "transitions", num_draws=G, batch_size=cfg.batch_size)
    return Algorithm(init=init, actor=actor, act=act, learn=gated_learn(train_step), greedy=greedy, storage=storage,
                     observe=observe_obs_stats if cfg.normalize_observations else None, export=export)
