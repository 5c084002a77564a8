"""PPO (Schulman et al. 2017) with GAE (Schulman et al. 2016) as a bundle of pure functions.

Shape legend: ``T`` time, ``E`` envs, ``N = T·E`` batch, ``M`` minibatch, ``MB`` envs per minibatch
(recurrent), ``A`` actions, ``D`` continuous action dimensions, ``H`` recurrent state,
``G = num_epochs · num_minibatches`` gradient steps per iteration.

Storage: a ring of one unroll sampled as ``latest`` (strictly on-policy). Reuse: ``num_epochs``
passes × ``num_minibatches`` minibatches over each unroll — shuffled transitions for a feed-forward
policy; for a recurrent one (``torso = gru``) whole unrolls of ``MB`` envs, replayed through the GRU
from the recurrent state stored at their first step (no shuffling across time). Truncation:
advantages bootstrap from V(next_obs) at a time limit and cut the λ-trace there; a termination
bootstraps with 0. Discrete or continuous actions (``distributions.py``). Traced hyperparameters
(``hp``): learning rate and its annealing, Adam ε, gradient clipping, γ, λ, clip ε, entropy and
value coefficients, value clipping, advantage normalisation, reward scale.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxrl_policy.algorithms import presets
from jaxrl_policy.algorithms.actor_critic import ActorCriticConfig, make_export, make_greedy, next_state_values
from jaxrl_policy.algorithms.common import (
    ActorState,
    HParams,
    action_space,
    age_diagnostics,
    flag,
    init_obs_stats,
    init_optimizer,
    make_update,
    mean_metrics,
    observe_obs_stats,
    ratio_diagnostics,
    sampled_kl,
    shuffle,
    standardize,
    unroll_policy,
)
from jaxrl_policy.core import distributions as dist
from jaxrl_policy.core import losses
from jaxrl_policy.core.config import Traced
from jaxrl_policy.core.envs import SUITE_PREFIXES, EnvSpec
from jaxrl_policy.core.networks import dummy_obs, make_actor_critic
from jaxrl_policy.core.normalization import RunningStats, normalize
from jaxrl_policy.core.storage import make_ring
from jaxrl_policy.core.types import Algorithm, Params, Transition


@dataclass(frozen=True)
class PPOConfig(ActorCriticConfig):
    """PPO (Schulman et al. 2017) with GAE; defaults equal purejaxrl's ppo.py for CartPole-v1."""

    gae_lambda: Traced[float] = 0.95
    """GAE λ in [0, 1]."""
    num_epochs: int = 4
    """passes over each collected batch."""
    num_minibatches: int = 4
    """minibatches per epoch; must divide num_envs × num_steps."""
    clip_eps: Traced[float] = 0.2
    """ratio clipping ε of the surrogate (and of the value loss when clip_value_loss)."""
    ent_coef: Traced[float] = 0.01
    """entropy bonus coefficient."""
    vf_coef: Traced[float] = 0.5
    """value-loss coefficient."""
    clip_value_loss: Traced[bool] = True
    """clip the value prediction around the old value by clip_eps (as purejaxrl)."""
    normalize_advantages: Traced[bool] = True
    """standardise advantages per minibatch."""

    algo: ClassVar[str] = "ppo"

    @property
    def gradient_steps_per_iteration(self) -> int:
        return self.num_epochs * self.num_minibatches

    @classmethod
    def env_defaults(cls, env_id: str) -> dict[str, Any]:
        """MinAtar as every algorithm; Pendulum-v1 and MountainCarContinuous-v0: rejax's published PPO settings;
        ``brax:`` ids: Brax's published PPO settings scaled for CPU (``presets.py``); ``craftax:``, ``xminigrid:``,
        ``navix:``, ``jumanji:`` ids: the suites' published PPO (Jumanji: A2C) settings scaled for CPU."""
        if env_id.startswith("brax:"):
            return presets.brax_defaults("ppo", env_id)
        if env_id.startswith(SUITE_PREFIXES):
            return {**super().env_defaults(env_id), **presets.suite_ppo_defaults(env_id)}
        if env_id in presets.CONTINUOUS_DEFAULTS:
            return {**presets.CONTINUOUS_DEFAULTS[env_id], **presets.PPO_CONTINUOUS_DEFAULTS}
        return super().env_defaults(env_id)

    def _problems(self):
        p = super()._problems()
        g = lambda n: getattr(self, n)  # noqa: E731
        for name in ("gae_lambda",):
            if not (isinstance(g(name), (int, float)) and 0 <= g(name) <= 1):
                p.append((name, g(name), "must be in [0, 1]"))
        for name in ("num_epochs", "num_minibatches"):
            if not (isinstance(g(name), int) and g(name) >= 1):
                p.append((name, g(name), "must be an integer >= 1"))
        if not (isinstance(self.clip_eps, (int, float)) and math.isfinite(self.clip_eps) and self.clip_eps > 0):
            p.append(("clip_eps", self.clip_eps, "must be a finite number > 0"))
        for name in ("ent_coef", "vf_coef"):
            if not (isinstance(g(name), (int, float)) and math.isfinite(g(name)) and g(name) >= 0):
                p.append((name, g(name), "must be a finite number >= 0"))
        if isinstance(self.num_minibatches, int) and self.num_minibatches >= 1 and isinstance(self.num_envs, int) \
                and isinstance(self.num_steps, int):
            batch = self.num_envs * self.num_steps
            if batch % self.num_minibatches:
                p.append(("num_minibatches", self.num_minibatches,
                          f"must divide the batch num_envs × num_steps = {batch}"))
            elif self.normalize_advantages and batch // self.num_minibatches < 2:
                p.append(("normalize_advantages", True, "needs minibatches of at least 2 samples"))
            elif self.torso == "gru" and self.num_envs % self.num_minibatches:
                p.append(("num_minibatches", self.num_minibatches,
                          f"must divide num_envs = {self.num_envs} with torso gru (minibatches are whole unrolls of "
                          "some envs, replayed from their stored recurrent state)"))
        return p


class PPOState(NamedTuple):
    params: Params  # actor-critic parameters
    opt_state: optax.OptState
    grad_steps: jax.Array  # int32 scalar: gradient steps taken
    obs_stats: RunningStats | None  # running observation statistics (normalize_observations)




class Minibatch(NamedTuple):
    obs: jax.Array  # [M, O...] (recurrent: [T, MB, O...])
    action: jax.Array  # [M] or [M, D]
    log_prob: jax.Array  # [M] log μ(a|s) of the acting policy
    value: jax.Array  # [M] V(s) at acting time
    advantage: jax.Array  # [M]
    target: jax.Array  # [M] value target: advantage + value
    carry: Any  # recurrent: the state before the first step [MB, H]; None otherwise
    first: Any  # recurrent: [T, MB] episode starts; None otherwise


def minibatches(data: Minibatch, key: jax.Array, num_minibatches: int, recurrent: bool) -> Minibatch:
    """One epoch's minibatches ``[NMB, ...]`` of an iteration's ``data`` (fields ``[T, E, ...]``): shuffled
    transitions of ``[N]`` for a feed-forward policy; for a recurrent one whole unrolls of ``MB`` envs (the envs
    permuted, time kept in order, each with its stored initial state ``[NMB, MB, H]``)."""
    T, E = data.advantage.shape
    N, NMB = T * E, num_minibatches
    if recurrent:
        envs = jax.random.permutation(key, E).reshape(NMB, E // NMB)
        time_major = data._replace(carry=None)  # every field [T, E, ...]
        mbs = jax.vmap(lambda idx: jax.tree.map(lambda x: x[:, idx], time_major))(envs)
        return mbs._replace(carry=data.carry[envs])
    perm = shuffle(key, N).reshape(NMB, N // NMB)
    flat = jax.tree.map(lambda x: x.reshape((N, *x.shape[2:])), data._replace(carry=None, first=None))
    return jax.tree.map(lambda x: x[perm], flat)


def make_ppo(cfg: PPOConfig, spec: EnvSpec) -> Algorithm:
    net = make_actor_critic(cfg, spec)
    apply: Callable[..., Any] = net.apply  # (flax types the result as Any | (Any, mutated variables))
    space = action_space(cfg, spec)
    recurrent = cfg.torso == "gru"
    G = cfg.gradient_steps_per_iteration
    NMB = cfg.num_minibatches

    def init(key):
        params = net.init(key, dummy_obs(spec.obs_shape), net.initial_carry(1))
        return PPOState(params=params, opt_state=init_optimizer(params), grad_steps=jnp.zeros((), jnp.int32),
                        obs_stats=init_obs_stats(cfg, spec))

    def actor(state: PPOState, hp: HParams) -> ActorState:
        return ActorState(state.params, state.grad_steps, state.obs_stats)

    def act(actor_state: ActorState, obs, carry, key, env_step, hp: HParams):
        policy, value, carry = apply(actor_state.params, normalize(actor_state.obs_stats, obs), carry)
        action, logp = dist.sample(key, policy, space)
        return action, {"log_prob": logp, "value": value,
                        "version": jnp.broadcast_to(actor_state.version, logp.shape)}, carry

    def loss_fn(params, hp: HParams, mb: Minibatch):
        if recurrent:
            policy, value, _ = unroll_policy(apply, params, mb.obs, mb.carry, mb.first)  # [T, MB, ...]
        else:
            policy, value, _ = apply(params, mb.obs)
        logp = dist.log_prob(policy, mb.action, space)
        log_ratio = (logp - mb.log_prob).reshape(-1)
        ratio = jnp.exp(log_ratio)
        adv = flag(hp["normalize_advantages"], lambda: standardize(mb.advantage), lambda: mb.advantage).reshape(-1)
        pg_loss = losses.ppo_clip_loss(ratio_t=ratio, adv_t=adv, epsilon=hp["clip_eps"])
        v, v_old, target = value.reshape(-1), mb.value.reshape(-1), mb.target.reshape(-1)
        v_loss = flag(hp["clip_value_loss"],
                      lambda: losses.ppo_value_loss(v_t=v, v_old_t=v_old, target_t=target, clip_epsilon=hp["clip_eps"]),
                      lambda: losses.ppo_value_loss(v_t=v, v_old_t=v_old, target_t=target))
        ent_loss = -dist.entropy(policy, space).mean()
        total = pg_loss + hp["vf_coef"] * v_loss + hp["ent_coef"] * ent_loss
        aux = {"pg_loss": pg_loss, "value_loss": v_loss, "entropy": -ent_loss, "policy_kl": sampled_kl(log_ratio),
               **ratio_diagnostics(ratio, 1 - hp["clip_eps"], 1 + hp["clip_eps"])}
        return total, aux

    update = make_update(loss_fn, G, cfg.num_iterations)

    def bootstrap_values(state: PPOState, unroll: Transition, obs, next_obs):
        """V(next_obs) ``[T, E]``: V(obs_{t+1}) inside an episode, V(final obs) at a truncation."""
        ex = unroll.extras
        # recurrent: replay the unroll for the state after each step, then V(next_obs | that state)
        carries = unroll_policy(apply, state.params, obs, ex["carry"][0], ex["first"])[2] if recurrent else None
        return next_state_values(apply, state.params, ex["value"], next_obs, unroll.truncated, carries,
                                 spec.max_episode_steps)

    def learn(state: PPOState, unroll: Transition, key, env_step, hp: HParams):
        ex = unroll.extras
        obs = normalize(state.obs_stats, unroll.obs)
        v_t = bootstrap_values(state, unroll, obs, normalize(state.obs_stats, unroll.next_obs))  # [T, E]
        discount_t = hp["gamma"] * (1.0 - unroll.terminated.astype(jnp.float32))
        adv = jax.vmap(losses.gae_bootstrapped, in_axes=(1, 1, 1, 1, None, 1), out_axes=1)(
            unroll.reward * hp["reward_scale"], discount_t, ex["value"], v_t, hp["gae_lambda"], unroll.truncated)
        data = Minibatch(obs=obs, action=unroll.action, log_prob=ex["log_prob"], value=ex["value"], advantage=adv,
                         target=adv + ex["value"], carry=ex["carry"][0] if recurrent else None,
                         first=ex["first"] if recurrent else None)

        def minibatch(carry, mb: Minibatch):
            params, opt_state = carry
            params, opt_state, metrics = update(params, opt_state, hp, mb)
            return (params, opt_state), metrics

        def epoch(carry, epoch_key):
            return jax.lax.scan(minibatch, carry, minibatches(data, epoch_key, NMB, recurrent))

        (params, opt_state), stats = jax.lax.scan(
            epoch, (state.params, state.opt_state), jax.random.split(key, cfg.num_epochs))
        metrics = mean_metrics(stats)
        grad_steps = state.grad_steps + G
        # Age per gradient step: the j-th of the G steps learns on data j steps older than at j = 0.
        age = age_diagnostics(state.grad_steps, ex["version"])
        metrics.update(data_age=age["data_age"] + (G - 1) / 2, data_age_max=age["data_age_max"] + (G - 1))
        metrics["grad_steps"] = grad_steps.astype(jnp.float32)
        return state._replace(params=params, opt_state=opt_state, grad_steps=grad_steps), metrics

    return Algorithm(init=init, actor=actor, act=act, learn=learn, greedy=make_greedy(apply, space),
                     storage=make_ring(1, "latest"),
                     init_carry=net.initial_carry if recurrent else None, export=make_export(net),
                     observe=observe_obs_stats if cfg.normalize_observations else None)
