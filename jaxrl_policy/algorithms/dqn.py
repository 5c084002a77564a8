"""DQN (Mnih et al. 2015) with optional double Q (van Hasselt et al. 2016), as pure functions.

Shape legend: ``E`` envs, ``G`` gradient steps per iteration, ``B`` replay batch, ``A`` actions.

Storage: the ring of unrolls sampled as uniform ``transitions`` (a replay buffer). Each
transition keeps its true ``next_obs``, so a time-limit truncation bootstraps from
max_a Q⁻(final obs) and only a termination zeroes the bootstrap (purejaxrl's dqn.py treats
truncation as termination). Acting: ε-greedy with ε decaying linearly in env steps. Learning
starts once ``learning_starts`` env steps have been collected. Traced hyperparameters (``hp``):
learning rate, Adam ε, gradient clipping, γ, learning starts, target period and τ, the ε
schedule, Huber δ.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxrl_policy.algorithms.common import (
    ActorState,
    HParams,
    ReplaySizes,
    age_diagnostics,
    epsilon_greedy,
    epsilon_schedule,
    init_obs_stats,
    init_optimizer,
    make_update,
    mean_metrics,
    nan_like,
    observe_obs_stats,
)
from jaxrl_policy.core import losses
from jaxrl_policy.core.config import Activation, BaseConfig, Traced, is_number
from jaxrl_policy.core.envs import EnvSpec
from jaxrl_policy.core.networks import dummy_obs, make_q_network, module_kwargs
from jaxrl_policy.core.normalization import RunningStats, normalize
from jaxrl_policy.core.storage import make_ring
from jaxrl_policy.core.types import Algorithm, Params, PolicyExport, Transition


@dataclass(frozen=True)
class DQNConfig(ReplaySizes, BaseConfig):
    """DQN (Mnih et al. 2015), optional double Q (van Hasselt et al. 2016).

    Defaults equal purejaxrl's dqn.py on CartPole-v1 so the two can be timed one to one.
    """

    num_envs: int = 10
    num_steps: int = 1
    learning_rate: float = 2.5e-4
    anneal_lr: bool = False
    adam_eps: float = 1e-8
    max_grad_norm: float | None = None
    hidden_sizes: tuple[int, ...] = (120, 84)
    activation: Activation = "relu"
    orthogonal_init: bool = False
    buffer_size: int = 10_000
    """replay capacity in transitions (rounded down to whole unrolls of num_envs × num_steps)."""
    batch_size: int = 128
    """transitions per gradient step."""
    replay_ratio: float = 0.1
    """gradient steps per env step; × num_envs × num_steps must be a whole number >= 1."""
    learning_starts: Traced[int] = 10_000
    """env steps collected before the first gradient step."""
    target_update_interval: Traced[int] = 500
    """env steps between target-network updates."""
    tau: Traced[float] = 1.0
    """target update θ⁻ ← τ θ + (1 − τ) θ⁻; 1 is a hard copy."""
    eps_start: Traced[float] = 1.0
    """ε-greedy ε at the start."""
    eps_end: Traced[float] = 0.05
    """ε-greedy ε after the decay."""
    eps_decay_fraction: Traced[float] = 0.5
    """fraction of total_timesteps over which ε decays linearly (purejaxrl: 25e4 of 5e5)."""
    double_q: bool = False
    """select the bootstrap action with the online network (double DQN)."""
    loss: Literal["squared", "huber"] = "squared"
    """TD loss: squared (0.5 δ², purejaxrl's MSE up to a factor) or Huber."""
    huber_delta: Traced[float] = 1.0
    """Huber loss δ (quadratic within ±δ, linear outside); used when loss = huber."""

    algo: ClassVar[str] = "dqn"
    OFFLINE: ClassVar[bool] = True

    def with_replay_unrolls(self, unrolls: int) -> BaseConfig:
        return dataclasses.replace(self, buffer_size=unrolls * self.steps_per_iteration)

    @classmethod
    def env_defaults(cls, env_id: str) -> dict[str, Any]:
        """MinAtar: a replay buffer of 10⁵ transitions, learning from 10⁴ steps, one hidden layer of 128 (the
        MinAtar paper's DQN sizes, Young & Tian 2019); no presets elsewhere."""
        if env_id.endswith("-MinAtar"):
            return {"activation": "relu", "total_timesteps": 10_000_000, "buffer_size": 100_000,
                    "learning_starts": 10_000, "hidden_sizes": (128,)}
        return {}

    def _problems(self):
        p = super()._problems()
        g = lambda n: getattr(self, n)  # noqa: E731
        for name in ("buffer_size", "batch_size", "target_update_interval"):
            if not (isinstance(g(name), int) and g(name) >= 1):
                p.append((name, g(name), "must be an integer >= 1"))
        if not (isinstance(self.learning_starts, int) and self.learning_starts >= 0):
            p.append(("learning_starts", self.learning_starts, "must be an integer >= 0"))
        elif isinstance(self.total_timesteps, int) and self.learning_starts >= self.total_timesteps:
            p.append(("learning_starts", self.learning_starts, f"must be < total_timesteps = {self.total_timesteps}"))
        if not (isinstance(self.tau, (int, float)) and 0 < self.tau <= 1):
            p.append(("tau", self.tau, "must be in (0, 1]"))
        for name in ("eps_start", "eps_end", "eps_decay_fraction"):
            if not (isinstance(g(name), (int, float)) and 0 <= g(name) <= 1):
                p.append((name, g(name), "must be in [0, 1]"))
        if self.loss not in ("squared", "huber"):
            p.append(("loss", self.loss, "must be squared or huber"))
        if not (is_number(self.huber_delta) and math.isfinite(self.huber_delta) and self.huber_delta > 0):
            p.append(("huber_delta", self.huber_delta, "must be a finite number > 0"))
        if isinstance(self.num_envs, int) and isinstance(self.num_steps, int) and self.num_envs > 0 < self.num_steps:
            spi = self.steps_per_iteration
            if isinstance(self.buffer_size, int) and self.buffer_size < spi:
                p.append(("buffer_size", self.buffer_size, f"must hold one iteration: >= num_envs × num_steps = {spi}"))
            elif isinstance(self.batch_size, int) and isinstance(self.buffer_size, int) \
                    and self.batch_size > self.buffer_unrolls * spi:
                p.append(("batch_size", self.batch_size, f"must be <= buffer_size = {self.buffer_unrolls * spi}"))
            r = self.replay_ratio * spi if isinstance(self.replay_ratio, (int, float)) else float("nan")
            if not (math.isfinite(r) and r >= 1 - 1e-9 and abs(r - round(r)) < 1e-6):
                p.append(("replay_ratio", self.replay_ratio, f"× num_envs × num_steps (= {spi}) must be a whole "
                                                             "number >= 1 of gradient steps per iteration"))
        return p


class DQNState(NamedTuple):
    params: Params  # online Q-network
    target_params: Params  # target Q-network θ⁻
    opt_state: optax.OptState
    grad_steps: jax.Array  # int32 scalar
    obs_stats: RunningStats | None  # running observation statistics (normalize_observations)



def make_dqn(cfg: DQNConfig, spec: EnvSpec) -> Algorithm:
    net = make_q_network(cfg, spec)
    apply: Callable[..., Any] = net.apply  # (flax types the result as Any | (Any, mutated variables))
    G = cfg.gradient_steps_per_iteration
    steps_per_iter = cfg.steps_per_iteration
    A = spec.num_actions
    assert A is not None, "config validation admits discrete action spaces only"

    def init(key):
        params = net.init(key, dummy_obs(spec.obs_shape))
        return DQNState(params=params, target_params=params, opt_state=init_optimizer(params),
                        grad_steps=jnp.zeros((), jnp.int32), obs_stats=init_obs_stats(cfg, spec))

    def actor(state: DQNState, hp: HParams) -> ActorState:
        return ActorState(state.params, state.grad_steps, state.obs_stats)

    def act(actor_state: ActorState, obs, carry, key, env_step, hp: HParams):
        q = apply(actor_state.params, normalize(actor_state.obs_stats, obs))
        action = epsilon_greedy(key, q, epsilon_schedule(hp, cfg.total_timesteps, env_step))
        return action, {"version": jnp.broadcast_to(actor_state.version, action.shape)}, carry

    def td_loss(td, hp: HParams):
        if cfg.loss == "huber":
            return losses.huber_loss(td, hp["huber_delta"])
        return losses.squared_loss(td)

    def loss_fn(params, hp: HParams, target_params, b: Transition, obs_stats):
        obs, next_obs = normalize(obs_stats, b.obs), normalize(obs_stats, b.next_obs)
        q_tm1 = apply(params, obs)  # [B, A]
        q_t_value = apply(target_params, next_obs)
        discount_t = hp["gamma"] * (1.0 - b.terminated.astype(jnp.float32))
        reward = b.reward * hp["reward_scale"]
        if cfg.double_q:
            q_t_selector = apply(params, next_obs)
            td = jax.vmap(losses.double_q_learning)(q_tm1, b.action, reward, discount_t, q_t_value, q_t_selector)
        else:
            td = jax.vmap(losses.q_learning)(q_tm1, b.action, reward, discount_t, q_t_value)
        return td_loss(td, hp).mean(), {"q_mean": q_tm1.mean(), "td_abs": jnp.abs(td).mean()}

    update = make_update(loss_fn, G, cfg.num_iterations)

    def train_step(state: DQNState, batch: Transition, env_step, hp: HParams):
        # batch: Transition [G, B]; one gradient step per draw (the replay ratio).
        def step(carry, b):
            params, opt_state = carry
            params, opt_state, metrics = update(params, opt_state, hp, state.target_params, b, state.obs_stats)
            return (params, opt_state), metrics

        (params, opt_state), stats = jax.lax.scan(step, (state.params, state.opt_state), batch)
        # Target update when this iteration crossed a multiple of target_update_interval env
        # steps. env_step is unbatched, so this cond stays a branch under vmap over seeds.
        period = hp["target_update_interval"]
        crossed = (env_step // period) != ((env_step - steps_per_iter) // period)
        target = jax.lax.cond(crossed, lambda: optax.incremental_update(params, state.target_params, hp["tau"]),
                              lambda: state.target_params)
        grad_steps = state.grad_steps + G
        metrics = mean_metrics(stats)
        metrics.update(age_diagnostics(state.grad_steps, batch.extras["version"]))
        metrics["grad_steps"] = grad_steps.astype(jnp.float32)
        return state._replace(params=params, target_params=target, opt_state=opt_state, grad_steps=grad_steps), metrics

    def learn(state: DQNState, batch: Transition, key, env_step, hp: HParams):
        def wait(state, batch):  # before learning_starts: no update, NaN metrics
            metrics = nan_like(jax.eval_shape(lambda s, b: train_step(s, b, env_step, hp)[1], state, batch))
            metrics["grad_steps"] = state.grad_steps.astype(jnp.float32)
            return state, metrics

        # env_step counts the steps collected so far; learning starts once it reaches learning_starts
        # (in whole iterations). The predicate is unbatched unless learning_starts itself is swept.
        # hp is closed over, not passed as an operand, so constant hyperparameters stay constants.
        state, metrics = jax.lax.cond(env_step >= hp["learning_starts"],
                                      lambda s, b: train_step(s, b, env_step, hp), wait, state, batch)
        metrics["epsilon"] = epsilon_schedule(hp, cfg.total_timesteps, env_step)
        metrics["learned"] = (env_step >= hp["learning_starts"]).astype(jnp.float32)  # 0: still filling the buffer
        return state, metrics

    def greedy(state: DQNState, obs, carry, hp: HParams):  # ε = 0
        return jnp.argmax(apply(state.params, normalize(state.obs_stats, obs)), -1), carry

    storage = make_ring(cfg.buffer_unrolls, "transitions", num_draws=G, batch_size=cfg.batch_size)
    def export(state: DQNState) -> PolicyExport:  # the online Q-network, acting greedily
        return PolicyExport("QNetwork", module_kwargs(net), state.params, state.obs_stats, "argmax")

    return Algorithm(init=init, actor=actor, act=act, learn=learn, greedy=greedy, storage=storage,
                     observe=observe_obs_stats if cfg.normalize_observations else None, export=export)
