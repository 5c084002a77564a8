"""jaxrl_policy: PPO, DQN and V-trace as pure-function bundles on one jitted scan loop."""
from jaxrl_policy import _xla_flags  # noqa: F401  (must precede any jax import)
