"""Write your own algorithm: A2C (Mnih et al. 2016, synchronous advantage actor-critic) in one file.

An algorithm is a config class (which fields, which are traced) and a factory returning the
``Algorithm`` bundle of pure functions; ``register_algorithm`` makes it known to ``default_config``,
``make_train``, ``compare``, ``sweep`` and ``report``. From the command line, load the file with
``--plugin``:

    jaxrl-policy compare --plugin experiments/a2c.py --algos ppo a2c --env CartPole-v1 --seeds 4
    jaxrl-policy sweep --plugin experiments/a2c.py --algo a2c --grid learning_rate=3e-4,1e-3 --seeds 4

Shape legend: ``T`` unroll length, ``E`` envs, ``A`` actions.
"""
from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp

from jaxrl_policy.algorithms.common import init_optimizer, make_update, sample_categorical
from jaxrl_policy.core import losses
from jaxrl_policy.core.config import BaseConfig, Traced
from jaxrl_policy.core.networks import dummy_obs, make_actor_critic
from jaxrl_policy.core.storage import make_ring
from jaxrl_policy.core.types import Algorithm
from jaxrl_policy.running.build import register_algorithm


@dataclass(frozen=True)
class A2CConfig(BaseConfig):
    """A2C: one gradient step on each fresh unroll; n-step returns with GAE λ."""

    num_envs: int = 16
    num_steps: int = 8
    learning_rate: float = 1e-3
    gae_lambda: Traced[float] = 1.0
    """GAE λ (1: the n-step return of the unroll)."""
    ent_coef: Traced[float] = 0.01
    """entropy bonus coefficient."""
    vf_coef: Traced[float] = 0.5
    """value-loss coefficient."""
    share_torso: bool = False
    """actor and critic share one torso (``make_actor_critic`` reads it)."""

    algo: ClassVar[str] = "a2c"

    @property
    def gradient_steps_per_iteration(self) -> int:
        return 1


def make_a2c(cfg: A2CConfig, spec) -> Algorithm:
    net = make_actor_critic(cfg, spec)

    def init(key):
        params = net.init(key, dummy_obs(spec.obs_shape))
        return params, init_optimizer(params), jnp.zeros((), jnp.int32)  # (params, opt_state, grad_steps)

    def actor(state, hp):
        return state[0]

    def act(params, obs, carry, key, env_step, hp):
        logits, value, _ = net.apply(params, obs)
        action, logp = sample_categorical(key, logits)
        return action, {"value": value}, carry

    def greedy(state, obs, carry, hp):
        return jnp.argmax(net.apply(state[0], obs)[0], -1), carry

    def loss_fn(params, hp, unroll, adv):  # unroll leaves [T, E, ...], adv [T, E]
        logits, value, _ = net.apply(params, unroll.obs)
        A = logits.shape[-1]
        pg = losses.policy_gradient_loss(logits.reshape(-1, A), unroll.action.reshape(-1), adv.reshape(-1))
        v_loss = 0.5 * jnp.mean(jnp.square(value - jax.lax.stop_gradient(unroll.extras["value"] + adv)))
        entropy = losses.categorical_entropy(logits).mean()
        return pg + hp["vf_coef"] * v_loss - hp["ent_coef"] * entropy, {"value_loss": v_loss, "entropy": entropy}

    update = make_update(loss_fn, 1, cfg.num_iterations)

    def learn(state, unroll, key, env_step, hp):
        params, opt_state, grad_steps = state
        # V(s_{t+1}): the stored next value inside the unroll, V(next_obs) after its last step and at
        # a truncation (the true final observation); a termination zeroes the discount.
        v_next = net.apply(params, unroll.next_obs, method=type(net).value)  # [T, E]
        discount = hp["gamma"] * (1.0 - unroll.terminated.astype(jnp.float32))
        values = jnp.concatenate([unroll.extras["value"], v_next[-1:]])  # [T + 1, E]
        r = unroll.reward + discount * jnp.where(unroll.truncated, v_next, 0.0)  # truncation: bootstrap here
        d = jnp.where(unroll.truncated, 0.0, discount)
        adv = jax.vmap(losses.gae, in_axes=(1, 1, 1, None), out_axes=1)(r, d, values, hp["gae_lambda"])
        params, opt_state, metrics = update(params, opt_state, hp, unroll, adv)
        metrics["grad_steps"] = (grad_steps + 1).astype(jnp.float32)
        return (params, opt_state, grad_steps + 1), metrics

    return Algorithm(init=init, actor=actor, act=act, learn=learn, greedy=greedy, storage=make_ring(1, "latest"))


register_algorithm(A2CConfig, make_a2c)
