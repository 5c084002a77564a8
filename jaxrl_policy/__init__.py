"""jaxrl_policy: on- and off-policy learners as pure-function bundles on one jitted scan loop.

The package is built in floors, every import pointing down (``docs/architecture.md``)::

    cli/         the command line (main.py imports the commands)
    run/         registry and builders, preflight, runner, sweep, mesh, bench, dataset collection
    results/     statistics, scores, reports        loop/   online, offline, evaluation
    algorithms/  one file per learner: config class + factory
    io/          run folders, checkpoints, datasets, metadata, sinks
    core/        types, envs, networks, distributions, normalization, storage, losses

Importing the package defines names and applies one process-wide setting, the XLA:CPU deadlock
guard (``_xla_flags``: what it does, why, and how to turn it off). The public names below are loaded
when first used (PEP 562), so ``import jaxrl_policy.core.losses`` does not load the running floor.
Opt-in speed-ups that reach into jax's internals: ``use_cpu_speedups()``.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from jaxrl_policy import _xla_flags
from jaxrl_policy._version import __version__
from jaxrl_policy._xla_flags import set_cpu_threads, use_cpu_speedups

# public name -> the module that defines it (the floor it lives on)
_EXPORTS = {
    "hparams": "jaxrl_policy.core.config",
    "BaseConfig": "jaxrl_policy.core.config",
    "ConfigError": "jaxrl_policy.core.config",
    "PPOConfig": "jaxrl_policy.algorithms.ppo",
    "DQNConfig": "jaxrl_policy.algorithms.dqn",
    "VTraceConfig": "jaxrl_policy.algorithms.vtrace",
    "DistillConfig": "jaxrl_policy.algorithms.distill",
    "PQNConfig": "jaxrl_policy.algorithms.pqn",
    "SACConfig": "jaxrl_policy.algorithms.sac",
    "TD3Config": "jaxrl_policy.algorithms.td3",
    "default_config": "jaxrl_policy.running.build",
    "config_from_dict": "jaxrl_policy.running.build",
    "register_algorithm": "jaxrl_policy.running.build",
    "make_train": "jaxrl_policy.running.build",
    "build_loop": "jaxrl_policy.running.build",
    "load_teacher": "jaxrl_policy.running.build",
    "seed_keys": "jaxrl_policy.loop.common",
    "run": "jaxrl_policy.running.runner",
    "resume_run": "jaxrl_policy.running.runner",
    "load_runs": "jaxrl_policy.results.frame",
    "load_policy": "jaxrl_policy.io.policy",
}
_MODULES = {"losses": "jaxrl_policy.core.losses"}

__all__ = ["hparams", "BaseConfig", "ConfigError", "PPOConfig", "DQNConfig", "VTraceConfig", "DistillConfig",
           "default_config", "config_from_dict", "register_algorithm", "make_train", "build_loop", "load_teacher",
           "seed_keys", "run", "resume_run", "load_runs", "load_policy", "losses", "set_cpu_threads",
           "use_cpu_speedups", "__version__", "PQNConfig", "SACConfig", "TD3Config"]
assert set(__all__) == {*_EXPORTS, *_MODULES, "set_cpu_threads", "use_cpu_speedups", "__version__"}

if TYPE_CHECKING:  # what the lazy names are, for type checkers and editors
    from jaxrl_policy.algorithms.distill import DistillConfig
    from jaxrl_policy.algorithms.dqn import DQNConfig
    from jaxrl_policy.algorithms.ppo import PPOConfig
    from jaxrl_policy.algorithms.pqn import PQNConfig
    from jaxrl_policy.algorithms.sac import SACConfig
    from jaxrl_policy.algorithms.td3 import TD3Config
    from jaxrl_policy.algorithms.vtrace import VTraceConfig
    from jaxrl_policy.core import losses
    from jaxrl_policy.core.config import BaseConfig, ConfigError, hparams
    from jaxrl_policy.io.policy import load_policy
    from jaxrl_policy.loop.common import seed_keys
    from jaxrl_policy.results.frame import load_runs
    from jaxrl_policy.running.build import (
        build_loop,
        config_from_dict,
        default_config,
        load_teacher,
        make_train,
        register_algorithm,
    )
    from jaxrl_policy.running.runner import resume_run, run


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(_MODULES[name])
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'jaxrl_policy' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


_xla_flags.apply_deadlock_guard()
