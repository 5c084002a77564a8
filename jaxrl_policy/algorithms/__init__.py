"""Algorithm factories: ``make_<algo>(cfg, env_spec) -> Algorithm`` (see ``types.Algorithm``)."""
from __future__ import annotations

from jaxrl_policy.algorithms.dqn import make_dqn
from jaxrl_policy.algorithms.ppo import make_ppo
from jaxrl_policy.algorithms.vtrace import make_vtrace
from jaxrl_policy.config import BaseConfig
from jaxrl_policy.envs.adapter import EnvSpec
from jaxrl_policy.types import Algorithm

FACTORIES = {"ppo": make_ppo, "dqn": make_dqn, "vtrace": make_vtrace}


def make_algorithm(cfg: BaseConfig, spec: EnvSpec) -> Algorithm:
    """Look up the factory registered for ``cfg.algo``; the loop itself never does."""
    return FACTORIES[cfg.algo](cfg, spec)
