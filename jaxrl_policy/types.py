"""Core NamedTuples shared by the loop, storage and algorithms.

Shape legend: ``T`` time (unroll length), ``E`` envs, ``K`` stored unrolls, ``R`` samples drawn
per learning step, ``B`` batch, ``A`` actions, ``O...`` observation shape, ``S`` seeds.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax

PyTree = Any


class Transition(NamedTuple):
    """One env step of E envs; an *unroll* is a Transition with leading ``[T, E]``.

    ``next_obs`` is the true next observation (the final one where an episode ended), so a
    time-limit truncation can bootstrap from V(next_obs) while a termination does not.
    ``extras`` holds what the acting algorithm recorded (log-probs, values, logits, the
    version of the acting parameters, …).
    """

    obs: jax.Array  # [E, O...]
    action: jax.Array  # [E]
    reward: jax.Array  # [E] float32
    terminated: jax.Array  # [E] bool
    truncated: jax.Array  # [E] bool
    next_obs: jax.Array  # [E, O...]
    extras: dict[str, jax.Array]  # each [E, ...]


class Storage(NamedTuple):
    """Where collected unrolls go and how learning draws from them (pure functions).

    - ``init(unroll_example) -> storage_state``
    - ``add(storage_state, unroll [T, E]) -> storage_state``
    - ``sample(storage_state, key) -> batch`` (its layout is what the algorithm's ``learn`` expects)
    - ``ready(iterations_done) -> bool``: whether enough data exists to learn. It depends only on
      the (unbatched) iteration count, so under ``vmap`` over seeds the learning ``lax.cond``
      stays a real branch instead of becoming a select that always runs ``learn``.
    """

    init: Callable[[Transition], PyTree]
    add: Callable[[PyTree, Transition], PyTree]
    sample: Callable[[PyTree, jax.Array], PyTree]
    ready: Callable[[jax.Array], jax.Array]


class Algorithm(NamedTuple):
    """An algorithm is a bundle of pure functions plus a storage choice (optax-style).

    - ``init(key) -> agent_state``
    - ``actor(agent_state) -> actor_state``: the parameters that act this iteration (possibly lagged)
    - ``act(actor_state, obs [E, O...], key, env_step) -> (action [E], extras dict of [E, ...])``
    - ``learn(agent_state, batch, key, env_step) -> (agent_state, metrics dict of scalars)``

    ``env_step`` is the number of env steps taken so far (unbatched int32 scalar): schedules
    such as ε-greedy and target-network periods read it.
    """

    init: Callable[[jax.Array], PyTree]
    actor: Callable[[PyTree], PyTree]
    act: Callable[[PyTree, jax.Array, jax.Array, jax.Array], tuple[jax.Array, dict[str, jax.Array]]]
    learn: Callable[[PyTree, PyTree, jax.Array, jax.Array], tuple[PyTree, dict[str, jax.Array]]]
    storage: Storage


class LoopState(NamedTuple):
    """Everything the training loop carries from one iteration to the next."""

    agent: PyTree
    env: PyTree  # envs.adapter.EnvState
    storage: PyTree
    key: jax.Array
    iteration: jax.Array  # int32 scalar: iterations completed


# Metric names every algorithm logs (NaN where a quantity does not exist for it), so the
# on-/off-policy spectrum can be measured with the same columns.
DIAGNOSTICS = (
    "data_age",  # mean age of the learned-on data, in gradient steps
    "data_age_max",
    "ratio_mean",  # importance ratio π_learner / μ_behaviour
    "ratio_max",
    "ratio_clip_frac",  # fraction of ratios the correction clipped
    "ess",  # effective sample size of the ratios, as a fraction of the batch, in (0, 1]
    "policy_kl",  # KL(acting ‖ learning) policy, where a policy exists
    "grad_steps",  # gradient steps taken so far
)
