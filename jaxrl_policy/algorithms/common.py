"""Pieces every algorithm factory shares: the one update step, traced hyperparameters, diagnostics.

Shape legend: ``N`` samples in a batch, ``A`` actions, ``G`` gradient steps per iteration.

Hyperparameters arrive as ``hp``, a dict of scalars (``config.hparams``). A value is either a
numpy constant (the config's own value: the program is specialised to it, exactly as if it were
written into the code) or a traced array (a sweep point). ``flag`` and ``is_constant`` let code
branch in Python on constants and select on traced values, so the single-point program pays
nothing for sweepability.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxrl_policy.core.distributions import ActionSpace
from jaxrl_policy.core.losses import categorical_log_prob
from jaxrl_policy.core.normalization import RunningStats, init_stats
from jaxrl_policy.core.normalization import update as update_stats
from jaxrl_policy.core.types import HParams, Params, Transition


class ActorState(NamedTuple):
    """What acts in an iteration (``Algorithm.actor``'s result): parameters, maybe lagged, and their version."""

    params: Params  # the parameters that act
    version: jax.Array  # int32 scalar: the learner's gradient steps when they were current
    obs_stats: RunningStats | None  # running observation statistics (normalize_observations)


def is_constant(x) -> bool:
    """True for a value known when the program is built (not a tracer)."""
    return not isinstance(x, jax.core.Tracer)


def flag(value, if_true, if_false):
    """``if_true() if value else if_false()`` for a 0/1 hyperparameter, constant or traced.

    A constant picks one branch in Python (only that branch is in the program); a traced value
    computes both and selects elementwise.
    """
    if is_constant(value):
        return if_true() if bool(value) else if_false()
    return jax.tree.map(lambda a, b: jnp.where(value > 0, a, b), if_true(), if_false())


# ---------------------------------------------------------------------------------------------
# the one update step (as brax.training.gradients.gradient_update_fn): loss → grads → optimizer
# ---------------------------------------------------------------------------------------------
def init_optimizer(params) -> optax.OptState:
    """Optimizer state: Adam's moments and count, plus the step count of the learning-rate schedule.

    Its structure does not depend on any hyperparameter, so every sweep point shares it.
    """
    return _optimizer({"adam_eps": np.float32(1e-8), "learning_rate": np.float32(0.0),
                       "anneal_lr": np.float32(0.0)}, 1, 1).init(params)


def _optimizer(hp: HParams, steps_per_iteration: int, num_iterations: int) -> optax.GradientTransformation:
    """Adam with a learning rate that optionally anneals linearly to 0 over the run, per iteration.

    Annealing as purejaxrl: lr · (1 − ⌊count / steps_per_iteration⌋ / num_iterations), constant
    within an iteration and 0 after the last one. Built inside the traced function from ``hp``.
    """
    lr0, n = hp["learning_rate"], max(1, num_iterations)

    def learning_rate(count):
        frac = (count // steps_per_iteration) / n
        return flag(hp["anneal_lr"], lambda: lr0 * (1.0 - frac), lambda: lr0 * jnp.ones_like(frac))

    return optax.chain(optax.scale_by_adam(eps=hp["adam_eps"]), optax.scale_by_schedule(lambda c: -learning_rate(c)))


def make_update(loss_fn: Callable[..., tuple[jax.Array, dict]], steps_per_iteration: int, num_iterations: int):
    """One gradient step for any algorithm: ``update(params, opt_state, hp, *args)``.

    ``loss_fn(params, hp, *args) -> (loss, aux)``. The gradient's global norm is clipped to
    ``hp["max_grad_norm"]`` (+inf: no clipping), then Adam with the (maybe annealed) learning rate
    moves the parameters. Returns ``(params, opt_state, metrics)``, metrics = ``loss``, ``grad_norm``
    (before clipping) and ``aux``.
    """
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def update(params, opt_state, hp: HParams, *args):
        (loss, aux), grads = grad_fn(params, hp, *args)
        grad_norm = optax.tree.norm(grads)
        max_norm = hp["max_grad_norm"]
        if not (is_constant(max_norm) and np.isinf(max_norm)):  # (XLA computes the shared norm once)
            grads, _ = optax.clip_by_global_norm(max_norm).update(grads, optax.EmptyState())
        updates, opt_state = _optimizer(hp, steps_per_iteration, num_iterations).update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, {"loss": loss, "grad_norm": grad_norm, **aux}

    return update


# ---------------------------------------------------------------------------------------------
# data helpers
# ---------------------------------------------------------------------------------------------
def next_values(value_fn, values, next_obs, truncated, max_episode_steps: int | None):
    """``V(next_obs)`` ``[T, E, ...]`` without a forward pass over all T × E next observations.

    Inside an episode ``next_obs[t]`` is ``obs[t + 1]``, whose value ``values[t + 1]`` is already
    known; only the last step and time-limit truncations (where ``next_obs`` is the true final
    observation, not the reset one) need new forward passes. A truncation needs
    ``max_episode_steps`` steps since the last reset, so an env truncates at most
    ⌈T / max_episode_steps⌉ times per unroll: that many slots per env, found with a fixed-size
    ``nonzero``, are evaluated. Spare slots point at the last entry, which gets its own value, so
    no masking is needed. At terminations the result is ``V(reset obs)``, which callers discount
    to zero. With no known time limit, or no saving, it is the plain forward pass.

    ``value_fn``: ``[N, O...] -> [N, ...]``; ``values``: its value at ``obs``, ``[T, E, ...]`` (state
    values ``[T, E]``; PQN's action values ``[T, E, A]``); ``next_obs``: ``[T, E, O...]``.
    """
    T, E = values.shape[:2]
    rest = values.shape[2:]  # per-observation value shape: () for V, (A,) for Q
    flat_obs = next_obs.reshape(T * E, *next_obs.shape[2:])
    slots = E * -(-T // max_episode_steps) if max_episode_steps else T * E
    if slots >= T * E // 2:
        return value_fn(flat_obs).reshape(T, E, *rest)
    last = value_fn(next_obs[-1])  # [E, ...]
    v = jnp.concatenate([values[1:], last[None]], 0).reshape(T * E, *rest)
    idx = jnp.nonzero(truncated.reshape(T * E), size=slots, fill_value=T * E - 1)[0]
    return v.at[idx].set(value_fn(flat_obs[idx])).reshape(T, E, *rest)


def shuffle(key, n: int) -> jax.Array:
    """A uniformly random permutation of ``range(n)`` with one sort.

    ``jax.random.permutation`` sorts on random 32-bit keys, in ⌈3 ln n / ln 2³²⌉ rounds so that
    ties cannot bias the result: one round up to n = 1625, two beyond. On XLA:CPU those two sorts
    were 22% of PPO's time at 1024 envs (n = 131072). Sorting once on a pair of 32-bit keys gives
    the same guarantee (a tie needs 64 equal random bits) in one pass; where jax needs one round
    anyway we call it (a single-key sort is cheaper than a two-key one).
    """
    if int(np.ceil(3 * np.log(max(n, 1)) / np.log(np.iinfo(np.uint32).max))) <= 1:
        return jax.random.permutation(key, n)
    bits = jax.random.bits(key, (2, n), jnp.uint32)
    return jax.lax.sort((bits[0], bits[1], jnp.arange(n, dtype=jnp.int32)), num_keys=2)[2]


def split_envs(x: jax.Array, num_minibatches: int) -> jax.Array:
    """``[R, T, E, ...] -> [R · NMB, T, E / NMB, ...]``: each unroll split along envs into minibatches of
    whole unrolls (time kept in order, for V-trace's recursion and a recurrent policy's replay)."""
    R, T, E = x.shape[:3]
    x = x.reshape(R, T, num_minibatches, E // num_minibatches, *x.shape[3:])
    return jnp.moveaxis(x, 2, 1).reshape(R * num_minibatches, T, E // num_minibatches, *x.shape[4:])


def per_env(x: jax.Array) -> jax.Array:
    """``[T, MB, ...] -> [MB, T, ...]``: one trajectory per env, for losses that take ``[T]``."""
    return jnp.swapaxes(x, 0, 1)


def linear_schedule(start, end, fraction, total_timesteps: int, env_step):
    """``start`` → ``end`` linearly over ``fraction × total_timesteps`` env steps, then ``end`` (ε-greedy's ε,
    distillation's β). The arguments may be traced."""
    decay = jnp.maximum(1.0, fraction * total_timesteps)
    frac = jnp.clip(env_step / decay, 0.0, 1.0)
    return start + frac * (end - start)


class ReplaySizes:
    """The replay learners' derived sizes (DQN, SAC, TD3; a mixin of their config classes): the ring holds
    ``buffer_size`` transitions as whole unrolls, and an iteration takes ``replay_ratio`` gradient steps per env
    step."""

    buffer_size: int
    replay_ratio: float
    steps_per_iteration: int

    @property
    def buffer_unrolls(self) -> int:
        return max(1, self.buffer_size // self.steps_per_iteration)

    @property
    def gradient_steps_per_iteration(self) -> int:
        return int(round(self.replay_ratio * self.steps_per_iteration))


def epsilon_schedule(hp: HParams, total_timesteps: int, env_step):
    """Linear ε from eps_start to eps_end over eps_decay_fraction × total_timesteps env steps (DQN, PQN)."""
    return linear_schedule(hp["eps_start"], hp["eps_end"], hp["eps_decay_fraction"], total_timesteps, env_step)


def epsilon_greedy(key, q: jax.Array, eps) -> jax.Array:
    """ε-greedy actions ``[E]`` from action values ``q`` ``[E, A]`` (DQN, PQN); ``eps`` may be traced.

    One uniform draw per env does both jobs: u < ε explores, and then u / ε is uniform on [0, 1)
    and picks the random action (one PRNG call per step instead of three).
    """
    A = q.shape[-1]
    u = jax.random.uniform(key, q.shape[:1])
    explore = u < eps
    random_action = jnp.minimum((u / jnp.maximum(eps, 1e-12) * A).astype(jnp.int32), A - 1)
    return jnp.where(explore, random_action, jnp.argmax(q, -1))


def standardize(x: jax.Array) -> jax.Array:
    """(x − mean) / (std + 1e-8) over all of ``x`` (advantage normalisation)."""
    return (x - x.mean()) / (x.std() + 1e-8)


def sample_categorical(key, logits):
    """Sample from Categorical(logits) ``[E, A] -> [E]`` and its log-prob ``[E]``."""
    action = jax.random.categorical(key, logits)
    return action, categorical_log_prob(logits, action)


# ---------------------------------------------------------------------------------------------
# spectrum diagnostics (types.DIAGNOSTICS)
# ---------------------------------------------------------------------------------------------
def ratio_diagnostics(rho: jax.Array, clip_low, clip_high) -> dict[str, jax.Array]:
    """Importance-ratio statistics of ``rho`` [N] (π_learner / μ_behaviour).

    ``ess`` is Kish's effective sample size (Σρ)² / (N Σρ²) as a fraction of N: 1 when every
    weight is equal (on-policy), → 1/N when one sample carries all the weight.
    """
    rho = jax.lax.stop_gradient(rho)
    n = rho.size
    return {
        "ratio_mean": rho.mean(),
        "ratio_max": rho.max(),
        "ratio_clip_frac": jnp.mean((rho < clip_low) | (rho > clip_high)),
        "ess": jnp.square(rho.sum()) / (n * jnp.square(rho).sum() + 1e-12),
    }


def sampled_kl(log_rho: jax.Array) -> jax.Array:
    """KL(μ_acting ‖ π_learning) from actions sampled by μ: mean of (ρ − 1) − log ρ (Schulman's k3).

    Unbiased and ≥ 0 per sample; needs only the stored log μ(a), not the acting logits, so the
    rollout stores one float per step instead of ``[A]``.
    """
    log_rho = jax.lax.stop_gradient(log_rho)
    return jnp.mean(jnp.expm1(log_rho) - log_rho)


def age_diagnostics(grad_steps: jax.Array, version: jax.Array) -> dict[str, jax.Array]:
    """Data age in gradient steps: learner's step count minus that of the params that acted."""
    age = (grad_steps - version).astype(jnp.float32)
    return {"data_age": age.mean(), "data_age_max": age.max()}


def nan_like(tree):
    """A pytree of NaNs (floats) or zeros (ints) with the shapes and dtypes of ``tree`` (arrays or shapes)."""
    def fill(x):
        if jnp.issubdtype(x.dtype, jnp.floating):
            return jnp.full(x.shape, jnp.nan, x.dtype)
        return jnp.zeros(x.shape, x.dtype)
    return jax.tree.map(fill, tree)


def mean_metrics(stacked: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Average per-gradient-step metrics ``[G]`` into scalars (max for ``*_max``)."""
    return {k: (v.max() if k.endswith("_max") else v.mean()) for k, v in stacked.items()}


# ---------------------------------------------------------------------------------------------
# what the actor-critic algorithms share beyond the update: action spaces, observations, memory
# ---------------------------------------------------------------------------------------------
def action_space(cfg, spec) -> ActionSpace:
    """The env's action space as the distribution functions need it (``cfg.action_squash`` for Box spaces)."""
    return ActionSpace(num_actions=spec.num_actions, low=spec.action_low, high=spec.action_high,
                       squash=getattr(cfg, "action_squash", "clip"))


def init_obs_stats(cfg, spec) -> RunningStats | None:
    """Running observation statistics for the agent state, or None without ``normalize_observations``."""
    return init_stats(spec.obs_shape) if cfg.normalize_observations else None


def observe_obs_stats(agent, unroll: Transition, hp: HParams):
    """``Algorithm.observe`` for agents with an ``obs_stats`` field: merge the new unroll's observations."""
    return agent._replace(obs_stats=update_stats(agent.obs_stats, unroll.obs))


def unroll_policy(apply: Callable[..., Any], params, obs, carry0, first):
    """Replay a recurrent actor-critic over ``[T, B]`` from its stored initial state, resetting where an
    episode starts: ``(policy [T, B, ...], value [T, B], carry after each step [T, B, H])``.

    ``obs``: ``[T, B, O...]``; ``carry0``: ``[B, H]`` (the state before step 0, already reset if an
    episode started there); ``first``: ``[T, B]`` bool.
    """
    def step(carry, xs):
        o, f = xs
        carry = jnp.where(f[:, None], jnp.zeros_like(carry), carry)
        policy, value, carry = apply(params, o, carry)
        return carry, (policy, value, carry)

    _, (policy, value, carries) = jax.lax.scan(step, carry0, (obs, first))
    return policy, value, carries
