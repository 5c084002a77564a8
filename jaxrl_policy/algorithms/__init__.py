"""Algorithm factories: ``make_<algo>(cfg, env_spec) -> Algorithm`` (see ``types.Algorithm``).

``register_algorithm(config_class, factory)`` adds a new one: its config class (a frozen
dataclass subclassing ``BaseConfig`` with a unique ``algo`` name) becomes known to
``default_config``, the command line, ``compare`` and ``sweep``, and ``make_loop`` runs its
factory's bundle through the same loop.
"""
from __future__ import annotations

from typing import Any, Callable

from jaxrl_policy.algorithms.distill import make_distill
from jaxrl_policy.algorithms.dqn import make_dqn
from jaxrl_policy.algorithms.ppo import make_ppo
from jaxrl_policy.algorithms.vtrace import make_vtrace
from jaxrl_policy.config import CONFIGS, BaseConfig
from jaxrl_policy.envs.adapter import EnvSpec
from jaxrl_policy.types import Algorithm

Factory = Callable[[Any, EnvSpec], Algorithm]  # (the algorithm's own config class, env spec)
FACTORIES: dict[str, Factory] = {"ppo": make_ppo, "dqn": make_dqn, "vtrace": make_vtrace, "distill": make_distill}


def register_algorithm(config_class: type[BaseConfig], factory: Factory) -> None:
    """Make ``config_class.algo`` an algorithm name everywhere (config, CLI, loop)."""
    name = config_class.algo
    if not (isinstance(config_class, type) and issubclass(config_class, BaseConfig)) or name == BaseConfig.algo:
        raise ValueError(f"register_algorithm: {config_class!r} must subclass BaseConfig and set its own `algo` name")
    if name in CONFIGS and (CONFIGS[name] is not config_class or FACTORIES.get(name) is not factory):
        raise ValueError(f"register_algorithm: algo = {name!r} is already registered")
    CONFIGS[name] = config_class
    FACTORIES[name] = factory


def make_algorithm(cfg: BaseConfig, spec: EnvSpec) -> Algorithm:
    """Look up the factory registered for ``cfg.algo``; the loop itself never does."""
    return FACTORIES[cfg.algo](cfg, spec)
