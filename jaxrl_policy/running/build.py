"""From a config to a program: the one algorithm registry, the builders of loops and trainers, and teachers.

Shape legend: ``S`` seeds, ``B`` batch of observations, ``A`` actions.

Everything below this floor receives values: an ``Algorithm`` (built here by the factory registered for
``cfg.algo``), its environments, a dataset's unrolls, ``Teacher`` values. This module is where names
and files become those values:

- the registry: ``register_algorithm(config_class, factory)``; ``config_class``, ``default_config``,
  ``config_from_dict`` and ``read_run_config`` read it;
- ``build_algorithm`` / ``build_loop`` / ``make_train``: the online loop, or the offline one when
  ``cfg.dataset`` is set; both run ``preflight`` first, so a bad file fails before anything compiles;
- ``load_teacher``: a finished run folder's policy as an ``obs -> logits`` value. It builds the teacher
  run's own loop (its checkpoint's restore target), recursively for a distilled teacher.
"""
from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl_policy.algorithms import presets
from jaxrl_policy.algorithms.distill import DistillConfig, make_distill
from jaxrl_policy.algorithms.dqn import DQNConfig, make_dqn
from jaxrl_policy.algorithms.ppo import PPOConfig, make_ppo
from jaxrl_policy.algorithms.pqn import PQNConfig, make_pqn
from jaxrl_policy.algorithms.sac import SACConfig, make_sac
from jaxrl_policy.algorithms.td3 import TD3Config, make_td3
from jaxrl_policy.algorithms.vtrace import VTraceConfig, make_vtrace
from jaxrl_policy.core import networks
from jaxrl_policy.core.config import BaseConfig, ConfigError, _check_names, hparams, tuples
from jaxrl_policy.core.envs import EnvSpec, env_spec, make_vec_env
from jaxrl_policy.core.normalization import normalize
from jaxrl_policy.core.types import Algorithm, LoopState, Teacher, Transition
from jaxrl_policy.io import checkpoint, dataset
from jaxrl_policy.io.runfolder import read_config_json, split_run_config
from jaxrl_policy.loop.common import Loop, seed_keys, train_fn
from jaxrl_policy.loop.offline import make_offline_loop
from jaxrl_policy.loop.online import make_loop
from jaxrl_policy.running.preflight import preflight

Factory = Callable[..., Algorithm]  # (config, env spec[, teachers=[Teacher, …]]) -> Algorithm


class Registration(NamedTuple):
    config_class: type[BaseConfig]
    factory: Factory


_REGISTRY: dict[str, Registration] = {
    "ppo": Registration(PPOConfig, make_ppo),
    "dqn": Registration(DQNConfig, make_dqn),
    "vtrace": Registration(VTraceConfig, make_vtrace),
    "distill": Registration(DistillConfig, make_distill),
    "pqn": Registration(PQNConfig, make_pqn),
    "sac": Registration(SACConfig, make_sac),
    "td3": Registration(TD3Config, make_td3),
}


def register_algorithm(config_class: type[BaseConfig], factory: Factory) -> None:
    """Make ``config_class.algo`` an algorithm name everywhere (config, CLI, loop, sweeps, reports).

    ``factory(cfg, spec) -> Algorithm`` (``factory(cfg, spec, teachers)`` where ``config_class.TEACHERS``).
    """
    name = config_class.algo
    if not (isinstance(config_class, type) and issubclass(config_class, BaseConfig)) or name == BaseConfig.algo:
        raise ValueError(f"register_algorithm: {config_class!r} must subclass BaseConfig and set its own `algo` name")
    old = _REGISTRY.get(name)
    if old is not None and old != (config_class, factory):
        raise ValueError(f"register_algorithm: algo = {name!r} is already registered")
    _REGISTRY[name] = Registration(config_class, factory)


def registration(algo: str) -> Registration:
    """The config class and factory registered for ``algo``."""
    config_class(algo)  # (a clear error for an unknown name)
    return _REGISTRY[algo]


def algorithm_names() -> list[str]:
    """Registered algorithm names, the built-in ones first."""
    return list(_REGISTRY)


def config_class(algo: str) -> type[BaseConfig]:
    if algo not in _REGISTRY:
        close = difflib.get_close_matches(algo, _REGISTRY, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"algo = {algo!r}: must be one of {', '.join(_REGISTRY)}{hint}")
    return _REGISTRY[algo].config_class


def default_config(algo: str, env_id: str = "CartPole-v1", preset: str | None = None, **overrides) -> BaseConfig:
    """Frozen, validated config for ``algo`` on ``env_id`` with ``overrides`` applied.

    Unknown override names raise a ``ValueError`` suggesting the closest field names. Environment-
    specific defaults (``cls.env_defaults``: MinAtar sizes, published continuous-control and Brax
    settings) come first, then the named ``preset``'s values (``algorithms/presets.py``: one published
    configuration per algorithm and env family), then the overrides. An unknown preset, or one without
    an entry for (``algo``, ``env_id``), raises a ``ValueError`` naming the presets that apply.
    """
    cls = config_class(algo)
    _check_names(cls, overrides)
    if not isinstance(env_id, str):  # env_defaults reads the id before validation would
        raise ConfigError([("env_id", env_id, "must be a string (a gymnax id, a probe id or brax:NAME)")], algo)
    base = dict(cls.env_defaults(env_id))
    if preset is not None:
        base.update(tuples(presets.preset_overrides(preset, cls, env_id, base, tuples(overrides))))
    base.update(tuples(overrides))
    return cls(env_id=env_id, **base)


def config_from_dict(d: dict[str, Any]) -> BaseConfig:
    """Inverse of ``BaseConfig.to_dict`` (for config.json)."""
    d = dict(d)
    algo = d.pop("algo")
    return config_class(algo)(**tuples(d))


def read_run_config(out: str | os.PathLike) -> tuple[BaseConfig, list[int], dict[str, Any]]:
    """``(config, seeds, run metadata)`` of a run folder's ``config.json``."""
    try:
        d = read_config_json(out)
    except ValueError as e:
        if not (Path(out) / "config.json").exists():
            raise ValueError(f"{out} is not a run folder (no config.json)") from None
        raise ValueError(f"{out}: {e}") from None
    fields, seeds, meta = split_run_config(d)
    return config_from_dict(fields), seeds, meta


# ---- from a config to values ------------------------------------------------------------------
def build_algorithm(cfg: BaseConfig, spec: EnvSpec) -> Algorithm:
    """The ``Algorithm`` bundle of ``cfg`` for an env of ``spec`` (teachers loaded for a distillation config)."""
    factory = _REGISTRY[cfg.algo].factory
    if type(cfg).TEACHERS:
        teachers = [load_teacher(t, cfg.teacher_seed, cfg.teacher_temperature)  # type: ignore[attr-defined]
                    for t in cfg.teachers]  # type: ignore[attr-defined]
        return factory(cfg, spec, teachers)
    return factory(cfg, spec)


def _eval_env(cfg: BaseConfig):
    return make_vec_env(cfg.env_id, cfg.eval_episodes) if cfg.eval_episodes else None


def dataset_unrolls(cfg: BaseConfig) -> tuple[BaseConfig, Transition]:
    """``cfg.dataset`` as ``K`` unrolls ``[K, T, E]`` and ``cfg`` with storage for exactly those K."""
    assert cfg.dataset is not None
    arrays, _ = dataset.load(cfg.dataset)
    host, K = dataset.to_storage(arrays, cfg.num_steps, cfg.num_envs)
    data = {k: jnp.asarray(v) for k, v in host.items()}
    unrolls = Transition(obs=data["obs"], action=data["action"], reward=data["reward"],
                         terminated=data["terminated"], truncated=data["truncated"], next_obs=data["next_obs"],
                         extras={"log_prob": data["log_prob"], "version": jnp.zeros(data["reward"].shape, jnp.int32)})
    return cfg.with_replay_unrolls(K), unrolls


def build_loop(cfg: BaseConfig) -> Loop:
    """The loop of ``cfg``: online, or offline when ``cfg.dataset`` is set (after ``preflight``: the files a
    config names are checked here, before anything is traced)."""
    preflight(cfg)
    if cfg.dataset is not None:
        run_cfg, unrolls = dataset_unrolls(cfg)
        spec = env_spec(cfg.env_id)
        return make_offline_loop(run_cfg, build_algorithm(run_cfg, spec), unrolls, spec, _eval_env(run_cfg))
    venv = make_vec_env(cfg.env_id, cfg.num_envs)
    return make_loop(cfg, build_algorithm(cfg, venv.spec), venv, _eval_env(cfg))


def make_train(cfg: BaseConfig) -> Callable[..., tuple[LoopState, dict]]:
    """Pure ``train(key, hparams=None) -> (final_state, metrics)``; metrics have leading axis = iterations.

    ``hparams`` maps traced config fields (``cfg.TRACED``; ``jaxrl_policy.hparams(cfg)`` lists them
    with the config's values) to scalars; fields left out keep the config's value as a constant of
    the program. ``jax.jit(jax.vmap(train))(keys)`` runs one seed per key;
    ``jax.jit(jax.vmap(jax.vmap(train, (0, None)), (None, 0)))(keys, points)`` runs S seeds × P
    points (``points``: the same dict with leaves stacked to ``[P]``) as one program, every point
    starting from the same keys (paired comparison).
    """
    return train_fn(build_loop(cfg), cfg.num_iterations)


def state_bytes(cfg: BaseConfig, num_seeds: int, traced: list[str]) -> int:
    """Bytes of the loop state of one point × ``num_seeds`` seeds (abstract: nothing is allocated)."""
    loop = build_loop(cfg)
    hp = {k: np.repeat(v, num_seeds) for k, v in hparams(cfg).items() if k in traced}
    shapes = jax.eval_shape(jax.vmap(loop.init), seed_keys(0, num_seeds), hp)
    return int(sum(np.prod(s.shape) * s.dtype.itemsize for s in jax.tree.leaves(shapes)))


# ---- teachers: a run folder's policy as a value -----------------------------------------------
_TEACHERS: dict[Any, Teacher] = {}


def restore_agent(run_dir: str | os.PathLike, seed_index: int = 0) -> tuple[BaseConfig, list[int], Loop, Any]:
    """``(config, seeds, loop, agent state of seed seed_index)`` from ``run_dir``'s latest usable checkpoint
    (its restore target is the run's own loop state, built from its config.json)."""
    if checkpoint.latest(Path(run_dir)) is None:
        raise ValueError(f"{run_dir}: has no complete checkpoint")
    fields, seeds, _ = split_run_config(read_config_json(run_dir))
    if not 0 <= seed_index < len(seeds):
        raise ValueError(f"{run_dir}: seed index {seed_index} is not one of the run's {len(seeds)} seed(s)")
    cfg = config_from_dict(fields)
    loop = build_loop(cfg)
    shapes = jax.eval_shape(jax.vmap(loop.init), seed_keys(cfg.seed, len(seeds)))
    hist = {"env_steps": np.int32, "episode_return": np.float32, "episodes": np.int32, "eval_return": np.float32}
    state, _, _, _ = checkpoint.restore_latest(Path(run_dir), shapes, hist, note=None)
    return cfg, seeds, loop, jax.tree.map(lambda x: jnp.asarray(x[seed_index]), state.agent)


def load_teacher(run_dir: str, seed_index: int = 0, temperature: float = 1.0) -> Teacher:
    """Restore seed ``seed_index`` of ``run_dir``'s latest checkpoint as a frozen ``Teacher``.

    Its logits at observation ``obs`` (normalised with the teacher's own running statistics if it kept
    them): an actor-critic run's policy logits / τ; a Q-learner's Q-values / τ (a Boltzmann policy;
    τ → 0: the greedy one).
    """
    ck = checkpoint.latest(Path(run_dir))
    if ck is None:
        raise ValueError(f"{run_dir}: has no complete checkpoint")
    key = (str(Path(run_dir).resolve()), ck.name, seed_index, float(temperature))
    if key in _TEACHERS:
        return _TEACHERS[key]
    cfg, seeds, loop, agent = restore_agent(run_dir, seed_index)
    # the greedy policy's network, parameters and statistics, as data
    e = None if loop.algorithm.export is None else loop.algorithm.export(agent)
    if e is None or e.head not in ("mode", "argmax"):
        raise ValueError(f"{run_dir}: {cfg.algo} has no discrete policy to teach with")
    apply: Callable[..., Any] = getattr(networks, e.network)(**e.kwargs).apply
    tau = float(temperature)

    def logits(obs):  # an actor-critic's policy logits / τ; a Q-learner's Q-values / τ (Boltzmann)
        out = apply(e.params, normalize(e.obs_stats, obs))
        return (out[0] if e.head == "mode" else out) / tau

    obs_env = getattr(cfg, "student_obs", None) or cfg.env_id
    teacher = Teacher(algo=cfg.algo, env_id=obs_env, seed=int(seeds[seed_index]), logits=logits)
    _TEACHERS[key] = teacher
    return teacher


__all__ = ["register_algorithm", "algorithm_names", "config_class", "default_config", "config_from_dict",
           "read_run_config", "build_algorithm", "build_loop", "make_train", "state_bytes", "load_teacher",
           "restore_agent"]
