"""Core types shared by the loop, storage and algorithms (the bottom floor: imports nothing of the package).

Shape legend: ``T`` time (unroll length), ``E`` envs, ``K`` stored unrolls, ``R`` samples drawn
per learning step, ``B`` batch, ``A`` actions, ``O...`` observation shape, ``S`` seeds,
``P`` sweep points.

The bundles follow optax's ``GradientTransformation``: a NamedTuple of pure functions whose
signatures are spelled out as Protocols (positional-only: the names document, any names match),
with every piece of state an explicit pytree.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Protocol

import jax
import jax.numpy as jnp

PyTree = Any
Params = Any  # a flax parameter pytree
AgentState = Any  # an algorithm's own NamedTuple (PPOState, DQNState, VTraceState)
ActorState = Any  # what acts: parameters (maybe lagged) and their version
StorageState = Any  # storage.RingState
HParams = dict[str, Any]  # traced hyperparameters: name -> scalar (config.hparams)
Metrics = dict[str, jax.Array]  # name -> scalar


class Transition(NamedTuple):
    """One env step of E envs; an *unroll* is a Transition with leading ``[T, E]``.

    ``next_obs`` is the true next observation (the final one where an episode ended), so a
    time-limit truncation can bootstrap from V(next_obs) while a termination does not.
    ``extras`` holds what the acting algorithm recorded (log-probs, values, the version of the
    acting parameters, …).
    """

    obs: jax.Array  # [E, O...]
    action: jax.Array  # [E]
    reward: jax.Array  # [E] float32
    terminated: jax.Array  # [E] bool
    truncated: jax.Array  # [E] bool
    next_obs: jax.Array  # [E, O...]
    extras: dict[str, jax.Array]  # each [E, ...]


# ---- storage -------------------------------------------------------------------------------
class StorageInit(Protocol):
    def __call__(self, unroll_example: Transition, /) -> StorageState: ...


class StorageAdd(Protocol):
    def __call__(self, state: StorageState, unroll: Transition, /) -> StorageState:
        """Store one unroll ``[T, E]``."""


class StorageSample(Protocol):
    def __call__(self, state: StorageState, key: jax.Array, /) -> PyTree:
        """A batch in the layout the algorithm's ``learn`` expects."""


class Storage(NamedTuple):
    """Where collected unrolls go and how learning draws from them (pure functions)."""

    init: StorageInit
    add: StorageAdd
    sample: StorageSample


# ---- algorithm -----------------------------------------------------------------------------
class AlgorithmInit(Protocol):
    def __call__(self, key: jax.Array, /) -> AgentState: ...


class AlgorithmActor(Protocol):
    def __call__(self, agent: AgentState, hp: HParams, /) -> ActorState:
        """The parameters that act this iteration (the learner's, or L updates old)."""


class AlgorithmAct(Protocol):
    def __call__(self, actor: ActorState, obs: jax.Array, carry: PyTree, key: jax.Array, env_step: jax.Array,
                 hp: HParams, /) -> tuple[jax.Array, dict[str, jax.Array], PyTree]:
        """``obs [E, O...] -> (action [E, ...], extras {name: [E, ...]}, carry)``. ``carry`` is the policy's
        memory (a recurrent state ``[E, ...]``; None for feed-forward policies), already reset by the loop
        where an episode starts. ``env_step``: env steps taken so far (unbatched int32), read by
        schedules such as ε-greedy."""


class AlgorithmInitCarry(Protocol):
    def __call__(self, num_envs: int, /) -> PyTree:
        """The recurrent state of ``num_envs`` envs at an episode's start (leaves ``[E, ...]``)."""


class AlgorithmObserve(Protocol):
    def __call__(self, agent: AgentState, unroll: Transition, hp: HParams, /) -> AgentState:
        """See each new unroll ``[T, E]`` before learning (e.g. update observation statistics)."""


class AlgorithmLearn(Protocol):
    def __call__(self, agent: AgentState, batch: PyTree, key: jax.Array, env_step: jax.Array,
                 hp: HParams, /) -> tuple[AgentState, Metrics]:
        """One learning step on a batch sampled from storage; metrics are scalars (NaN where n/a)."""


class AlgorithmGreedy(Protocol):
    def __call__(self, agent: AgentState, obs: jax.Array, carry: PyTree, hp: HParams, /) -> tuple[jax.Array, PyTree]:
        """The learner's deterministic (greedy) action ``[E, ...]`` for ``obs [E, O...]`` (and the next
        carry): what evaluation runs."""


class PolicyExport(NamedTuple):
    """The greedy policy of an agent, as data a deployment can rebuild with ``core`` modules alone
    (``io/policy.load_policy``; ``running/export.py`` writes it).

    ``network``: a class of ``core.networks`` or ``core.policies``, built with ``kwargs`` (JSON values);
    ``params``: what it applies; ``obs_stats``: running observation statistics (None: raw observations);
    ``head``: how the output becomes the action — ``"mode"`` (an actor-critic's policy output, first of the
    outputs: ``distributions.mode``), ``"argmax"`` (Q-values), ``"action"`` (the output is the action),
    ``"squashed_mode"`` (the output is a Gaussian before a tanh squash: its mean, squashed to the bounds).
    """

    network: str
    kwargs: dict[str, Any]
    params: Params
    obs_stats: Any
    head: str


class AlgorithmExport(Protocol):
    def __call__(self, agent: AgentState, /) -> PolicyExport:
        """The agent's greedy policy as data (``PolicyExport``)."""


class Algorithm(NamedTuple):
    """An algorithm is a bundle of pure functions plus a storage choice (optax-style).

    ``hp`` is the dict of traced hyperparameters (``config.hparams``): numpy constants for a single
    run, traced arrays for a sweep. The loop never looks inside it. Optional pieces:

    - ``greedy``: what evaluation runs; without it, evaluation samples from ``act``.
    - ``init_carry``: a recurrent policy's state at an episode's start; the loop carries it across
      steps and iterations, resets it where an episode starts (after a termination *or* a
      truncation), and stores each step's carry and ``first`` flag in ``extras`` (``"carry"``,
      ``"first"``) so learning can replay whole unrolls from their stored initial state.
    - ``observe``: sees each new unroll before learning (observation normalisation statistics).
    - ``export``: the greedy policy as data (``jaxrl-policy export``); without it a run cannot be exported.
    """

    init: AlgorithmInit
    actor: AlgorithmActor
    act: AlgorithmAct
    learn: AlgorithmLearn
    storage: Storage
    greedy: AlgorithmGreedy | None = None
    init_carry: AlgorithmInitCarry | None = None
    observe: AlgorithmObserve | None = None
    export: AlgorithmExport | None = None


class LoopState(NamedTuple):
    """Everything the training loop carries from one iteration to the next."""

    agent: AgentState
    env: PyTree  # core.envs.EnvState, leaves [E, ...]
    storage: StorageState  # leaves [K, T, E, ...]
    key: jax.Array  # PRNG key
    iteration: jax.Array  # int32 scalar: iterations completed
    hparams: HParams  # the traced hyperparameters given to train(key, hparams); {} for a single run
    carry: PyTree  # the policy's recurrent state, leaves [E, ...]; None for feed-forward policies
    first: jax.Array  # [E] bool: the next step starts an episode


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

# Cumulative counters among the metrics: a log row keeps the window's last value (not its mean), so
# curves can be drawn against them (distillation's teacher queries and student env steps).
COUNTERS = ("grad_steps", "teacher_queries", "student_env_steps")


class Teacher(NamedTuple):
    """A frozen policy as a value: what distillation and dataset collection receive (``run/build.load_teacher``
    makes one from a run folder; tests build them by hand)."""

    algo: str  # the algorithm that trained it
    env_id: str  # the env whose observation it sees
    seed: int  # the teacher run's seed that was kept
    logits: Callable[[jax.Array], jax.Array]  # obs [B, O...] -> logits [B, A] (temperature applied)


def nan_like(tree):
    """A pytree of NaNs (floats) or zeros (ints) with the shapes and dtypes of ``tree`` (arrays or shapes)."""
    def fill(x):
        if jnp.issubdtype(x.dtype, jnp.floating):
            return jnp.full(x.shape, jnp.nan, x.dtype)
        return jnp.zeros(x.shape, x.dtype)
    return jax.tree.map(fill, tree)
