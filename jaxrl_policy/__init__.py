"""jaxrl_policy: PPO, DQN and V-trace as pure-function bundles on one jitted scan loop."""
from jaxrl_policy import _xla_flags  # noqa: F401  (must precede any jax import)
from jaxrl_policy._xla_flags import set_cpu_threads  # noqa: E402

__version__ = "0.1.0"

from jaxrl_policy.config import (BaseConfig, DQNConfig, PPOConfig, VTraceConfig,  # noqa: E402
                                 config_from_dict, default_config)
from jaxrl_policy.loop import make_loop, make_train  # noqa: E402
from jaxrl_policy.runner import resume_run, run, seed_keys  # noqa: E402
from jaxrl_policy import losses  # noqa: E402,F401
from jaxrl_policy import _threefry  # noqa: E402,F401  (unrolled threefry on CPU: same bits, faster)

__all__ = ["BaseConfig", "PPOConfig", "DQNConfig", "VTraceConfig", "default_config", "config_from_dict",
           "make_train", "make_loop", "run", "resume_run", "seed_keys", "losses", "set_cpu_threads",
           "__version__"]
