"""TD3 (Fujimoto et al. 2018): twin delayed deep deterministic policy gradient, as pure functions.

Shape legend: ``E`` envs, ``G`` critic steps per iteration, ``B`` replay batch, ``D`` action dimensions,
``C`` critics (2).

Storage and learning starts as SAC's (``sac.py``): a replay ring of transitions in the loop's carry, G =
replay_ratio × num_envs × num_steps critic steps per iteration once ``learning_starts`` env steps are
collected. Acting: before ``learning_starts`` uniform random actions within the bounds (the authors',
CleanRL's and rejax's warm-up); after it μ(s) + N(0, σ²) clipped to the bounds, σ = ``exploration_noise``
× the half-range h. Each critic step (Alg. 1):

1. critics: y = r + γ(1 − terminated) min_c Q⁻_c(s', ã'), ã' = clip(μ⁻(s') + clip(ε, −c h, c h), low, high),
   ε ~ N(0, (σ' h)²) — target-policy smoothing (eq. 15; ``losses.smoothed_target_action``, σ' =
   ``target_noise``, c = ``target_noise_clip``) with the target actor μ⁻ and target critics Q⁻
   (``losses.td3_target``, eq. 10); loss Σ_c ½(Q_c(s, a) − y)², mean over the batch;
2. every ``policy_delay`` critic steps (delayed policy updates, §5.2): the actor by the deterministic policy
   gradient through the first critic just updated, on the same minibatch (``losses.td3_actor_loss``), then
   Polyak averaging of both targets, θ⁻ ← τ θ + (1 − τ) θ⁻.

With one env, one step per iteration and replay_ratio 1 this is rejax's schedule (a train iteration of
``policy_delay`` env steps, each followed by a critic step, then the actor step and both targets).

The policy delay is counted in critic steps since learning started: critic step k (1-based; the agent's
``grad_steps`` after it) updates the actor when k is a multiple of ``policy_delay``. k is computed from
``env_step`` and ``learning_starts`` (iterations that learned × G), equal to ``grad_steps`` but unbatched
under a ``vmap`` over seeds, so the delayed update is a real branch (``lax.cond``), not both sides selected.
``policy_delay`` is traced: a sweep over it is one compile (where it is swept, both sides are computed).
The actor's learning-rate schedule (``anneal_lr``) counts its own steps at G / policy_delay per iteration.

Noise scales are in units of the half-range h of each action dimension, as CleanRL's and the authors' (×
max_action), so σ = 0.1, σ' = 0.2, c = 0.5 carry over to any bounds; rejax adds its noise in action units
(on Pendulum, h = 2: its 0.3, 0.2, 0.5 are 0.15, 0.1, 0.25 here).

Traced hyperparameters (``hp``): learning rate, its annealing, Adam ε, gradient clipping, γ, reward scale,
learning starts, τ, exploration noise, target noise and its clip, policy delay.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxrl_policy.algorithms.common import (
    ActorState,
    HParams,
    age_diagnostics,
    init_obs_stats,
    init_optimizer,
    make_update,
    mean_metrics,
    observe_obs_stats,
)
from jaxrl_policy.algorithms.sac import (
    ContinuousReplayConfig,
    bounds,
    discounts,
    gated_learn,
    scan_steps,
    twin_critic_loss,
    version_extras,
)
from jaxrl_policy.core import losses
from jaxrl_policy.core.config import Traced, is_int, is_number
from jaxrl_policy.core.envs import EnvSpec
from jaxrl_policy.core.networks import dummy_obs, module_kwargs
from jaxrl_policy.core.normalization import RunningStats, normalize
from jaxrl_policy.core.policies import make_critics, make_deterministic_actor
from jaxrl_policy.core.storage import make_ring
from jaxrl_policy.core.types import Algorithm, Params, PolicyExport, Transition

# rejax's tuned Pendulum-v1 TD3 (keraJLi/rejax configs/gymnax/pendulum.yaml, `td3`; algos/td3.py): one env, 10⁴
# transitions kept, uniform actions and no learning for the first 1000 steps, batch 100, lr 1e-3, polyak 0.95
# (τ 0.05), gradient norm clipped at 100, exploration noise 0.3, target noise 0.2 clipped at 0.5 (action units:
# here × 1/h, h = 2), policy delay 2, swish, (64, 64), observations normalised, 10⁴ steps.
TD3_PENDULUM: dict[str, Any] = dict(
    num_envs=1, num_steps=1, buffer_size=10_000, learning_starts=1000, batch_size=100, learning_rate=1e-3,
    replay_ratio=1.0, total_timesteps=10_000, gamma=0.99, tau=0.05, max_grad_norm=100.0, exploration_noise=0.15,
    target_noise=0.1, target_noise_clip=0.25, policy_delay=2, activation="silu", hidden_sizes=(64, 64),
    normalize_observations=True, adam_eps=1e-8, orthogonal_init=False)


@dataclass(frozen=True)
class TD3Config(ContinuousReplayConfig):
    """TD3 (Fujimoto et al. 2018): deterministic actor, twin critics, target-policy smoothing, delayed actor
    updates. Defaults: CleanRL's td3_continuous_action.py; Pendulum-v1: rejax's tuned config (``env_defaults``)."""

    learning_starts: int = 25_000
    exploration_noise: Traced[float] = 0.1
    """std of the Gaussian noise added to μ(s) when acting, in units of the action half-range."""
    target_noise: Traced[float] = 0.2
    """std of the target-policy smoothing noise, in units of the action half-range."""
    target_noise_clip: Traced[float] = 0.5
    """the smoothing noise is clipped to ± this, in units of the action half-range."""
    policy_delay: Traced[int] = 2
    """critic steps per actor step (and per update of both targets)."""

    algo: ClassVar[str] = "td3"

    @classmethod
    def env_defaults(cls, env_id: str) -> dict[str, Any]:
        """Pendulum-v1: rejax's tuned TD3 (``TD3_PENDULUM``); elsewhere the class defaults (CleanRL's)."""
        if env_id == "Pendulum-v1":
            return dict(TD3_PENDULUM)
        return super().env_defaults(env_id)

    def _problems(self):
        p = super()._problems()
        for name in ("exploration_noise", "target_noise", "target_noise_clip"):
            v = getattr(self, name)
            if not (is_number(v) and math.isfinite(v) and v >= 0):
                p.append((name, v, "must be a finite number >= 0"))
        if not (is_int(self.policy_delay) and self.policy_delay >= 1):
            p.append(("policy_delay", self.policy_delay, "must be an integer >= 1"))
        return p


class TD3State(NamedTuple):
    actor_params: Params  # deterministic policy μ
    critic_params: Params  # twin critics, leaves [C, ...]
    actor_target: Params  # target policy μ⁻
    critic_target: Params  # target critics Q⁻, leaves [C, ...]
    actor_opt: optax.OptState
    critic_opt: optax.OptState
    grad_steps: jax.Array  # int32 scalar: critic steps taken (actor steps: grad_steps // policy_delay)
    obs_stats: RunningStats | None  # running observation statistics (normalize_observations)


class TD3Losses(NamedTuple):
    """TD3's pieces as pure functions of parameters (``make_td3`` builds the updates from them; tests call them)."""

    actor: Callable  # (actor_params, hp, critic_params, obs) -> (−mean Q_1(s, μ(s)), {})
    critic: Callable  # (critic_params, hp, obs, action, y) -> (Σ_c ½(Q_c − y)², {"q_mean"})
    target: Callable  # (actor_target, critic_target, hp, b: Transition, next_obs, key) -> y [B]
    target_action: Callable  # (actor_target, hp, next_obs, key) -> smoothed ã' [B, D]


def td3_losses(cfg: TD3Config, spec: EnvSpec) -> TD3Losses:
    """TD3's losses and targets for ``cfg``'s networks on an env of ``spec`` (deterministic actions in its bounds)."""
    actor_apply: Callable[..., Any] = make_deterministic_actor(cfg, spec).apply
    critic = make_critics(cfg, spec)
    low, high = (jnp.asarray(x) for x in bounds(spec))

    def actor(params, hp: HParams, critic_params, obs):
        return losses.td3_actor_loss(critic.apply_one(critic_params, 0, obs, actor_apply(params, obs))), {}

    def target_action(actor_target, hp: HParams, next_obs, key):
        return losses.smoothed_target_action(key, actor_apply(actor_target, next_obs), hp["target_noise"],
                                             hp["target_noise_clip"], low, high)

    def target(actor_target, critic_target, hp: HParams, b: Transition, next_obs, key):
        q_t = critic.apply(critic_target, next_obs, target_action(actor_target, hp, next_obs, key))  # [C, B]
        reward, discount_t = discounts(b, hp)
        return losses.td3_target(reward, discount_t, q_t[0], q_t[1])

    return TD3Losses(actor=actor, critic=twin_critic_loss(critic), target=target, target_action=target_action)


def critic_steps_before(env_step, hp: HParams, steps_per_iteration: int, G: int):
    """Critic steps taken before the iteration that ends at ``env_step`` (one that learns): G per iteration
    since the first with ``env_step >= learning_starts`` — the agent's ``grad_steps``, from unbatched values."""
    first = jnp.maximum(1, (hp["learning_starts"] + steps_per_iteration - 1) // steps_per_iteration)
    return G * (env_step // steps_per_iteration - first)


def make_td3_gradient_step(cfg: TD3Config, spec: EnvSpec) -> Callable:
    """``step(state, b: Transition [B], key, k, hp) -> (state, metrics)``: critic step ``k`` (1-based), and the
    actor and both targets where ``k`` is a multiple of ``policy_delay`` (module docstring)."""
    L = td3_losses(cfg, spec)
    G, n = cfg.gradient_steps_per_iteration, cfg.num_iterations
    update_critic = make_update(L.critic, G, n)

    def step(state: TD3State, b: Transition, key, k, hp: HParams):
        # the actor's schedule counts actor steps: G / policy_delay per iteration (built here: the delay is traced)
        update_actor = make_update(L.actor, G / hp["policy_delay"], n)
        obs, next_obs = normalize(state.obs_stats, b.obs), normalize(state.obs_stats, b.next_obs)
        y = L.target(state.actor_target, state.critic_target, hp, b, next_obs, key)
        critic_params, critic_opt, cm = update_critic(state.critic_params, state.critic_opt, hp, obs, b.action, y)

        def delayed(_):
            actor_params, actor_opt, am = update_actor(state.actor_params, state.actor_opt, hp, critic_params, obs)
            return (actor_params, actor_opt, optax.incremental_update(actor_params, state.actor_target, hp["tau"]),
                    optax.incremental_update(critic_params, state.critic_target, hp["tau"]), am["loss"],
                    am["grad_norm"], jnp.ones((), jnp.float32))

        def hold(_):
            nan = jnp.full((), jnp.nan, jnp.float32)
            return (state.actor_params, state.actor_opt, state.actor_target, state.critic_target, nan, nan,
                    jnp.zeros((), jnp.float32))

        actor_params, actor_opt, actor_target, critic_target, actor_loss, actor_grad_norm, updated = jax.lax.cond(
            k % hp["policy_delay"] == 0, delayed, hold, None)
        new = state._replace(actor_params=actor_params, critic_params=critic_params, actor_target=actor_target,
                             critic_target=critic_target, actor_opt=actor_opt, critic_opt=critic_opt)
        metrics = {"loss": cm["loss"], "grad_norm": cm["grad_norm"], "q_mean": cm["q_mean"],
                   "actor_loss": actor_loss, "actor_grad_norm": actor_grad_norm, "actor_updates": updated}
        return new, metrics

    return step


def make_td3(cfg: TD3Config, spec: EnvSpec) -> Algorithm:
    actor_net = make_deterministic_actor(cfg, spec)
    actor_apply: Callable[..., Any] = actor_net.apply
    critic = make_critics(cfg, spec)
    low, high = bounds(spec)
    half_range = (high - low) / 2
    G, spi = cfg.gradient_steps_per_iteration, cfg.steps_per_iteration
    gradient_step = make_td3_gradient_step(cfg, spec)

    def init(key):
        k_actor, k_critic = jax.random.split(key)
        actor_params = actor_net.init(k_actor, dummy_obs(spec.obs_shape))
        critic_params = critic.init(k_critic)
        return TD3State(actor_params=actor_params, critic_params=critic_params, actor_target=actor_params,
                        critic_target=critic_params, actor_opt=init_optimizer(actor_params),
                        critic_opt=init_optimizer(critic_params), grad_steps=jnp.zeros((), jnp.int32),
                        obs_stats=init_obs_stats(cfg, spec))

    def actor(state: TD3State, hp: HParams) -> ActorState:
        return ActorState(state.actor_params, state.grad_steps, state.obs_stats)

    def act(actor_state: ActorState, obs, carry, key, env_step, hp: HParams):
        mu = actor_apply(actor_state.params, normalize(actor_state.obs_stats, obs))  # [E, D]
        # One normal draw does both jobs: z is the exploration noise, and Φ(z) ~ U(0, 1) the warm-up's uniform
        # action (the two are never used for the same step).
        z = jax.random.normal(key, mu.shape, mu.dtype)
        noisy = jnp.clip(mu + hp["exploration_noise"] * half_range * z, low, high)
        uniform = low + jax.scipy.special.ndtr(z) * (high - low)
        action = jnp.where(env_step < hp["learning_starts"], uniform, noisy)
        return action, version_extras(actor_state, action), carry

    def train_step(state: TD3State, batch: Transition, key, env_step, hp: HParams):
        # batch: Transition [G, B]; critic step k = k0 + j + 1 for draw j
        k0 = critic_steps_before(env_step, hp, spi, G)

        def body(s, xs):
            b, key, j = xs
            return gradient_step(s, b, key, k0 + j + 1, hp)

        new, stats = scan_steps(body, state, (batch, jax.random.split(key, G), jnp.arange(G, dtype=jnp.int32)), G)
        grad_steps = state.grad_steps + G
        actor_loss, actor_grad_norm = stats.pop("actor_loss"), stats.pop("actor_grad_norm")
        metrics = mean_metrics(stats)
        metrics["actor_updates"] = stats["actor_updates"].sum()  # actor steps this iteration
        metrics["actor_loss"], metrics["actor_grad_norm"] = jnp.nanmean(actor_loss), jnp.nanmean(actor_grad_norm)
        metrics.update(age_diagnostics(state.grad_steps, batch.extras["version"]))
        metrics["grad_steps"] = grad_steps.astype(jnp.float32)
        return new._replace(grad_steps=grad_steps), metrics

    def greedy(state: TD3State, obs, carry, hp: HParams):  # μ(s), no noise
        return actor_apply(state.actor_params, normalize(state.obs_stats, obs)), carry

    def export(state: TD3State) -> PolicyExport:  # μ(s): the actor's output is the action
        return PolicyExport("DeterministicActor", module_kwargs(actor_net), state.actor_params, state.obs_stats,
                            "action")

    storage = make_ring(cfg.buffer_unrolls, "transitions", num_draws=G, batch_size=cfg.batch_size)
    return Algorithm(init=init, actor=actor, act=act, learn=gated_learn(train_step), greedy=greedy, storage=storage,
                     observe=observe_obs_stats if cfg.normalize_observations else None, export=export)
