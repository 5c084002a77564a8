"""Pure, jit-able RL losses and return estimators over one trajectory (batch with jax.vmap)."""
from jaxrl_policy.losses.policy import categorical_entropy
from jaxrl_policy.losses.policy import categorical_kl
from jaxrl_policy.losses.policy import entropy_loss
from jaxrl_policy.losses.policy import ppo_clip_loss
from jaxrl_policy.losses.returns import gae
from jaxrl_policy.losses.returns import gae_bootstrapped
from jaxrl_policy.losses.returns import vtrace
from jaxrl_policy.losses.returns import VTraceOutput
from jaxrl_policy.losses.value import double_q_learning
from jaxrl_policy.losses.value import huber_loss
from jaxrl_policy.losses.value import ppo_value_loss
from jaxrl_policy.losses.value import q_learning
from jaxrl_policy.losses.value import squared_loss

__all__ = [
    "VTraceOutput",
    "categorical_entropy",
    "categorical_kl",
    "double_q_learning",
    "entropy_loss",
    "gae",
    "gae_bootstrapped",
    "huber_loss",
    "ppo_clip_loss",
    "ppo_value_loss",
    "q_learning",
    "squared_loss",
    "vtrace",
]
