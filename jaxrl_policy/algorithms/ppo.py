"""PPO (Schulman et al. 2017) with GAE (Schulman et al. 2016) as a bundle of pure functions.

Shape legend: ``T`` time, ``E`` envs, ``N = T·E`` batch, ``M`` minibatch, ``A`` actions,
``G = num_epochs · num_minibatches`` gradient steps per iteration.

Storage: a ring of one unroll sampled as ``latest`` (strictly on-policy). Reuse: ``num_epochs``
passes × ``num_minibatches`` minibatches over each unroll. Truncation: advantages bootstrap
from V(next_obs) at a time limit and cut the λ-trace there; a termination bootstraps with 0.
Traced hyperparameters (``hp``): learning rate and its annealing, Adam ε, gradient clipping, γ,
λ, clip ε, entropy and value coefficients, value clipping and advantage normalisation.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxrl_policy import losses
from jaxrl_policy.algorithms.common import (
    HParams,
    age_diagnostics,
    flag,
    init_optimizer,
    make_update,
    mean_metrics,
    next_values,
    ratio_diagnostics,
    sample_categorical,
    sampled_kl,
    shuffle,
    standardize,
)
from jaxrl_policy.config import PPOConfig
from jaxrl_policy.envs.adapter import EnvSpec
from jaxrl_policy.networks import ActorCritic, dummy_obs, make_actor_critic
from jaxrl_policy.storage import make_ring
from jaxrl_policy.types import Algorithm, Params, Transition


class PPOState(NamedTuple):
    params: Params  # actor-critic parameters
    opt_state: optax.OptState
    grad_steps: jax.Array  # int32 scalar: gradient steps taken


class ActorState(NamedTuple):
    params: Params  # the parameters that act
    version: jax.Array  # int32 scalar: the learner's gradient steps when they were current


class Minibatch(NamedTuple):
    obs: jax.Array  # [M, O...]
    action: jax.Array  # [M]
    log_prob: jax.Array  # [M] log μ(a|s) of the acting policy
    value: jax.Array  # [M] V(s) at acting time
    advantage: jax.Array  # [M]
    target: jax.Array  # [M] value target: advantage + value


def make_ppo(cfg: PPOConfig, spec: EnvSpec) -> Algorithm:
    net = make_actor_critic(cfg, spec)
    apply: Callable[..., Any] = net.apply  # (flax types the result as Any | (Any, mutated variables))
    G = cfg.gradient_steps_per_iteration
    N = cfg.num_envs * cfg.num_steps
    M = N // cfg.num_minibatches

    def init(key):
        params = net.init(key, dummy_obs(spec.obs_shape))
        return PPOState(params=params, opt_state=init_optimizer(params), grad_steps=jnp.zeros((), jnp.int32))

    def actor(state: PPOState, hp: HParams) -> ActorState:
        return ActorState(state.params, state.grad_steps)

    def act(actor_state: ActorState, obs, carry, key, env_step, hp: HParams):
        logits, value = apply(actor_state.params, obs)
        action, logp = sample_categorical(key, logits)
        return action, {"log_prob": logp, "value": value,
                        "version": jnp.broadcast_to(actor_state.version, action.shape)}, carry

    def loss_fn(params, hp: HParams, mb: Minibatch):
        logits, value = apply(params, mb.obs)
        log_ratio = losses.categorical_log_prob(logits, mb.action) - mb.log_prob
        ratio = jnp.exp(log_ratio)
        adv = flag(hp["normalize_advantages"], lambda: standardize(mb.advantage), lambda: mb.advantage)
        pg_loss = losses.ppo_clip_loss(ratio_t=ratio, adv_t=adv, epsilon=hp["clip_eps"])
        v_loss = flag(hp["clip_value_loss"],
                      lambda: losses.ppo_value_loss(v_t=value, v_old_t=mb.value, target_t=mb.target,
                                                    clip_epsilon=hp["clip_eps"]),
                      lambda: losses.ppo_value_loss(v_t=value, v_old_t=mb.value, target_t=mb.target))
        ent_loss = losses.entropy_loss(logits_t=logits)
        total = pg_loss + hp["vf_coef"] * v_loss + hp["ent_coef"] * ent_loss
        aux = {"pg_loss": pg_loss, "value_loss": v_loss, "entropy": -ent_loss, "policy_kl": sampled_kl(log_ratio),
               **ratio_diagnostics(ratio, 1 - hp["clip_eps"], 1 + hp["clip_eps"])}
        return total, aux

    update = make_update(loss_fn, G, cfg.num_iterations)

    def learn(state: PPOState, unroll: Transition, key, env_step, hp: HParams):
        ex = unroll.extras
        # Bootstrap values of the true next observations: equal to V(obs_{t+1}) inside an
        # episode, V(final obs) at a truncation; unused (discount 0) at a termination.
        v_t = next_values(lambda o: apply(state.params, o, method=ActorCritic.value), ex["value"],
                          unroll.next_obs, unroll.truncated, spec.max_episode_steps)  # [T, E]
        discount_t = hp["gamma"] * (1.0 - unroll.terminated.astype(jnp.float32))
        adv = jax.vmap(losses.gae_bootstrapped, in_axes=(1, 1, 1, 1, None, 1), out_axes=1)(
            unroll.reward, discount_t, ex["value"], v_t, hp["gae_lambda"], unroll.truncated)

        def flat(x):
            return x.reshape((N, *x.shape[2:]))

        data = Minibatch(obs=flat(unroll.obs), action=flat(unroll.action), log_prob=flat(ex["log_prob"]),
                         value=flat(ex["value"]), advantage=flat(adv), target=flat(adv + ex["value"]))

        def minibatch(carry, idx):
            params, opt_state = carry
            params, opt_state, metrics = update(params, opt_state, hp, jax.tree.map(lambda x: x[idx], data))
            return (params, opt_state), metrics

        def epoch(carry, epoch_key):
            perm = shuffle(epoch_key, N).reshape(cfg.num_minibatches, M)
            return jax.lax.scan(minibatch, carry, perm)

        (params, opt_state), stats = jax.lax.scan(
            epoch, (state.params, state.opt_state), jax.random.split(key, cfg.num_epochs))
        metrics = mean_metrics(stats)
        grad_steps = state.grad_steps + G
        # Age per gradient step: the j-th of the G steps learns on data j steps older than at j = 0.
        age = age_diagnostics(state.grad_steps, ex["version"])
        metrics.update(data_age=age["data_age"] + (G - 1) / 2, data_age_max=age["data_age_max"] + (G - 1))
        metrics["grad_steps"] = grad_steps.astype(jnp.float32)
        return PPOState(params=params, opt_state=opt_state, grad_steps=grad_steps), metrics

    def greedy(state: PPOState, obs, carry, hp: HParams):
        return jnp.argmax(apply(state.params, obs)[0], -1), carry

    return Algorithm(init=init, actor=actor, act=act, learn=learn, greedy=greedy, storage=make_ring(1, "latest"))
