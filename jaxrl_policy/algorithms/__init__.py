"""Algorithm factories: ``make_<algo>(cfg, env_spec) -> Algorithm`` (see ``types.Algorithm``)."""
from __future__ import annotations

from jaxrl_policy.config import BaseConfig
from jaxrl_policy.envs.adapter import EnvSpec
from jaxrl_policy.types import Algorithm


def make_algorithm(cfg: BaseConfig, spec: EnvSpec) -> Algorithm:
    """Look up the factory registered for ``cfg.algo``; the loop itself never does."""
    from jaxrl_policy.algorithms.ppo import make_ppo

    factories = {"ppo": make_ppo}
    try:
        from jaxrl_policy.algorithms.dqn import make_dqn
        factories["dqn"] = make_dqn
    except ImportError:
        pass
    try:
        from jaxrl_policy.algorithms.vtrace import make_vtrace
        factories["vtrace"] = make_vtrace
    except ImportError:
        pass
    return factories[cfg.algo](cfg, spec)
