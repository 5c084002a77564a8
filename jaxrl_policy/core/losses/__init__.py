"""Pure, jit-able RL losses and return estimators over one trajectory (batch with jax.vmap)."""
from jaxrl_policy.core.losses.actor_critic import ActorCriticLoss, actor_critic_loss, vtrace_actor_critic_loss
from jaxrl_policy.core.losses.continuous import (
    sac_actor_loss,
    sac_critic_target,
    sac_temperature_loss,
    smoothed_target_action,
    td3_actor_loss,
    td3_target,
)
from jaxrl_policy.core.losses.distill import forward_kl_loss, jsd_loss, reverse_kl_loss
from jaxrl_policy.core.losses.policy import (
    categorical_entropy,
    categorical_kl,
    categorical_log_prob,
    entropy_loss,
    policy_gradient_loss,
    ppo_clip_loss,
)
from jaxrl_policy.core.losses.q_returns import q_lambda, q_lambda_returns
from jaxrl_policy.core.losses.returns import VTraceOutput, gae, gae_bootstrapped, vtrace
from jaxrl_policy.core.losses.value import double_q_learning, huber_loss, ppo_value_loss, q_learning, squared_loss

__all__ = [
    "ActorCriticLoss",
    "VTraceOutput",
    "actor_critic_loss",
    "categorical_log_prob",
    "policy_gradient_loss",
    "vtrace_actor_critic_loss",
    "categorical_entropy",
    "categorical_kl",
    "double_q_learning",
    "entropy_loss",
    "forward_kl_loss",
    "jsd_loss",
    "reverse_kl_loss",
    "gae",
    "gae_bootstrapped",
    "huber_loss",
    "ppo_clip_loss",
    "ppo_value_loss",
    "q_learning",
    "squared_loss",
    "vtrace",
    "q_lambda",
    "q_lambda_returns",
    "sac_critic_target",
    "sac_actor_loss",
    "sac_temperature_loss",
    "td3_target",
    "td3_actor_loss",
    "smoothed_target_action",
]
