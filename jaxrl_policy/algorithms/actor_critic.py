"""What the actor-critic learners (PPO, V-trace, distillation) share: their config fields.

Shape legend: ``T`` time, ``MB`` envs per minibatch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from jaxrl_policy.core.config import BaseConfig, is_number


@dataclass(frozen=True)
class ActorCriticConfig(BaseConfig):
    """Fields of the actor-critic algorithms (PPO, V-trace): the policy head, continuous actions."""

    share_torso: bool = False
    """one torso for policy and value (purejaxrl uses two; a gru core is always shared)."""
    action_squash: Literal["clip", "tanh"] = "clip"
    """continuous actions: clip the Gaussian sample to the bounds in the env, or squash it with tanh."""
    state_dependent_std: bool = False
    """continuous actions: the log-std is a head of the network (default: one learned vector)."""
    log_std_init: float = 0.0
    """continuous actions: initial log-std of the Gaussian policy."""

    CONTINUOUS_ACTIONS: ClassVar[bool] = True
    RECURRENT: ClassVar[bool] = True

    def _problems(self):
        p = super()._problems()
        if self.action_squash not in ("clip", "tanh"):
            p.append(("action_squash", self.action_squash, "must be clip or tanh"))
        if not (is_number(self.log_std_init) and -20 <= self.log_std_init <= 2):
            p.append(("log_std_init", self.log_std_init, "must be a number in [-20, 2]"))
        for name in ("state_dependent_std", "share_torso"):
            if not isinstance(getattr(self, name), bool):
                p.append((name, getattr(self, name), "must be true or false"))
        return p
