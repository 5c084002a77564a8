"""Per-environment defaults taken from published configurations, as data (each config class's
``env_defaults`` picks its rows; ``BaseConfig.env_defaults`` holds the MinAtar row every algorithm shares).

Every table names its source beside it.
"""
from __future__ import annotations

from typing import Any

from jaxrl_policy.core.envs.brax import parse_id

# Continuous control (PPO, V-trace): rejax's tuned PPO configs (keraJLi/rejax, configs/gymnax/pendulum.yaml
# and continuous_mountaincar.yaml; Liesen et al. 2024), which keep a constant learning rate. V-trace takes
# the data and optimiser settings; PPO also its epochs, minibatches, λ and ε.
CONTINUOUS_DEFAULTS: dict[str, dict[str, Any]] = {
    "Pendulum-v1": dict(num_envs=100, num_steps=100, learning_rate=1e-3, anneal_lr=False, max_grad_norm=10.0,
                        gamma=0.995, ent_coef=0.0, vf_coef=0.5, activation="silu", normalize_observations=True,
                        total_timesteps=1_000_000),
    "MountainCarContinuous-v0": dict(num_envs=5, num_steps=100, learning_rate=3e-4, anneal_lr=False,
                                     max_grad_norm=10.0, gamma=0.9, ent_coef=0.0, vf_coef=0.5, activation="relu",
                                     total_timesteps=1_000_000),
}
PPO_CONTINUOUS_DEFAULTS = dict(num_epochs=10, num_minibatches=10, gae_lambda=0.95, clip_eps=0.2)
# V-trace has no trust region: on Pendulum it learns with ~6× more gradient steps per env step than
# rejax's PPO batch gives it, an entropy bonus, scaled rewards and standardised advantages (chosen
# by a 2 × 2 sweep over learning rate {1e-4, 3e-4} and entropy {0, 0.01}, 2 seeds × 10⁶ steps,
# docs/continuous-recurrent.md).
VTRACE_CONTINUOUS_DEFAULTS: dict[str, dict[str, Any]] = {
    "Pendulum-v1": dict(num_envs=16, num_steps=64, learning_rate=3e-4, ent_coef=0.01, reward_scale=0.1,
                        normalize_advantages=True, gae_lambda=1.0),
}


# Brax's published PPO hyperparameters: the `train_fn` table of google/brax notebooks/training.ipynb
# ("We determined some reasonable hyperparameters offline and share them here"), per env:
# (num_timesteps, reward_scaling, unroll_length, num_minibatches, num_updates_per_batch, discounting,
#  learning_rate, entropy_cost, num_envs, batch_size). All use episode_length 1000, action_repeat 1
# (reacher: 4, which this adapter does not do), normalize_observations True. hopper and walker2d have
# only SAC entries there; they, swimmer and any other Brax env get ant's values.
BRAX_PPO_PUBLISHED: dict[str, tuple[int, float, int, int, int, float, float, float, int, int]] = {
    "inverted_pendulum": (2_000_000, 10, 5, 32, 4, 0.97, 3e-4, 1e-2, 2048, 1024),
    "inverted_double_pendulum": (20_000_000, 10, 5, 32, 4, 0.97, 3e-4, 1e-2, 2048, 1024),
    "ant": (50_000_000, 10, 5, 32, 4, 0.97, 3e-4, 1e-2, 4096, 2048),
    "humanoid": (50_000_000, 0.1, 10, 32, 8, 0.97, 3e-4, 1e-3, 2048, 1024),
    "reacher": (50_000_000, 5, 50, 32, 8, 0.95, 3e-4, 1e-3, 2048, 256),
    "humanoidstandup": (100_000_000, 0.1, 15, 32, 8, 0.97, 6e-4, 1e-2, 2048, 1024),
    "halfcheetah": (50_000_000, 1, 20, 32, 8, 0.95, 3e-4, 1e-3, 2048, 512),
    "pusher": (50_000_000, 5, 30, 16, 8, 0.95, 3e-4, 1e-2, 2048, 512),
}
BRAX_CPU_ENVS = 64  # Brax's 2048-4096 envs scaled down for CPU
BRAX_CPU_TIMESTEPS_DIVISOR = 10  # Brax's budgets (2e6-1e8 steps) scaled down for CPU


def brax_defaults(algo: str, env_id: str) -> dict[str, Any]:
    """Defaults for ``brax:`` ids from Brax's published PPO configs (``BRAX_PPO_PUBLISHED``), for CPU.

    Kept from Brax: γ (discounting), learning rate (constant: no annealing), entropy cost, reward
    scaling, observation normalisation, minibatches and passes per batch (num_updates_per_batch),
    the PPO settings of brax.training.agents.ppo.train (clip ε 0.3, GAE λ 0.95, no gradient clipping,
    no value clipping, advantage normalisation), its tanh-squashed Gaussian and swish (silu) activation.
    Scaled for CPU: 64 envs instead of 2048-4096 and 1/10 of the env-step budget. Each env still
    collects Brax's steps per update, unroll_length × batch_size × num_minibatches / num_envs (ant:
    5 × 2048 × 32 / 4096 = 80), as one unroll, so a batch holds 64× fewer transitions than Brax's.
    One torso width for policy and value: (128, 128), between Brax's policy (32,)×4 and value (256,)×5.
    """
    name, _ = parse_id(env_id)
    steps, r_scale, unroll, n_mb, epochs, gamma, lr, ent, b_envs, b_batch = \
        BRAX_PPO_PUBLISHED.get(name, BRAX_PPO_PUBLISHED["ant"])
    d: dict[str, Any] = dict(
        num_envs=BRAX_CPU_ENVS, num_steps=unroll * b_batch * n_mb // b_envs,
        total_timesteps=steps // BRAX_CPU_TIMESTEPS_DIVISOR, gamma=gamma, learning_rate=lr, anneal_lr=False,
        max_grad_norm=None, reward_scale=float(r_scale), normalize_observations=True, ent_coef=ent,
        action_squash="tanh", activation="silu", hidden_sizes=(128, 128))
    if algo == "ppo":
        d.update(num_minibatches=n_mb, num_epochs=epochs, clip_eps=0.3, gae_lambda=0.95, clip_value_loss=False)
    elif algo != "vtrace":  # an algorithm without continuous actions: validation names the problem
        return {}
    return d
