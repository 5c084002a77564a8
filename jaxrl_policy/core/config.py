"""Frozen, validated configs: the base every algorithm's config extends (each algorithm file holds its own).

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
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import numpy as np

from jaxrl_policy.core.envs import env_spec, unknown_env_message

Activation = Literal["tanh", "relu", "gelu", "silu"]
Torso = Literal["auto", "mlp", "cnn", "gru"]


class ConfigError(ValueError):
    """A config failed validation; ``problems`` lists ``(field, value, rule)``."""

    def __init__(self, problems: list[tuple[str, Any, str]], algo: str):
        self.problems = problems
        lines = [f"  {name} = {value!r}: {rule}" for name, value, rule in problems]
        super().__init__(f"invalid {algo} config ({len(problems)} problem(s)):\n" + "\n".join(lines))


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def is_int(v) -> bool:
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
        elif tp is int and is_int(v) and not -INT32_MAX - 1 <= v <= INT32_MAX:
            out.append((f.name, v, "must fit in int32 (|value| < 2**31)"))
        elif tp is float and is_number(v) and not (math.isfinite(v) and abs(v) <= FLOAT32_MAX):
            out.append((f.name, v, "must be a finite number within float32's range (|value| <= 3.4e38)"))
    return out


T = TypeVar("T")


class _TracedMark:
    def __repr__(self) -> str:
        return "traced"


TRACED_MARK = _TracedMark()
Traced = Annotated[T, TRACED_MARK]
"""``field: Traced[float] = 0.5`` declares a field *traced*: data of the compiled program (``hparams``), so a sweep
over it is one compile. Every other field is *static*: it shapes the program (one compile per value). The status
is written once, where a field is introduced; a subclass that changes only its default keeps it. The traced set
(``cfg.TRACED``), the dtype the program receives (int fields int32, the rest float32) and the CLI help's
``[traced]`` tag are derived from it."""


def _introduced(cls: type) -> dict[str, Any]:
    """Each dataclass field's annotation where it is first declared (base classes first)."""
    out: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        own = klass.__dict__.get("__annotations__", {})
        if not own:
            continue
        hints = typing.get_type_hints(klass, include_extras=True)
        for name in own:
            if name not in out and typing.get_origin(hints[name]) is not ClassVar:
                out[name] = hints[name]
    return out


_TRACED: dict[type, tuple[frozenset[str], frozenset[str]]] = {}  # class -> (traced, of them int)


def _traced(cls: type) -> tuple[frozenset[str], frozenset[str]]:
    if cls not in _TRACED:
        intro = _introduced(cls)
        traced = frozenset(n for n, tp in intro.items() if TRACED_MARK in getattr(tp, "__metadata__", ()))
        _TRACED[cls] = traced, frozenset(n for n in traced if typing.get_args(intro[n])[0] is int)
    return _TRACED[cls]


def traced_fields(cls: type) -> frozenset[str]:
    """The fields of config class ``cls`` declared ``Traced[...]``."""
    return _traced(cls)[0]


def int_traced_fields(cls: type) -> frozenset[str]:
    """The traced fields whose values are integers (the program receives them as int32)."""
    return _traced(cls)[1]


class _TracedFields:
    """``cls.TRACED`` / ``cfg.TRACED``: ``traced_fields(cls)``."""

    def __get__(self, obj: Any, owner: type) -> frozenset[str]:
        return traced_fields(owner)


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
    """gymnax environment id (or a ``Probe-*`` id used by tests)."""
    seed: int = 0
    """base seed; seed i of a multi-seed run uses PRNGKey(seed + i), so runs are comparable across --seeds."""
    num_envs: int = 4
    """parallel environments per seed (E)."""
    num_steps: int = 128
    """env steps per environment per iteration (T, the unroll length)."""
    total_timesteps: int = 500_000
    """env-step budget per seed, summed over envs; rounded down to whole iterations."""
    learning_rate: Traced[float] = 2.5e-4
    """Adam step size (initial value when annealed)."""
    anneal_lr: Traced[bool] = True
    """linearly anneal the learning rate to 0 over the run (per iteration, as purejaxrl)."""
    adam_eps: Traced[float] = 1e-5
    """Adam epsilon."""
    max_grad_norm: Traced[float | None] = 0.5
    """clip the global gradient norm to this value; None disables clipping."""
    gamma: Traced[float] = 0.99
    """discount factor γ in [0, 1]."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """widths of the torso's dense layers."""
    activation: Activation = "tanh"
    """torso activation."""
    orthogonal_init: bool = True
    """orthogonal initialisation (gain √2 hidden, 0.01 policy head, 1 value head)."""
    torso: Torso = "auto"
    """network torso: auto = CNN for [H, W, C] observations, MLP otherwise; gru = MLP then a GRU core."""
    rnn_size: int = 128
    """units of the GRU core when torso = gru."""
    normalize_observations: bool = False
    """standardise observations with running statistics kept in the agent state."""
    reward_scale: Traced[float] = 1.0
    """rewards are multiplied by this before learning (returns logged unscaled)."""
    num_chunks: int = 20
    """host-visible chunks the run is split into (a progress line and log rows after each)."""
    eval_every: int | None = None
    """env steps between evaluations of the greedy policy; None = after every chunk; 0 = at the end only."""
    eval_episodes: int = 16
    """episodes per evaluation (run in parallel, one per env, from fixed keys); 0 = no evaluation."""
    eval_max_steps: int | None = None
    """steps an evaluation episode may last; None = the env's time limit."""
    eval_seed: int = 12345
    """key of the evaluation episodes: the same for every algorithm, seed and evaluation."""
    dataset: str | None = None
    """learn from this fixed dataset (jaxrl-policy collect) instead of acting: no env steps (dqn, distill)."""

    algo: ClassVar[str] = "base"
    # the traced fields, derived from the annotations (``Traced[...]``, where a field is introduced)
    TRACED: ClassVar[frozenset[str]] = _TracedFields()  # type: ignore[assignment]
    CONTINUOUS_ACTIONS: ClassVar[bool] = False  # whether the algorithm acts in continuous (Box) action spaces
    DISCRETE_ACTIONS: ClassVar[bool] = True  # whether it acts in discrete ones
    RECURRENT: ClassVar[bool] = False  # whether it supports torso = gru
    OFFLINE: ClassVar[bool] = False  # whether it learns from a fixed dataset (``dataset``; loop/offline.py)
    TEACHERS: ClassVar[bool] = False  # whether its factory takes Teacher values (built from a ``teachers`` field)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "TRACED" in cls.__dict__:
            raise TypeError(f"{cls.__name__}: declare traced fields by their annotation (`lr: Traced[float] = 1e-3`), "
                            "not with a TRACED set (it is derived from the annotations)")

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
        return dataclasses.replace(self, **tuples(changes))

    @classmethod
    def env_defaults(cls, env_id: str) -> dict[str, Any]:
        """Per-environment defaults, applied before the user's overrides (``algorithms/presets.py``): MinAtar
        gets image-sized networks and longer runs; the optional suites' ids their published networks
        (``SUITE_DEFAULTS``); an algorithm overrides this for its own presets."""
        if env_id.endswith("-MinAtar"):
            return dict(MINATAR_DEFAULTS)
        prefix = env_id.partition(":")[0] + ":"
        if prefix in SUITE_DEFAULTS:
            d = dict(SUITE_DEFAULTS[prefix])
            if prefix == "jumanji:" and unknown_env_message(env_id) is None and env_spec(env_id).max_episode_steps \
                    is None:  # no time limit (Game2048, Knapsack, TSP, …): evaluation episodes need a cap
                d["eval_max_steps"] = SUITE_EVAL_MAX_STEPS
            return d
        return {}

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
        elif self.dataset is not None:  # (the file itself is checked by running/preflight.py, before compiling)
            check("dataset", self.OFFLINE, f"{self.algo} does not learn from datasets (dqn and distill do)")
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
                  f"({', '.join(_acting_in(continuous=True))} act in continuous spaces)")
            check("env_id", spec.num_actions is None or self.DISCRETE_ACTIONS,
                  f"{self.algo} needs a continuous action space; {self.env_id} has a discrete one "
                  f"({', '.join(_acting_in(continuous=False))} act in discrete spaces)")
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



# MinAtar for every algorithm without presets of its own: image observations, longer runs, ReLU.
MINATAR_DEFAULTS: dict[str, Any] = {"activation": "relu", "total_timesteps": 10_000_000, "num_envs": 64,
                                    "hidden_sizes": (256,)}
# The optional suites, for every algorithm without presets of its own: the networks of their published PPO
# baselines (algorithms/presets.py cites each; PPO also takes their hyperparameters from there). Craftax:
# Craftax_Baselines' ActorCritic, 3 × 512 tanh, and evaluation once at the end (an episode lasts up to 10⁴
# steps); XLand-MiniGrid: its 256-wide heads (on our CNN, not its GRU); Navix: its flattened symbolic grid into
# a 64 × 64 tanh MLP. Jumanji's A2C networks are per env (CNNs, attention): the default MLP.
SUITE_DEFAULTS: dict[str, dict[str, Any]] = {
    "craftax:": {"hidden_sizes": (512, 512, 512), "activation": "tanh", "eval_every": 0},
    "xminigrid:": {"hidden_sizes": (256,)},
    "navix:": {"torso": "mlp", "hidden_sizes": (64, 64), "activation": "tanh"},
    "jumanji:": {},
}
SUITE_EVAL_MAX_STEPS = 1000  # evaluation episodes of a jumanji env without a time limit last at most this


def _acting_in(continuous: bool) -> list[str]:
    """The algorithms among the config classes defined so far that act in continuous (or discrete) spaces, for
    messages (the subclasses of BaseConfig, so registered plugins count too)."""
    out, todo = [], list(BaseConfig.__subclasses__())
    while todo:
        cls = todo.pop(0)
        todo += cls.__subclasses__()
        ok = cls.CONTINUOUS_ACTIONS if continuous else cls.DISCRETE_ACTIONS
        if ok and cls.algo not in out and not cls.algo.startswith(("base", "actor")) and "." not in cls.algo:
            out.append(cls.algo)
    return out


def tuples(d: dict[str, Any]) -> dict[str, Any]:
    """``d`` with lists turned into tuples (JSON and the command line give lists; tuple fields are frozen)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


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


def hparam_value(cls: type[BaseConfig], name: str, value: Any) -> np.generic:
    """A traced field's value as the numpy scalar the program receives: int fields int32, the rest (floats, flags
    as 0/1) float32; None → +inf ("no clipping")."""
    if name in int_traced_fields(cls):
        return np.int32(value)
    return np.float32(np.inf if value is None else float(value))


def hparams(cfg: BaseConfig) -> dict[str, np.generic]:
    """The config's traced fields as a pytree of numpy scalars: ``train(key, hparams)``'s second argument.

    ``make_train(cfg)(key)`` uses exactly these values; pass a dict with some of them replaced (or
    stacked along a leading axis and ``jax.vmap``-ed) to run other points with the same compiled
    program. Booleans become 0/1 floats, ``max_grad_norm = None`` becomes +inf.
    """
    return {name: hparam_value(type(cfg), name, getattr(cfg, name)) for name in sorted(cfg.TRACED)}


__all__ = ["BaseConfig", "ConfigError", "Traced", "traced_fields", "int_traced_fields", "deferred_validation",
           "is_int", "is_number", "hparams", "hparam_value", "tuples", "MINATAR_DEFAULTS", "Activation", "Torso"]
