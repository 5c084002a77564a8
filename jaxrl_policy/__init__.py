"""jaxrl_policy: PPO, DQN and V-trace as pure-function bundles on one jitted scan loop.

Importing the package defines names and applies one process-wide setting, the XLA:CPU deadlock
guard (``_xla_flags``: what it does, why, and how to turn it off). Opt-in speed-ups that reach
into jax's internals: ``use_cpu_speedups()``.
"""
from jaxrl_policy import _xla_flags, losses
from jaxrl_policy._xla_flags import set_cpu_threads, use_cpu_speedups
from jaxrl_policy.config import (
                                 BaseConfig,
                                 DQNConfig,
                                 PPOConfig,
                                 VTraceConfig,
                                 config_from_dict,
                                 default_config,
                                 hparams,
)
from jaxrl_policy.loop import make_loop, make_train
from jaxrl_policy.report import load_runs
from jaxrl_policy.runner import resume_run, run, seed_keys

__version__ = "0.3.0"

__all__ = ["hparams", "BaseConfig", "PPOConfig", "DQNConfig", "VTraceConfig", "default_config", "config_from_dict",
           "make_train", "make_loop", "load_runs", "run", "resume_run", "seed_keys", "losses", "set_cpu_threads",
           "use_cpu_speedups", "__version__"]

_xla_flags.apply_deadlock_guard()
