"""PQN (Gallici et al. 2025, "Simplifying Deep Temporal Difference Learning", ICLR) as a bundle of pure functions.

Shape legend: ``T`` time, ``E`` envs, ``N = T·E`` batch, ``M = N / num_minibatches`` minibatch, ``A`` actions,
``G = num_epochs · num_minibatches`` gradient steps per iteration.

Q-learning made on-policy and replay-free: ε-greedy acting in E parallel envs, Peng's Q(λ) targets
computed once per iteration by a backward scan over the fresh unroll (``losses.q_lambda_returns``), then
``num_epochs`` passes × ``num_minibatches`` minibatches of shuffled transitions (as PPO), loss
½(G_t − Q(s_t, a_t))². No replay buffer (a ring of one unroll, ``latest``) and no target network; a
LayerNorm in every hidden layer of the Q-network (``layer_norm``) is what keeps bootstrapping from the
network itself stable (§4 of the paper).

Targets: the acting Q-values ``Q(s_t, ·)`` are stored with the unroll (``extras["q"]``), and the acting
parameters are the learner's (nothing moves between acting and computing the targets), so
``Q(s_{t+1}, ·)`` is ``extras["q"][t + 1]`` inside an episode; only the unroll's last step and time-limit
truncations (where ``next_obs`` is the true final observation) get fresh forward passes
(``common.next_values``). A truncation bootstraps from max_a Q(final obs, a) and cuts the λ-trace; a
termination bootstraps with 0. Traced hyperparameters (``hp``): learning rate and its annealing, Adam ε,
gradient clipping, γ, λ, the ε schedule, reward scale. Feed-forward torsos only (MLP, CNN): ``torso = gru``
is refused by validation.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxrl_policy.algorithms.common import (
    ActorState,
    HParams,
    age_diagnostics,
    epsilon_greedy,
    epsilon_schedule,
    init_obs_stats,
    init_optimizer,
    make_update,
    mean_metrics,
    next_values,
    observe_obs_stats,
    shuffle,
)
from jaxrl_policy.core import losses
from jaxrl_policy.core.config import Activation, BaseConfig, Traced, is_int, is_number
from jaxrl_policy.core.envs import EnvSpec
from jaxrl_policy.core.networks import dummy_obs, make_q_network, module_kwargs
from jaxrl_policy.core.normalization import RunningStats, normalize
from jaxrl_policy.core.storage import make_ring
from jaxrl_policy.core.types import Algorithm, Params, PolicyExport, Transition

# MinAtar: purejaxql's published PQN config (mttga/purejaxql, purejaxql/config/alg/pqn_minatar.yaml; Gallici et al.
# 2025): 128 envs × 32 steps, 2 epochs × 32 minibatches, lr 5e-4 decayed linearly, λ 0.65, ε decayed over the first
# 10% of the run, gradient norm clipped at 10, one hidden layer of 128 after the conv, LayerNorm. Theirs is RAdam
# with He-normal initialisation and a VALID convolution; here Adam, flax's default initialisation, the shared
# SAME-padded CNN torso.
MINATAR_PQN_DEFAULTS: dict[str, Any] = dict(
    num_envs=128, num_steps=32, num_epochs=2, num_minibatches=32, learning_rate=5e-4, anneal_lr=True,
    td_lambda=0.65, eps_decay_fraction=0.1, max_grad_norm=10.0, hidden_sizes=(128,), activation="relu",
    total_timesteps=10_000_000)


@dataclass(frozen=True)
class PQNConfig(BaseConfig):
    """PQN (Gallici et al. 2025): ε-greedy Q(λ) on fresh unrolls, no replay, no target network.

    Defaults equal rejax's published CartPole-v1 PQN config (keraJLi/rejax, configs/gymnax/cartpole.yaml, ``pqn:``;
    its network: rejax/algos/pqn.py, a (64, 64) MLP with activation relu(LayerNorm(x)), flax's default
    initialisation; Adam with ε 1e-5, the global gradient norm clipped at 10, a constant learning rate). MinAtar ids
    take purejaxql's MinAtar PQN config (``MINATAR_PQN_DEFAULTS``).
    """

    num_envs: int = 16
    num_steps: int = 128
    total_timesteps: int = 524_288
    learning_rate: float = 3e-4
    anneal_lr: bool = False
    max_grad_norm: float | None = 10.0
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: Activation = "relu"
    orthogonal_init: bool = False
    td_lambda: Traced[float] = 0.9
    """λ of Peng's Q(λ) in [0, 1]: 0 is one-step Q-learning, 1 the return to the unroll's end (or a truncation),
    bootstrapped there from max_a Q."""
    num_epochs: int = 5
    """passes over each collected unroll."""
    num_minibatches: int = 16
    """minibatches of shuffled transitions per epoch; must divide num_envs × num_steps."""
    eps_start: Traced[float] = 1.0
    """ε-greedy ε at the start."""
    eps_end: Traced[float] = 0.05
    """ε-greedy ε after the decay."""
    eps_decay_fraction: Traced[float] = 0.5
    """fraction of total_timesteps over which ε decays linearly (rejax: exploration_fraction 0.5)."""
    layer_norm: bool = True
    """a LayerNorm in every hidden layer of the Q-network, before the activation (what stands in for a target
    network, Gallici et al. 2025 §4)."""

    algo: ClassVar[str] = "pqn"

    @property
    def gradient_steps_per_iteration(self) -> int:
        return self.num_epochs * self.num_minibatches

    @classmethod
    def env_defaults(cls, env_id: str) -> dict[str, Any]:
        """MinAtar: purejaxql's MinAtar PQN settings (``MINATAR_PQN_DEFAULTS``); no presets elsewhere."""
        if env_id.endswith("-MinAtar"):
            return dict(MINATAR_PQN_DEFAULTS)
        return {}

    def _problems(self):
        p = super()._problems()
        g = lambda n: getattr(self, n)  # noqa: E731
        for name in ("td_lambda", "eps_start", "eps_end", "eps_decay_fraction"):
            if not (is_number(g(name)) and 0 <= g(name) <= 1):
                p.append((name, g(name), "must be in [0, 1]"))
        for name in ("num_epochs", "num_minibatches"):
            if not (is_int(g(name)) and g(name) >= 1):
                p.append((name, g(name), "must be an integer >= 1"))
        if is_int(self.num_minibatches) and self.num_minibatches >= 1 and is_int(self.num_envs) \
                and is_int(self.num_steps):
            batch = self.num_envs * self.num_steps
            if batch % self.num_minibatches:
                p.append(("num_minibatches", self.num_minibatches,
                          f"must divide the batch num_envs × num_steps = {batch}"))
        return p


class PQNState(NamedTuple):
    params: Params  # Q-network parameters (the only ones: no target network)
    opt_state: optax.OptState
    grad_steps: jax.Array  # int32 scalar: gradient steps taken
    obs_stats: RunningStats | None  # running observation statistics (normalize_observations)


class Batch(NamedTuple):
    obs: jax.Array  # [T, E, O...] or, shuffled, [M, O...]
    action: jax.Array  # [T, E] / [M] int32
    target: jax.Array  # [T, E] / [M] Peng's Q(λ) return G_t


def q_lambda_targets(q_fn: Callable[[jax.Array], jax.Array], unroll: Transition, hp: HParams,
                     max_episode_steps: int | None) -> jax.Array:
    """Peng's Q(λ) returns ``[T, E]`` of one fresh unroll (Gallici et al. 2025, Alg. 1), without gradient.

    ``q_fn``: ``obs [N, O...] -> Q [N, A]`` with the parameters that acted; ``unroll.extras["q"]``: their Q-values
    at ``unroll.obs`` ``[T, E, A]``. Q(next_obs) ``[T, E, A]`` reuses those inside an episode and evaluates
    ``q_fn`` only at the last step and at truncations (``common.next_values``); then ``losses.q_lambda_returns``
    per env with discount γ·(1 − terminated), rewards × reward_scale and the truncation flags.
    """
    q_t = next_values(q_fn, unroll.extras["q"], unroll.next_obs, unroll.truncated, max_episode_steps)
    discount_t = hp["gamma"] * (1.0 - unroll.terminated.astype(jnp.float32))
    returns = jax.vmap(losses.q_lambda_returns, in_axes=(1, 1, 1, None, 1), out_axes=1)
    return returns(unroll.reward * hp["reward_scale"], discount_t, q_t, hp["td_lambda"], unroll.truncated)


def minibatches(data: Batch, key: jax.Array, num_minibatches: int) -> Batch:
    """One epoch's minibatches ``[num_minibatches, M, ...]``: the ``[T, E]`` transitions shuffled (as PPO)."""
    T, E = data.target.shape
    N = T * E
    perm = shuffle(key, N).reshape(num_minibatches, N // num_minibatches)
    flat = jax.tree.map(lambda x: x.reshape((N, *x.shape[2:])), data)
    return jax.tree.map(lambda x: x[perm], flat)


def make_pqn(cfg: PQNConfig, spec: EnvSpec) -> Algorithm:
    net = make_q_network(cfg, spec)
    apply: Callable[..., Any] = net.apply  # (flax types the result as Any | (Any, mutated variables))
    G = cfg.gradient_steps_per_iteration
    NMB = cfg.num_minibatches
    assert spec.num_actions is not None, "config validation admits discrete action spaces only"

    def init(key):
        params = net.init(key, dummy_obs(spec.obs_shape))
        return PQNState(params=params, opt_state=init_optimizer(params), grad_steps=jnp.zeros((), jnp.int32),
                        obs_stats=init_obs_stats(cfg, spec))

    def actor(state: PQNState, hp: HParams) -> ActorState:
        return ActorState(state.params, state.grad_steps, state.obs_stats)

    def act(actor_state: ActorState, obs, carry, key, env_step, hp: HParams):
        q = apply(actor_state.params, normalize(actor_state.obs_stats, obs))  # [E, A]
        action = epsilon_greedy(key, q, epsilon_schedule(hp, cfg.total_timesteps, env_step))
        # q is kept for the targets: Q(s_{t+1}) of the next step without another forward pass
        return action, {"q": q, "version": jnp.broadcast_to(actor_state.version, action.shape)}, carry

    def loss_fn(params, hp: HParams, mb: Batch):
        q = apply(params, mb.obs)  # [M, A]
        qa = jnp.take_along_axis(q, mb.action[:, None], axis=-1)[:, 0]
        td = mb.target - qa  # the target carries no gradient (q_lambda_returns)
        return losses.squared_loss(td).mean(), {"q_mean": q.mean(), "td_abs": jnp.abs(td).mean()}

    update = make_update(loss_fn, G, cfg.num_iterations)

    def learn(state: PQNState, unroll: Transition, key, env_step, hp: HParams):
        # With normalize_observations the stored Q-values saw the statistics before this unroll's update
        # (``observe``), the fresh passes the updated ones: as PPO's stored values.
        norm = lambda o: normalize(state.obs_stats, o)  # noqa: E731
        target = q_lambda_targets(lambda o: apply(state.params, o), unroll._replace(next_obs=norm(unroll.next_obs)),
                                  hp, spec.max_episode_steps)
        data = Batch(obs=norm(unroll.obs), action=unroll.action, target=target)

        def minibatch(carry, mb: Batch):
            params, opt_state = carry
            params, opt_state, metrics = update(params, opt_state, hp, mb)
            return (params, opt_state), metrics

        def epoch(carry, epoch_key):
            return jax.lax.scan(minibatch, carry, minibatches(data, epoch_key, NMB))

        (params, opt_state), stats = jax.lax.scan(
            epoch, (state.params, state.opt_state), jax.random.split(key, cfg.num_epochs))
        metrics = mean_metrics(stats)
        grad_steps = state.grad_steps + G
        # Age per gradient step, as PPO: the j-th of the G steps learns on data j steps older than at j = 0.
        age = age_diagnostics(state.grad_steps, unroll.extras["version"])
        metrics.update(data_age=age["data_age"] + (G - 1) / 2, data_age_max=age["data_age_max"] + (G - 1))
        metrics["grad_steps"] = grad_steps.astype(jnp.float32)
        metrics["epsilon"] = epsilon_schedule(hp, cfg.total_timesteps, env_step)
        return state._replace(params=params, opt_state=opt_state, grad_steps=grad_steps), metrics

    def greedy(state: PQNState, obs, carry, hp: HParams):  # ε = 0
        return jnp.argmax(apply(state.params, normalize(state.obs_stats, obs)), -1), carry

    def export(state: PQNState) -> PolicyExport:  # the Q-network, acting greedily
        return PolicyExport(type(net).__name__, module_kwargs(net), state.params, state.obs_stats, "argmax")

    return Algorithm(init=init, actor=actor, act=act, learn=learn, greedy=greedy, storage=make_ring(1, "latest"),
                     observe=observe_obs_stats if cfg.normalize_observations else None, export=export)
