"""Frozen, validated configs: one dataclass per algorithm over a shared base.

Every field is a command-line flag with the same name (``num_envs`` ↔ ``--num-envs``).
Construction validates every field at once and raises one ``ValueError`` that names each bad
field, its value and the rule — before anything is traced or compiled.

Units: ``*_timesteps`` / ``*_interval`` / ``learning_starts`` count env steps summed over all
parallel envs of one seed (the convention of purejaxrl and CleanRL); an *iteration* collects
``num_envs × num_steps`` env steps and then learns.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import difflib
import math
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from jaxrl_policy.envs.adapter import env_spec, unknown_env_message

Activation = Literal["tanh", "relu", "gelu", "silu"]
Torso = Literal["auto", "mlp", "cnn", "gru"]


class ConfigError(ValueError):
    """A config failed validation; ``problems`` lists ``(field, value, rule)``."""

    def __init__(self, problems: list[tuple[str, Any, str]], algo: str):
        self.problems = problems
        lines = [f"  {name} = {value!r}: {rule}" for name, value, rule in problems]
        super().__init__(f"invalid {algo} config ({len(problems)} problem(s)):\n" + "\n".join(lines))


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


INT32_MAX = 2**31 - 1  # env-step counters and traced integers are int32 in the program
FLOAT32_MAX = float(np.finfo(np.float32).max)  # traced floats are float32


def _type_problems(cfg) -> list[tuple[str, Any, str]]:
    """Rules every field obeys by its annotation, before the per-field rules: a ``bool`` field holds
    true/false; an ``int`` or ``float`` field holds a number that is not a bool, fits int32 / float32
    (the program's dtypes: a larger value would wrap or become inf inside the jit) and is finite."""
    out = []
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        v, tp = getattr(cfg, f.name), hints[f.name]
        args = typing.get_args(tp)
        if type(None) in args:
            if v is None:
                continue
            rest = [a for a in args if a is not type(None)]
            tp = rest[0] if len(rest) == 1 else tp
        if tp is bool:
            if not isinstance(v, (bool, np.bool_)):
                out.append((f.name, v, "must be true or false"))
        elif tp in (int, float) and isinstance(v, (bool, np.bool_)):
            out.append((f.name, v, f"must be {'an integer' if tp is int else 'a number'}, not a bool"))
        elif tp is int and _is_int(v) and not -INT32_MAX - 1 <= v <= INT32_MAX:
            out.append((f.name, v, "must fit in int32 (|value| < 2**31)"))
        elif tp is float and _is_number(v) and not (math.isfinite(v) and abs(v) <= FLOAT32_MAX):
            out.append((f.name, v, "must be a finite number within float32's range (|value| <= 3.4e38)"))
    return out


_VALIDATE = contextvars.ContextVar("jaxrl_policy_validate", default=True)


@contextlib.contextmanager
def deferred_validation():
    """Build configs without validating them (the CLI parses first, then validates once)."""
    token = _VALIDATE.set(False)
    try:
        yield
    finally:
        _VALIDATE.reset(token)


@dataclass(frozen=True)
class BaseConfig:
    """Fields every algorithm shares."""

    env_id: str = "CartPole-v1"
    """[static] gymnax environment id (or a ``Probe-*`` id used by tests)."""
    seed: int = 0
    """[static] base seed; seed i of a multi-seed run uses PRNGKey(seed + i), so runs are comparable across --seeds."""
    num_envs: int = 4
    """[static] parallel environments per seed (E)."""
    num_steps: int = 128
    """[static] env steps per environment per iteration (T, the unroll length)."""
    total_timesteps: int = 500_000
    """[static] env-step budget per seed, summed over envs; rounded down to whole iterations."""
    learning_rate: float = 2.5e-4
    """[traced] Adam step size (initial value when annealed)."""
    anneal_lr: bool = True
    """[traced] linearly anneal the learning rate to 0 over the run (per iteration, as purejaxrl)."""
    adam_eps: float = 1e-5
    """[traced] Adam epsilon."""
    max_grad_norm: float | None = 0.5
    """[traced] clip the global gradient norm to this value; None disables clipping."""
    gamma: float = 0.99
    """[traced] discount factor γ in [0, 1]."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """[static] widths of the torso's dense layers."""
    activation: Activation = "tanh"
    """[static] torso activation."""
    orthogonal_init: bool = True
    """[static] orthogonal initialisation (gain √2 hidden, 0.01 policy head, 1 value head)."""
    torso: Torso = "auto"
    """[static] network torso: auto = CNN for [H, W, C] observations, MLP otherwise; gru = MLP then a GRU core."""
    rnn_size: int = 128
    """[static] units of the GRU core when torso = gru."""
    normalize_observations: bool = False
    """[static] standardise observations with running statistics kept in the agent state."""
    reward_scale: float = 1.0
    """[traced] rewards are multiplied by this before learning (returns logged unscaled)."""
    num_chunks: int = 20
    """[static] host-visible chunks the run is split into (a progress line and log rows after each)."""
    eval_every: int | None = None
    """[static] env steps between evaluations of the greedy policy; None = after every chunk; 0 = at the end only."""
    eval_episodes: int = 16
    """[static] episodes per evaluation (run in parallel, one per env, from fixed keys); 0 = no evaluation."""
    eval_max_steps: int | None = None
    """[static] steps an evaluation episode may last; None = the env's time limit."""
    eval_seed: int = 12345
    """[static] key of the evaluation episodes: the same for every algorithm, seed and evaluation."""
    dataset: str | None = None
    """[static] learn from this fixed dataset (jaxrl-policy collect) instead of acting: no env steps (dqn, distill)."""

    algo: ClassVar[str] = "base"
    TRACED: ClassVar[frozenset[str]] = frozenset({"learning_rate", "anneal_lr", "adam_eps", "max_grad_norm", "gamma",
                                                   "reward_scale"})
    CONTINUOUS_ACTIONS: ClassVar[bool] = False  # whether the algorithm acts in continuous (Box) action spaces
    RECURRENT: ClassVar[bool] = False  # whether it supports torso = gru
    OFFLINE: ClassVar[bool] = False  # whether it learns from a fixed dataset (``dataset``; offline.py)
    """Fields that are data of the compiled program (``hparams``): a sweep over them is one compile."""

    # ---- derived quantities -------------------------------------------------------------
    @property
    def steps_per_iteration(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def num_iterations(self) -> int:
        return self.total_timesteps // self.steps_per_iteration

    @property
    def gradient_steps_per_iteration(self) -> int:
        """Optimizer steps per iteration (each algorithm's own)."""
        raise NotImplementedError

    @property
    def iterations_per_chunk(self) -> int:
        """Iterations per host-visible chunk: ⌈num_iterations / num_chunks⌉ (the last chunk may be partial)."""
        n = max(1, self.num_iterations)
        return -(-n // max(1, min(self.num_chunks, n)))

    def with_replay_unrolls(self, unrolls: int) -> BaseConfig:
        """This config with storage for ``unrolls`` unrolls (an offline run holds the whole dataset)."""
        raise NotImplementedError(f"{self.algo} does not learn from datasets")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["algo"] = self.algo
        return d

    def replace(self, **changes) -> BaseConfig:
        """A validated copy with ``changes`` (unknown names raise with a suggestion, as ``default_config``)."""
        _check_names(type(self), changes)
        for name in ("hidden_sizes", "teachers"):
            if isinstance(changes.get(name), list):
                changes[name] = tuple(changes[name])
        return dataclasses.replace(self, **changes)

    @classmethod
    def static_fields(cls) -> tuple[str, ...]:
        """Fields that shape the compiled program: one compile per combination of their values."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.name not in cls.TRACED)

    # ---- validation ---------------------------------------------------------------------
    def _problems(self) -> list[tuple[str, Any, str]]:
        p: list[tuple[str, Any, str]] = []

        def check(name, ok, rule):
            if not ok:
                p.append((name, getattr(self, name), rule))

        def finite_pos(name):
            v = getattr(self, name)
            check(name, isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0,
                  "must be a finite number > 0")

        def unit(name, lo_open=False):
            v = getattr(self, name)
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and (0 < v <= 1 if lo_open else 0 <= v <= 1)
            check(name, ok, "must be in (0, 1]" if lo_open else "must be in [0, 1]")

        def pos_int(name, minimum=1):
            v = getattr(self, name)
            check(name, isinstance(v, int) and not isinstance(v, bool) and v >= minimum,
                  f"must be an integer >= {minimum}")

        msg = unknown_env_message(self.env_id) if isinstance(self.env_id, str) else "must be a string"
        check("env_id", msg is None, msg or "")
        pos_int("seed", 0)
        pos_int("num_envs")
        pos_int("num_steps")
        pos_int("total_timesteps")
        pos_int("num_chunks")
        pos_int("eval_episodes", 0)
        pos_int("eval_seed", 0)
        if self.eval_every is not None:
            pos_int("eval_every", 0)
        if self.eval_max_steps is not None:
            pos_int("eval_max_steps")
        finite_pos("learning_rate")
        finite_pos("adam_eps")
        if self.max_grad_norm is not None:
            finite_pos("max_grad_norm")
        unit("gamma")
        check("hidden_sizes", isinstance(self.hidden_sizes, tuple) and len(self.hidden_sizes) > 0
              and all(isinstance(h, int) and h > 0 for h in self.hidden_sizes),
              "must be a non-empty tuple of positive integers")
        check("activation", self.activation in ("tanh", "relu", "gelu", "silu"), "must be tanh, relu, gelu or silu")
        check("torso", self.torso in ("auto", "mlp", "cnn", "gru"), "must be auto, mlp, cnn or gru")
        pos_int("rnn_size")
        if self.torso == "gru":
            check("torso", self.RECURRENT, f"{self.algo} has no recurrent policy; use ppo or vtrace, or torso mlp/cnn")
        check("normalize_observations", isinstance(self.normalize_observations, bool), "must be true or false")
        if self.dataset is not None and not isinstance(self.dataset, str):
            check("dataset", False, "must be a file path (a string) or None")
        elif self.dataset is not None:
            check("dataset", self.OFFLINE, f"{self.algo} does not learn from datasets (dqn and distill do)")
            if self.OFFLINE and msg is None and _is_int(self.num_envs) and _is_int(self.num_steps):
                from jaxrl_policy.dataset import dataset_problems
                for problem in dataset_problems(str(self.dataset), self.env_id, self.num_envs * self.num_steps):
                    check("dataset", False, problem)
            check("normalize_observations", not self.normalize_observations,
                  "no running statistics offline (they are updated from acting)")
        finite_pos("reward_scale")
        if not p:
            check("total_timesteps", self.total_timesteps >= self.steps_per_iteration,
                  f"must be >= num_envs × num_steps = {self.steps_per_iteration} (one iteration)")
        spec = None
        if msg is None:
            try:
                spec = env_spec(self.env_id)
            except Exception as e:  # any failure to build the env (MNISTBandit-bsuite downloads MNIST) is the id's
                check("env_id", False, f"gymnax could not build this environment ({type(e).__name__}: {e})")
        if spec is not None:
            check("env_id", spec.num_actions is not None or self.CONTINUOUS_ACTIONS,
                  f"{self.algo} needs a discrete action space; {self.env_id} has a continuous one "
                  "(ppo and vtrace act in continuous spaces)")
            if self.torso == "cnn":
                check("torso", len(spec.obs_shape) == 3, f"cnn needs [H, W, C] observations; got {spec.obs_shape}")
            if self.torso == "gru":
                check("torso", len(spec.obs_shape) == 1, f"gru needs flat observations; got {spec.obs_shape}")
            if self.eval_episodes and self.eval_max_steps is None and spec.max_episode_steps is None:
                check("eval_max_steps", False,
                      f"must be set: {self.env_id} has no time limit to end evaluation episodes")
        return p

    def __post_init__(self):
        if _VALIDATE.get():
            self.validate()

    def validate(self) -> None:
        """Raise one ``ConfigError`` naming every bad field, its value and the rule (one rule per field:
        the type rules of ``_type_problems`` first)."""
        problems = _type_problems(self)
        bad = {name for name, _, _ in problems}
        problems += [q for q in self._problems() if q[0] not in bad]
        if problems:
            raise ConfigError(problems, self.algo)


@dataclass(frozen=True)
class ActorCriticConfig(BaseConfig):
    """Fields of the actor-critic algorithms (PPO, V-trace): the policy head, continuous actions."""

    share_torso: bool = False
    """[static] one torso for policy and value (purejaxrl uses two; a gru core is always shared)."""
    action_squash: Literal["clip", "tanh"] = "clip"
    """[static] continuous actions: clip the Gaussian sample to the bounds in the env, or squash it with tanh."""
    state_dependent_std: bool = False
    """[static] continuous actions: the log-std is a head of the network (default: one learned vector)."""
    log_std_init: float = 0.0
    """[static] continuous actions: initial log-std of the Gaussian policy."""

    CONTINUOUS_ACTIONS: ClassVar[bool] = True
    RECURRENT: ClassVar[bool] = True

    def _problems(self):
        p = super()._problems()
        if self.action_squash not in ("clip", "tanh"):
            p.append(("action_squash", self.action_squash, "must be clip or tanh"))
        if not (_is_number(self.log_std_init) and -20 <= self.log_std_init <= 2):
            p.append(("log_std_init", self.log_std_init, "must be a number in [-20, 2]"))
        for name in ("state_dependent_std", "share_torso"):
            if not isinstance(getattr(self, name), bool):
                p.append((name, getattr(self, name), "must be true or false"))
        return p


@dataclass(frozen=True)
class PPOConfig(ActorCriticConfig):
    """PPO (Schulman et al. 2017) with GAE; defaults equal purejaxrl's ppo.py for CartPole-v1."""

    gae_lambda: float = 0.95
    """[traced] GAE λ in [0, 1]."""
    num_epochs: int = 4
    """[static] passes over each collected batch."""
    num_minibatches: int = 4
    """[static] minibatches per epoch; must divide num_envs × num_steps."""
    clip_eps: float = 0.2
    """[traced] ratio clipping ε of the surrogate (and of the value loss when clip_value_loss)."""
    ent_coef: float = 0.01
    """[traced] entropy bonus coefficient."""
    vf_coef: float = 0.5
    """[traced] value-loss coefficient."""
    clip_value_loss: bool = True
    """[traced] clip the value prediction around the old value by clip_eps (as purejaxrl)."""
    normalize_advantages: bool = True
    """[traced] standardise advantages per minibatch."""

    algo: ClassVar[str] = "ppo"
    TRACED = BaseConfig.TRACED | {"gae_lambda", "clip_eps", "ent_coef", "vf_coef", "clip_value_loss",
                                  "normalize_advantages"}

    @property
    def gradient_steps_per_iteration(self) -> int:
        return self.num_epochs * self.num_minibatches

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


@dataclass(frozen=True)
class DQNConfig(BaseConfig):
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
    """[static] replay capacity in transitions (rounded down to whole unrolls of num_envs × num_steps)."""
    batch_size: int = 128
    """[static] transitions per gradient step."""
    replay_ratio: float = 0.1
    """[static] gradient steps per env step; × num_envs × num_steps must be a whole number >= 1."""
    learning_starts: int = 10_000
    """[traced] env steps collected before the first gradient step."""
    target_update_interval: int = 500
    """[traced] env steps between target-network updates."""
    tau: float = 1.0
    """[traced] target update θ⁻ ← τ θ + (1 − τ) θ⁻; 1 is a hard copy."""
    eps_start: float = 1.0
    """[traced] ε-greedy ε at the start."""
    eps_end: float = 0.05
    """[traced] ε-greedy ε after the decay."""
    eps_decay_fraction: float = 0.5
    """[traced] fraction of total_timesteps over which ε decays linearly (purejaxrl: 25e4 of 5e5)."""
    double_q: bool = False
    """[static] select the bootstrap action with the online network (double DQN)."""
    loss: Literal["squared", "huber"] = "squared"
    """[static] TD loss: squared (0.5 δ², purejaxrl's MSE up to a factor) or Huber."""
    huber_delta: float = 1.0
    """[traced] Huber loss δ (quadratic within ±δ, linear outside); used when loss = huber."""

    algo: ClassVar[str] = "dqn"
    OFFLINE: ClassVar[bool] = True

    def with_replay_unrolls(self, unrolls: int) -> BaseConfig:
        return dataclasses.replace(self, buffer_size=unrolls * self.steps_per_iteration)
    TRACED = BaseConfig.TRACED | {"learning_starts", "target_update_interval", "tau", "eps_start", "eps_end",
                                  "eps_decay_fraction", "huber_delta"}

    @property
    def buffer_unrolls(self) -> int:
        return max(1, self.buffer_size // self.steps_per_iteration)

    @property
    def gradient_steps_per_iteration(self) -> int:
        return int(round(self.replay_ratio * self.steps_per_iteration))

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
        if not (_is_number(self.huber_delta) and math.isfinite(self.huber_delta) and self.huber_delta > 0):
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


@dataclass(frozen=True)
class VTraceConfig(ActorCriticConfig):
    """IMPALA-style actor-critic with V-trace targets (Espeholt et al. 2018).

    ``policy_lag`` = 0, ``replay_capacity`` = 1, ``replay_ratio`` = 1 is on-policy A2C with GAE-like
    λ-returns; raising any of them moves along the spectrum towards off-policy learning.
    """

    # CartPole defaults at PPO's batch (4 envs × 128 steps; 4 passes × 4 minibatches = 16 gradient
    # steps of 128 samples per iteration), so the two do the same work per env step. λ, lr and
    # entropy differ from PPO's: tuned over 8 seeds at 5e5 steps (λ = 1, lr 5e-4, entropy 0.001;
    # every seed ≥ 490).
    num_envs: int = 4
    num_steps: int = 128
    learning_rate: float = 5e-4
    gae_lambda: float = 1.0
    """[traced] λ of the V-trace trace (c_t = λ min(c̄, ρ_t)); with ρ = 1 the targets equal GAE(λ)."""
    clip_rho_threshold: float = 1.0
    """[traced] ρ̄: truncation of the importance weight in the value target."""
    clip_pg_rho_threshold: float = 1.0
    """[traced] ρ̄ of the policy-gradient advantage."""
    clip_c_threshold: float = 1.0
    """[traced] c̄: truncation of the trace coefficients."""
    ent_coef: float = 0.001
    """[traced] entropy bonus coefficient."""
    vf_coef: float = 0.5
    """[traced] value-loss coefficient."""
    policy_lag: int = 0
    """[traced] acting parameters are this many gradient steps older than the learner's (L <= max_policy_lag)."""
    max_policy_lag: int | None = None
    """[static] size of the ring of past parameters, the largest policy_lag a program can run; None = policy_lag."""
    replay_capacity: int = 1
    """[static] unrolls kept (K); 1 = only the latest."""
    replay_ratio: int = 4
    """[static] passes per iteration; the first uses the newest unroll, the rest uniform draws from the K kept
    (with K = 1 every pass reuses the newest unroll, like PPO's epochs)."""
    num_minibatches: int = 4
    """[static] minibatches per sampled unroll, split along the env axis (must divide num_envs)."""
    normalize_advantages: bool = False
    """[traced] standardise the policy-gradient advantages per minibatch."""
    off_policy_correction: bool = True
    """[traced] weight stale data by the truncated importance ratios; false = treat it as on-policy (ρ = c = 1)."""

    algo: ClassVar[str] = "vtrace"
    TRACED = BaseConfig.TRACED | {"gae_lambda", "clip_rho_threshold", "clip_pg_rho_threshold", "clip_c_threshold",
                                  "ent_coef", "vf_coef", "policy_lag", "normalize_advantages",
                                  "off_policy_correction"}

    @property
    def gradient_steps_per_iteration(self) -> int:
        return self.replay_ratio * self.num_minibatches

    @property
    def policy_lag_capacity(self) -> int:
        """Largest policy lag this config's program supports (the ring of past parameters holds it + 1)."""
        return self.policy_lag if self.max_policy_lag is None else self.max_policy_lag

    def _problems(self):
        p = super()._problems()
        g = lambda n: getattr(self, n)  # noqa: E731
        if not (isinstance(self.gae_lambda, (int, float)) and 0 <= self.gae_lambda <= 1):
            p.append(("gae_lambda", self.gae_lambda, "must be in [0, 1]"))
        for name in ("clip_rho_threshold", "clip_pg_rho_threshold", "clip_c_threshold"):
            if not (isinstance(g(name), (int, float)) and g(name) > 0):
                p.append((name, g(name), "must be > 0 (use a large finite value to disable)"))
        for name in ("ent_coef", "vf_coef"):
            if not (isinstance(g(name), (int, float)) and math.isfinite(g(name)) and g(name) >= 0):
                p.append((name, g(name), "must be a finite number >= 0"))
        if not (_is_int(self.policy_lag) and self.policy_lag >= 0):
            p.append(("policy_lag", self.policy_lag, "must be an integer >= 0"))
        elif self.max_policy_lag is not None:
            if not (_is_int(self.max_policy_lag) and self.max_policy_lag >= 0):
                p.append(("max_policy_lag", self.max_policy_lag, "must be an integer >= 0 or None"))
            elif self.policy_lag > self.max_policy_lag:
                p.append(("policy_lag", self.policy_lag, f"must be <= max_policy_lag = {self.max_policy_lag}"))
        for name in ("replay_capacity", "replay_ratio", "num_minibatches"):
            if not (isinstance(g(name), int) and g(name) >= 1):
                p.append((name, g(name), "must be an integer >= 1"))
        if isinstance(self.num_minibatches, int) and self.num_minibatches >= 1 and isinstance(self.num_envs, int) \
                and self.num_envs % self.num_minibatches:
            p.append(("num_minibatches", self.num_minibatches, f"must divide num_envs = {self.num_envs}"))
        return p


DistillMode = Literal["off-policy", "on-policy", "mixed"]
Divergence = Literal["forward", "reverse", "jsd"]


@dataclass(frozen=True)
class DistillConfig(ActorCriticConfig):
    """Policy distillation from frozen teachers (``algorithms/distill.py``, ``losses/distill.py``).

    ``mode`` picks who acts: the teacher (``off-policy``: the student learns on teacher states, as
    behaviour cloning with soft labels, Rusu et al. 2016), the student (``on-policy``: the states the
    student visits are labelled by the teacher, DAgger-style, Ross et al. 2011; Agarwal et al. 2024),
    or the teacher with probability β decaying from ``beta_start`` to ``beta_end`` (``mixed``, DAgger's
    β-mixture). The env is ``env_id`` (the teachers see its observation); the student sees
    ``student_obs`` of it when given (a privileged teacher). Env copy e is labelled (and, when the
    teacher acts, driven) by teacher ``e mod len(teachers)``.
    """

    teachers: tuple[str, ...] = ()
    """[static] run folders of the teachers (config.json + checkpoints/); at least one."""
    teacher_seed: int = 0
    """[static] which seed of each teacher run teaches: an index into the run's seeds list."""
    teacher_temperature: float = 1.0
    """[static] teacher logits are divided by τ (a DQN teacher acts by softmax(Q / τ))."""
    mode: DistillMode = "on-policy"
    """[static] who acts: off-policy = the teacher, on-policy = the student, mixed = the teacher with probability β."""
    divergence: Divergence = "forward"
    """[static] per-state loss: forward = KL(teacher ‖ student), reverse = KL(student ‖ teacher), jsd = GKD's JSD(β)."""
    jsd_beta: float = 0.5
    """[traced] β of the generalised JSD (divergence = jsd), in (0, 1)."""
    beta_start: float = 1.0
    """[traced] mixed mode: probability that the teacher acts at the start."""
    beta_end: float = 0.0
    """[traced] mixed mode: probability that the teacher acts after the decay."""
    beta_decay_fraction: float = 0.5
    """[traced] mixed mode: fraction of total_timesteps over which β decays linearly."""
    student_obs: str | None = None
    """[static] an observation-wrapper env id of env_id (e.g. CartPole-v1-NoVelocity): what the student sees."""
    distill_coef: float = 1.0
    """[traced] weight of the distillation loss."""
    rl_coef: float = 0.0
    """[traced] weight of the env-reward term (V-trace actor-critic with ρ̄ = c̄ = 1 on the acting data); 0 = none."""
    gae_lambda: float = 0.95
    """[traced] λ of the V-trace targets of the reward term."""
    ent_coef: float = 0.0
    """[traced] entropy bonus of the reward term."""
    vf_coef: float = 0.5
    """[traced] value-loss weight of the reward term."""
    num_epochs: int = 2
    """[static] unrolls drawn from storage per iteration (the first is the newest)."""
    num_minibatches: int = 2
    """[static] minibatches per drawn unroll, split along the env axis (must divide num_envs)."""
    replay_capacity: int = 1
    """[static] unrolls kept (K); 1 = only the latest."""

    num_envs: int = 8
    num_steps: int = 64
    total_timesteps: int = 50_000
    learning_rate: float = 1e-3
    anneal_lr: bool = False

    algo: ClassVar[str] = "distill"
    CONTINUOUS_ACTIONS: ClassVar[bool] = False
    OFFLINE: ClassVar[bool] = True

    def with_replay_unrolls(self, unrolls: int) -> BaseConfig:
        return dataclasses.replace(self, replay_capacity=unrolls)
    TRACED = BaseConfig.TRACED | {"jsd_beta", "beta_start", "beta_end", "beta_decay_fraction", "distill_coef",
                                  "rl_coef", "gae_lambda", "ent_coef", "vf_coef"}

    @property
    def gradient_steps_per_iteration(self) -> int:
        return self.num_epochs * self.num_minibatches

    def _problems(self):
        p = super()._problems()
        g = lambda n: getattr(self, n)  # noqa: E731
        if self.mode not in ("off-policy", "on-policy", "mixed"):
            p.append(("mode", self.mode, "must be off-policy, on-policy or mixed"))
        if self.divergence not in ("forward", "reverse", "jsd"):
            p.append(("divergence", self.divergence, "must be forward, reverse or jsd"))
        if not (_is_number(self.jsd_beta) and 0 < self.jsd_beta < 1):
            p.append(("jsd_beta", self.jsd_beta, "must be in (0, 1)"))
        for name in ("beta_start", "beta_end", "beta_decay_fraction", "gae_lambda"):
            if not (_is_number(g(name)) and 0 <= g(name) <= 1):
                p.append((name, g(name), "must be in [0, 1]"))
        for name in ("distill_coef", "rl_coef", "ent_coef", "vf_coef"):
            if not (_is_number(g(name)) and math.isfinite(g(name)) and g(name) >= 0):
                p.append((name, g(name), "must be a finite number >= 0"))
        if not (_is_number(self.teacher_temperature) and math.isfinite(self.teacher_temperature)
                and self.teacher_temperature > 0):
            p.append(("teacher_temperature", self.teacher_temperature, "must be a finite number > 0"))
        for name in ("num_epochs", "num_minibatches", "replay_capacity"):
            if not (_is_int(g(name)) and g(name) >= 1):
                p.append((name, g(name), "must be an integer >= 1"))
        if _is_int(self.num_minibatches) and self.num_minibatches >= 1 and _is_int(self.num_envs) \
                and self.num_envs % self.num_minibatches:
            p.append(("num_minibatches", self.num_minibatches, f"must divide num_envs = {self.num_envs}"))
        if self.dataset is not None:  # the teacher labels the dataset's states: off-policy, feed-forward, no reward
            if self.mode != "off-policy":
                p.append(("mode", self.mode, "must be off-policy with a dataset (nobody acts)"))
            if self.torso == "gru":
                p.append(("torso", self.torso, "a dataset is shuffled into transitions: no recurrent student"))
            if self.rl_coef != 0:
                p.append(("rl_coef", self.rl_coef, "must be 0 with a dataset (transitions, not trajectories)"))
            if isinstance(self.teachers, tuple) and len(self.teachers) > 1:
                p.append(("teachers", self.teachers, "one teacher labels a dataset"))
        if not _is_int(self.teacher_seed) or self.teacher_seed < 0:
            p.append(("teacher_seed", self.teacher_seed, "must be an integer >= 0"))
        env_ok = isinstance(self.env_id, str) and unknown_env_message(self.env_id) is None
        if self.student_obs is not None and not isinstance(self.student_obs, str):
            p.append(("student_obs", self.student_obs, "must be an env id (a string) or None"))
        elif self.student_obs is not None and env_ok:
            from jaxrl_policy.envs.wrappers import observation_view
            try:
                observation_view(self.student_obs, self.env_id)
            except ValueError as e:
                p.append(("student_obs", self.student_obs, str(e)))
        if not (isinstance(self.teachers, tuple) and self.teachers and all(isinstance(t, str) for t in self.teachers)):
            p.append(("teachers", self.teachers, "must name at least one teacher run folder"))
        elif env_ok and _is_int(self.teacher_seed):
            from jaxrl_policy.envs.adapter import split_env_id
            from jaxrl_policy.teacher import teacher_problems
            for t in self.teachers:
                for problem in teacher_problems(t, self.teacher_seed, self.env_id):
                    p.append(("teachers", t, problem))
            n, settings = len(self.teachers), len(split_env_id(self.env_id)[1])
            if _is_int(self.num_envs) and self.num_envs % n:
                p.append(("num_envs", self.num_envs,
                          f"must be a multiple of the {n} teachers (env e has teacher e mod {n})"))
            if settings > 1 and settings != n:
                p.append(("env_id", self.env_id, f"lists {settings} env settings for {n} teachers: give one per "
                                                 "teacher (env e has setting and teacher e mod n)"))
        return p


CONFIGS: dict[str, type[BaseConfig]] = {"ppo": PPOConfig, "dqn": DQNConfig, "vtrace": VTraceConfig,
                                        "distill": DistillConfig}


def config_class(algo: str) -> type[BaseConfig]:
    if algo not in CONFIGS:
        close = difflib.get_close_matches(algo, CONFIGS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"algo = {algo!r}: must be one of {', '.join(CONFIGS)}{hint}")
    return CONFIGS[algo]


def _check_names(cls: type[BaseConfig], names) -> None:
    fields = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in names if k not in fields]
    if unknown:
        lines = []
        for k in unknown:
            close = difflib.get_close_matches(k, fields, n=2)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            lines.append(f"  {k}: not a {cls.algo} config field{hint}")
        raise ValueError(f"unknown {cls.algo} config field(s):\n" + "\n".join(lines))


# dtypes of the traced fields as program data: int fields stay integers, flags become 0/1 floats
_INT_HPARAMS = frozenset({"learning_starts", "target_update_interval", "policy_lag"})


def hparam_value(name: str, value: Any) -> np.generic:
    """A traced field's value as the numpy scalar the program receives (None → +inf: "no clipping")."""
    if name in _INT_HPARAMS:
        return np.int32(value)
    return np.float32(np.inf if value is None else float(value))


def hparams(cfg: BaseConfig) -> dict[str, np.generic]:
    """The config's traced fields as a pytree of numpy scalars: ``train(key, hparams)``'s second argument.

    ``make_train(cfg)(key)`` uses exactly these values; pass a dict with some of them replaced (or
    stacked along a leading axis and ``jax.vmap``-ed) to run other points with the same compiled
    program. Booleans become 0/1 floats, ``max_grad_norm = None`` becomes +inf.
    """
    return {name: hparam_value(name, getattr(cfg, name)) for name in sorted(cfg.TRACED)}


def default_config(algo: str, env_id: str = "CartPole-v1", **overrides) -> BaseConfig:
    """Frozen, validated config for ``algo`` on ``env_id`` with ``overrides`` applied.

    Unknown override names raise a ``ValueError`` suggesting the closest field names. Environment-
    specific defaults (e.g. MinAtar sizes) are applied before the overrides.
    """
    cls = config_class(algo)
    _check_names(cls, overrides)
    if not isinstance(env_id, str):  # env_defaults reads the id before validation would
        raise ConfigError([("env_id", env_id, "must be a string (a gymnax id, a probe id or brax:NAME)")], algo)
    for name in ("hidden_sizes", "teachers"):
        if isinstance(overrides.get(name), list):
            overrides[name] = tuple(overrides[name])
    base = dict(env_defaults(algo, env_id))
    base.update(overrides)
    return cls(env_id=env_id, **base)


# Continuous control (PPO, V-trace): rejax's tuned PPO configs (keraJLi/rejax, configs/gymnax/pendulum.yaml
# and continuous_mountaincar.yaml; Liesen et al. 2024), which keep a constant learning rate. V-trace takes
# the data and optimiser settings; PPO also its epochs, minibatches, λ and ε.
CONTINUOUS_DEFAULTS: dict[str, dict[str, Any]] = {
    "Pendulum-v1": dict(num_envs=100, num_steps=100, learning_rate=1e-3, anneal_lr=False, max_grad_norm=10.0,
                        gamma=0.995, ent_coef=0.0, vf_coef=0.5, activation="silu", normalize_observations=True,
                        total_timesteps=1_000_000),
    "MountainCarContinuous-v0": dict(num_envs=5, num_steps=100, learning_rate=3e-4, anneal_lr=False,
                                     max_grad_norm=10.0, gamma=0.9, ent_coef=0.0, vf_coef=0.5, activation="relu",
                                     total_timesteps=1_000_000),
}
PPO_CONTINUOUS_DEFAULTS = dict(num_epochs=10, num_minibatches=10, gae_lambda=0.95, clip_eps=0.2)
# V-trace has no trust region: on Pendulum it learns with ~6× more gradient steps per env step than
# rejax's PPO batch gives it, an entropy bonus, scaled rewards and standardised advantages (chosen
# by a 2 × 2 sweep over learning rate {1e-4, 3e-4} and entropy {0, 0.01}, 2 seeds × 10⁶ steps, README).
VTRACE_CONTINUOUS_DEFAULTS: dict[str, dict[str, Any]] = {
    "Pendulum-v1": dict(num_envs=16, num_steps=64, learning_rate=3e-4, ent_coef=0.01, reward_scale=0.1,
                        normalize_advantages=True, gae_lambda=1.0),
}


# Brax's published PPO hyperparameters: the `train_fn` table of google/brax notebooks/training.ipynb
# ("We determined some reasonable hyperparameters offline and share them here"), per env:
# (num_timesteps, reward_scaling, unroll_length, num_minibatches, num_updates_per_batch, discounting,
#  learning_rate, entropy_cost, num_envs, batch_size). All use episode_length 1000, action_repeat 1
# (reacher: 4, which this adapter does not do), normalize_observations True. hopper and walker2d have
# only SAC entries there; they, swimmer and any other Brax env get ant's values.
BRAX_PPO_PUBLISHED: dict[str, tuple[int, float, int, int, int, float, float, float, int, int]] = {
    "inverted_pendulum": (2_000_000, 10, 5, 32, 4, 0.97, 3e-4, 1e-2, 2048, 1024),
    "inverted_double_pendulum": (20_000_000, 10, 5, 32, 4, 0.97, 3e-4, 1e-2, 2048, 1024),
    "ant": (50_000_000, 10, 5, 32, 4, 0.97, 3e-4, 1e-2, 4096, 2048),
    "humanoid": (50_000_000, 0.1, 10, 32, 8, 0.97, 3e-4, 1e-3, 2048, 1024),
    "reacher": (50_000_000, 5, 50, 32, 8, 0.95, 3e-4, 1e-3, 2048, 256),
    "humanoidstandup": (100_000_000, 0.1, 15, 32, 8, 0.97, 6e-4, 1e-2, 2048, 1024),
    "halfcheetah": (50_000_000, 1, 20, 32, 8, 0.95, 3e-4, 1e-3, 2048, 512),
    "pusher": (50_000_000, 5, 30, 16, 8, 0.95, 3e-4, 1e-2, 2048, 512),
}
BRAX_CPU_ENVS = 64  # Brax's 2048-4096 envs scaled down for CPU
BRAX_CPU_TIMESTEPS_DIVISOR = 10  # Brax's budgets (2e6-1e8 steps) scaled down for CPU


def brax_defaults(algo: str, env_id: str) -> dict[str, Any]:
    """Defaults for ``brax:`` ids from Brax's published PPO configs (``BRAX_PPO_PUBLISHED``), for CPU.

    Kept from Brax: γ (discounting), learning rate (constant: no annealing), entropy cost, reward
    scaling, observation normalisation, minibatches and passes per batch (num_updates_per_batch),
    the PPO settings of brax.training.agents.ppo.train (clip ε 0.3, GAE λ 0.95, no gradient clipping,
    no value clipping, advantage normalisation), its tanh-squashed Gaussian and swish (silu) activation.
    Scaled for CPU: 64 envs instead of 2048-4096 and 1/10 of the env-step budget. Each env still
    collects Brax's steps per update, unroll_length × batch_size × num_minibatches / num_envs (ant:
    5 × 2048 × 32 / 4096 = 80), as one unroll, so a batch holds 64× fewer transitions than Brax's.
    One torso width for policy and value: (128, 128), between Brax's policy (32,)×4 and value (256,)×5.
    """
    from jaxrl_policy.envs.brax_adapter import parse_id

    name, _ = parse_id(env_id)
    steps, r_scale, unroll, n_mb, epochs, gamma, lr, ent, b_envs, b_batch = \
        BRAX_PPO_PUBLISHED.get(name, BRAX_PPO_PUBLISHED["ant"])
    d: dict[str, Any] = dict(
        num_envs=BRAX_CPU_ENVS, num_steps=unroll * b_batch * n_mb // b_envs,
        total_timesteps=steps // BRAX_CPU_TIMESTEPS_DIVISOR, gamma=gamma, learning_rate=lr, anneal_lr=False,
        max_grad_norm=None, reward_scale=float(r_scale), normalize_observations=True, ent_coef=ent,
        action_squash="tanh", activation="silu", hidden_sizes=(128, 128))
    if algo == "ppo":
        d.update(num_minibatches=n_mb, num_epochs=epochs, clip_eps=0.3, gae_lambda=0.95, clip_value_loss=False)
    elif algo != "vtrace":  # an algorithm without continuous actions: validation names the problem
        return {}
    return d


def env_defaults(algo: str, env_id: str) -> dict[str, Any]:
    """Per-environment defaults. MinAtar: image observations, longer runs, ReLU. Pendulum-v1 and
    MountainCarContinuous-v0: rejax's published PPO settings (``CONTINUOUS_DEFAULTS``). ``brax:`` ids:
    Brax's published PPO settings, scaled for CPU (``brax_defaults``)."""
    if env_id.startswith("brax:"):
        return brax_defaults(algo, env_id)
    if env_id.endswith("-MinAtar"):
        d: dict[str, Any] = {"activation": "relu", "total_timesteps": 10_000_000}
        if algo == "dqn":
            d.update(buffer_size=100_000, learning_starts=10_000, hidden_sizes=(128,))
        else:
            d.update(num_envs=64, hidden_sizes=(256,))
        return d
    if env_id in CONTINUOUS_DEFAULTS and algo in ("ppo", "vtrace"):
        d = dict(CONTINUOUS_DEFAULTS[env_id])
        if algo == "ppo":
            d.update(PPO_CONTINUOUS_DEFAULTS)
        else:
            d.update(VTRACE_CONTINUOUS_DEFAULTS.get(env_id, {}))
            if d["num_envs"] % VTraceConfig.num_minibatches:  # V-trace's minibatches are env subsets
                d["num_minibatches"] = d["num_envs"]
        return d
    return {}


def config_from_dict(d: dict[str, Any]) -> BaseConfig:
    """Inverse of ``to_dict`` (for config.json)."""
    d = dict(d)
    algo = d.pop("algo")
    for name in ("hidden_sizes", "teachers"):
        if name in d:
            d[name] = tuple(d[name])
    return config_class(algo)(**d)


__all__ = ["BaseConfig", "PPOConfig", "DQNConfig", "VTraceConfig", "DistillConfig", "ConfigError", "default_config",
           "config_class", "config_from_dict", "CONFIGS", "hparams", "hparam_value"]
