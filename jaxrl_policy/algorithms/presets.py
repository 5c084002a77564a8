"""Published configurations, as data: the per-environment defaults each config class's ``env_defaults`` picks
(``BaseConfig.env_defaults`` holds the MinAtar row every algorithm shares), and the named presets
(``PRESETS``, ``--preset NAME``) that reproduce one source's configuration for one (algorithm, env family).

Every table names its source beside it. A preset entry holds the source (repository, file, commit or version),
the overrides that reproduce it with this package's fields, the source's published results, and what could not be
reproduced; ``running/build.py``'s ``default_config(algo, env, preset=NAME, **overrides)`` applies the algorithm's
``env_defaults``, then the preset's overrides, then the caller's. ``docs/references.md`` lists every preset
(``experiments/references.py`` writes that list from this registry) beside our results at the same budgets.
"""
from __future__ import annotations

import dataclasses
import difflib
import fnmatch
from dataclasses import dataclass, field
from typing import Any, Callable, Union

from jaxrl_policy.core.config import BaseConfig
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


# ---- the optional JAX suites (core/envs/craftax.py, xminigrid.py, navix.py, jumanji.py) ------------------------------
# Each suite's own published PPO (or A2C) settings, scaled for CPU as Brax's are above: at most SUITE_CPU_ENVS envs
# (each env still collects the published steps per update) and a 10⁶-step budget. The network every algorithm
# shares (torso, widths, activation) is in core/config.py's SUITE_DEFAULTS, with the same sources.
SUITE_CPU_ENVS = 64
SUITE_CPU_TIMESTEPS = 1_000_000

# Craftax: MichaelTMatthews/Craftax_Baselines ppo.py, its argparse defaults (the PPO of Matthews et al. 2024,
# "Craftax: A Lightning-Fast Benchmark for Open-Ended Reinforcement Learning", ICML): 1024 envs × 64 steps,
# 4 epochs × 8 minibatches, lr 2e-4 annealed, γ 0.99, GAE λ 0.8, clip 0.2, entropy 0.01, value 0.5, grad norm
# 1.0, 10⁹ steps. Craftax episodes last up to 10⁴ steps: evaluation runs once, at the end.
CRAFTAX_PPO_PUBLISHED: dict[str, Any] = dict(
    num_steps=64, learning_rate=2e-4, anneal_lr=True, gamma=0.99, max_grad_norm=1.0,
    num_epochs=4, num_minibatches=8, gae_lambda=0.8, clip_eps=0.2, ent_coef=0.01, vf_coef=0.5)
CRAFTAX_PUBLISHED_ENVS = 1024

# XLand-MiniGrid: corl-team/xland-minigrid training/train_single_task.py, TrainConfig (Nikulin et al. 2024):
# 8192 envs × 16 steps, 1 epoch × 16 minibatches, lr 1e-3 annealed, Adam ε 1e-8, γ 0.99, GAE λ 0.95, clip 0.2,
# entropy 0.01, value 0.5, grad norm 0.5, 10⁶ steps (its GRU policy is not used: [V, V, 2] images take the CNN).
XMINIGRID_PPO_PUBLISHED: dict[str, Any] = dict(
    num_steps=16, learning_rate=1e-3, anneal_lr=True, adam_eps=1e-8, gamma=0.99, max_grad_norm=0.5,
    num_epochs=1, num_minibatches=16, gae_lambda=0.95, clip_eps=0.2, ent_coef=0.01, vf_coef=0.5)
XMINIGRID_PUBLISHED_ENVS = 8192

# Navix: navix/agents/ppo.py, PPOHparams (navix 0.7; Pignatelli et al. 2024, "NAVIX: Scaling MiniGrid
# Environments with JAX"): 16 envs × 128 steps, 1 epoch × 8 minibatches, lr 2.5e-4 annealed, γ 0.99, GAE λ 0.95,
# clip 0.2, entropy 0.01, value 0.5, grad norm 0.5, 10⁶ steps.
NAVIX_PPO_PUBLISHED: dict[str, Any] = dict(
    num_steps=128, learning_rate=2.5e-4, anneal_lr=True, gamma=0.99, max_grad_norm=0.5,
    num_epochs=1, num_minibatches=8, gae_lambda=0.95, clip_eps=0.2, ent_coef=0.01, vf_coef=0.5)
NAVIX_PUBLISHED_ENVS = 16

# Jumanji: its A2C baselines, jumanji/training/configs/env/<env>.yaml (jumanji 1.1.2; Bonnet et al. 2024,
# "Jumanji: a Diverse Suite of Scalable RL Environments in JAX", ICLR), per env:
# (n_steps, total_batch_size = envs, discount_factor, bootstrapping_factor = λ, l_en, learning_rate,
#  normalize_advantage). A2C's data and optimiser settings; PPO keeps its own epochs, minibatches and clipping.
JUMANJI_A2C_PUBLISHED: dict[str, tuple[int, int, float, float, float, float, bool]] = {
    "BinPack-v2": (30, 64, 1.0, 0.95, 0.005, 1e-4, False),
    "Cleaner-v0": (10, 128, 0.99, 0.95, 0.01, 5e-4, False),
    "CVRP-v1": (100, 32, 1.0, 0.95, 0.005, 1e-4, False),
    "Game2048-v1": (50, 32, 0.99, 0.95, 0.01, 2e-4, False),
    "GraphColoring-v1": (20, 64, 1.0, 0.95, 0.01, 1e-4, False),
    "Knapsack-v1": (20, 64, 1.0, 0.95, 0.01, 1e-4, False),
    "Maze-v0": (10, 128, 0.99, 0.95, 0.01, 3e-4, False),
    "Minesweeper-v0": (10, 128, 0.99, 0.95, 0.01, 3e-4, False),
    "PacMan-v1": (30, 64, 0.99, 0.95, 0.01, 3e-4, False),
    "RobotWarehouse-v0": (20, 128, 0.99, 0.95, 0.01, 1e-4, False),
    "RubiksCube-partly-scrambled-v0": (10, 256, 0.99, 0.95, 0.01, 3e-4, False),
    "SlidingTilePuzzle-v0": (30, 256, 0.99, 0.95, 0.01, 2e-4, False),
    "Snake-v1": (20, 128, 0.997, 0.95, 0.01, 3e-4, False),
    "Sudoku-very-easy-v0": (40, 128, 1.0, 0.95, 0.01, 1e-4, False),
    "Tetris-v0": (30, 128, 0.9, 0.9, 0.01, 3e-4, False),
    "TSP-v1": (100, 32, 1.0, 0.95, 0.005, 1e-4, False),
}


def suite_ppo_defaults(env_id: str) -> dict[str, Any]:
    """PPO's defaults for ``craftax:``, ``xminigrid:``, ``navix:`` and ``jumanji:`` ids from the suites' published
    configs (tables above), for CPU: at most ``SUITE_CPU_ENVS`` envs, ``SUITE_CPU_TIMESTEPS`` steps. Jumanji envs
    without a published row get none."""
    prefix, _, name = env_id.partition(":")
    rows = {"craftax": (CRAFTAX_PPO_PUBLISHED, CRAFTAX_PUBLISHED_ENVS),
            "xminigrid": (XMINIGRID_PPO_PUBLISHED, XMINIGRID_PUBLISHED_ENVS),
            "navix": (NAVIX_PPO_PUBLISHED, NAVIX_PUBLISHED_ENVS)}
    if prefix in rows:
        row, envs = rows[prefix]
        d = dict(row, num_envs=min(envs, SUITE_CPU_ENVS))
    elif prefix == "jumanji" and name in JUMANJI_A2C_PUBLISHED:
        steps, envs, gamma, lam, ent, lr, norm_adv = JUMANJI_A2C_PUBLISHED[name]
        d = dict(num_steps=steps, num_envs=min(envs, SUITE_CPU_ENVS), gamma=gamma, gae_lambda=lam, ent_coef=ent,
                 learning_rate=lr, normalize_advantages=norm_adv)
    else:
        return {}
    return dict(d, total_timesteps=SUITE_CPU_TIMESTEPS)


# ---------------------------------------------------------------------------------------------
# named presets (--preset NAME): one source's published configuration per (algorithm, env family)
# ---------------------------------------------------------------------------------------------
class Derived:
    """A preset value computed from the resolved fields (class defaults, then ``env_defaults``, then the preset's
    fixed values, then the caller's overrides), e.g. a schedule the source fixes in env steps, which is a fraction
    of ``total_timesteps`` here. A caller's override of the same field wins over it."""

    def __init__(self, fn: Callable[[dict[str, Any]], Any], doc: str):
        self.fn, self.doc = fn, doc

    def __repr__(self) -> str:
        return self.doc


Overrides = dict[str, Union[Any, Derived]]


@dataclass(frozen=True)
class Published:
    """A result the source published (or, where it publishes none, one its code gave on this machine: ``measured``)."""

    env: str
    steps: int
    """env steps at which the number was taken."""
    value: float
    spread: float | None = None
    """± this (the source's spread: a std over seeds), where it gives one."""
    metric: str = ""
    """what the number is: which returns, averaged how, over how many runs."""
    measured: bool = False
    """True: not published by the source but measured here with its code (a peer harness)."""


@dataclass(frozen=True)
class PresetEntry:
    """One (algorithm, env family) of a preset."""

    algo: str
    envs: tuple[str, ...]
    """env ids, or shell-style patterns (``brax:*``)."""
    overrides: Overrides | Callable[[str], Overrides]
    """config fields that reproduce the source (or a function of the env id giving them)."""
    source: str
    """repository, file and commit (or package version) the values were read from."""
    published: tuple[Published, ...] = ()
    differences: str = ""
    """what this package does differently from the source (and where our default differs, why)."""

    def matches(self, env_id: str) -> bool:
        return any(fnmatch.fnmatchcase(env_id, pat) for pat in self.envs)

    def values(self, env_id: str) -> Overrides:
        return dict(self.overrides(env_id) if callable(self.overrides) else self.overrides)


@dataclass(frozen=True)
class Preset:
    name: str
    doc: str
    entries: tuple[PresetEntry, ...] = field(default_factory=tuple)

    def covers(self) -> str:
        return "; ".join(f"{e.algo} on {', '.join(e.envs)}" for e in self.entries)


MINATAR_GAMES = ("Breakout-MinAtar", "SpaceInvaders-MinAtar", "Asterix-MinAtar", "Freeway-MinAtar")
CLASSIC_DISCRETE = ("CartPole-v1", "Acrobot-v1", "MountainCar-v0")

# gymnax-blines (RobertTLange/gymnax-blines @ 15b76af, agents/<game>-MinAtar/ppo.yaml, the same for all four games;
# utils/ppo.py @ 0524590, utils/models.py CategoricalSeparateMLP): PPO, separate actor and critic MLPs of 2 × 256
# ReLU on flattened observations, 64 envs × 128 steps, 4 epochs × 8 minibatches, lr 5e-4 (lr_begin = lr_end, so
# the 5% "warm-up" of its linear schedule is a constant), Adam ε 1e-5, gradient norm 0.5, γ 0.999, λ 0.95,
# clip 0.2 (policy and value), entropy 0.01, value 0.5, advantages standardised per minibatch, 10⁷ steps.
GYMNAX_BLINES_MINATAR_PPO: dict[str, Any] = dict(
    total_timesteps=10_000_000, num_envs=64, num_steps=128, num_epochs=4, num_minibatches=8, learning_rate=5e-4,
    anneal_lr=False, adam_eps=1e-5, max_grad_norm=0.5, gamma=0.999, gae_lambda=0.95, clip_eps=0.2, ent_coef=0.01,
    vf_coef=0.5, clip_value_loss=True, normalize_advantages=True, torso="mlp", hidden_sizes=(256, 256),
    activation="relu", share_torso=False, orthogonal_init=False)

# CleanRL's ppo.py defaults (vwxyzjn/cleanrl cleanrl/ppo.py @ 2f4172e; docs/rl-algorithms/ppo.md): the same numbers as
# purejaxrl's ppo.py and PPOConfig's defaults.
CLEANRL_PPO: dict[str, Any] = dict(
    total_timesteps=500_000, num_envs=4, num_steps=128, learning_rate=2.5e-4, anneal_lr=True, adam_eps=1e-5,
    max_grad_norm=0.5, gamma=0.99, gae_lambda=0.95, num_epochs=4, num_minibatches=4, clip_eps=0.2, ent_coef=0.01,
    vf_coef=0.5, clip_value_loss=True, normalize_advantages=True, torso="mlp", hidden_sizes=(64, 64),
    activation="tanh", share_torso=False, orthogonal_init=True)

# CleanRL's dqn.py defaults (cleanrl/dqn.py @ 020cf0e): one env, a gradient step every 10 env steps (train_frequency),
# batch 128 from a 10⁴-transition buffer, learning from 10⁴ steps, hard target copy every 500 steps, ε 1 → 0.05 over
# half the run, Adam 2.5e-4 (torch's ε 1e-8), no gradient clipping, MSE TD loss, 120-84 ReLU (torch's default init).
CLEANRL_DQN: dict[str, Any] = dict(
    total_timesteps=500_000, num_envs=1, num_steps=10, replay_ratio=0.1, batch_size=128, buffer_size=10_000,
    learning_starts=10_000, target_update_interval=500, tau=1.0, gamma=0.99, eps_start=1.0, eps_end=0.05,
    eps_decay_fraction=0.5, learning_rate=2.5e-4, anneal_lr=False, adam_eps=1e-8, max_grad_norm=None,
    loss="squared", double_q=False, torso="mlp", hidden_sizes=(120, 84), activation="relu", orthogonal_init=False)

# purejaxrl's dqn.py (luchris429/purejaxrl @ 31756b1, purejaxrl/dqn.py): CleanRL's numbers acted as 10 envs × 1 step
# with a gradient step per scan step (DQNConfig's defaults).
PUREJAXRL_DQN: dict[str, Any] = {**CLEANRL_DQN, "num_envs": 10, "num_steps": 1}

# rejax's tuned configs (keraJLi/rejax @ 4954fbf, configs/gymnax/{cartpole,acrobot,pendulum}.yaml; networks in
# rejax/algos/networks.py: flax's default initialisation, (64, 64)); PyPI 0.1.3 is what ../shared/peers runs.
REJAX_PPO_PENDULUM: dict[str, Any] = {**CONTINUOUS_DEFAULTS["Pendulum-v1"], **PPO_CONTINUOUS_DEFAULTS,
                                      "total_timesteps": 150_000, "hidden_sizes": (64, 64), "orthogonal_init": False}
REJAX_PPO_CLASSIC: dict[str, Any] = dict(
    total_timesteps=100_000, num_envs=5, num_steps=100, num_epochs=5, num_minibatches=5, learning_rate=7.5e-4,
    anneal_lr=False, max_grad_norm=0.5, gamma=0.99, gae_lambda=0.95, clip_eps=0.2, ent_coef=0.01, vf_coef=0.5,
    activation="tanh", hidden_sizes=(64, 64), orthogonal_init=False)
REJAX_SAC_PENDULUM: dict[str, Any] = dict(
    total_timesteps=10_000, num_envs=1, num_steps=1, buffer_size=10_000, learning_starts=256, batch_size=256,
    learning_rate=0.01, replay_ratio=1.0, gamma=0.99, tau=0.02, activation="silu", hidden_sizes=(64, 64),
    normalize_observations=True, max_grad_norm=None, adam_eps=1e-8, orthogonal_init=False)
# rejax's TD3 noises are in action units; here in units of the action half-range h (Pendulum: h = 2).
REJAX_TD3_PENDULUM: dict[str, Any] = dict(
    total_timesteps=10_000, num_envs=1, num_steps=1, buffer_size=10_000, learning_starts=1000, batch_size=100,
    learning_rate=1e-3, replay_ratio=1.0, gamma=0.99, tau=0.05, max_grad_norm=100.0, exploration_noise=0.15,
    target_noise=0.1, target_noise_clip=0.25, policy_delay=2, activation="silu", hidden_sizes=(64, 64),
    normalize_observations=True, adam_eps=1e-8, orthogonal_init=False)
REJAX_PQN_CLASSIC: dict[str, Any] = dict(
    total_timesteps=524_288, num_envs=16, num_steps=128, num_epochs=5, num_minibatches=16, learning_rate=3e-4,
    anneal_lr=False, max_grad_norm=10.0, gamma=0.99, td_lambda=0.9, eps_start=1.0, eps_end=0.05,
    eps_decay_fraction=0.5, normalize_observations=False, layer_norm=True, hidden_sizes=(64, 64), activation="relu",
    orthogonal_init=False)

# purejaxql's MinAtar PQN (mttga/purejaxql @ 0cd95ed, purejaxql/config/alg/pqn_minatar.yaml; purejaxql/pqn_minatar.py).
PUREJAXQL_PQN_MINATAR: dict[str, Any] = dict(
    total_timesteps=10_000_000, num_envs=128, num_steps=32, num_epochs=2, num_minibatches=32, learning_rate=5e-4,
    anneal_lr=True, max_grad_norm=10.0, gamma=0.99, td_lambda=0.65, eps_start=1.0, eps_end=0.05,
    eps_decay_fraction=0.1, layer_norm=True, torso="cnn", hidden_sizes=(128,), activation="relu")

# The MinAtar paper's DQN (Young & Tian 2019; kenjyoung/MinAtar examples/dqn.py @ 3f078e5): one env, a gradient step
# of 32 transitions per env step, 10⁵ kept, learning from 5,000, hard target copy every 1,000 steps, ε 1 → 0.1 over
# 10⁵ steps after the 5,000 random ones, Huber loss, γ 0.99, step size 2.5e-4, one 3×3 conv of 16 then 128 ReLU.
MINATAR_PAPER_DQN: Overrides = dict(
    total_timesteps=5_000_000, num_envs=1, num_steps=1, replay_ratio=1.0, batch_size=32, buffer_size=100_000,
    learning_starts=5_000, target_update_interval=1_000, tau=1.0, gamma=0.99, eps_start=1.0, eps_end=0.1,
    eps_decay_fraction=Derived(lambda f: min(1.0, 105_000 / f["total_timesteps"]),
                               "105,000 / total_timesteps (ε reaches 0.1 after 5,000 + 10⁵ steps)"),
    loss="huber", huber_delta=1.0, learning_rate=2.5e-4, anneal_lr=False, max_grad_norm=None, double_q=False,
    torso="cnn", hidden_sizes=(128,), activation="relu", orthogonal_init=False)

# Brax's PPO sweep (google/brax @ 0b96d05, datasets/ppo_10_million_steps.tar.gz: 288 configurations × one seed per
# env at 2048 envs, lr 3e-4, entropy 1e-3, episode length 1000, normalised observations): its best configuration
# per env at 10⁷ steps -> (reward_scaling, discounting, unroll_length, batch_size, num_minibatches, num_update_epochs)
BRAX_PPO_SWEEP_BEST: dict[str, tuple[float, float, int, int, int, int]] = {
    "ant": (1, 0.99, 5, 512, 8, 4),
    "halfcheetah": (1, 0.99, 5, 512, 32, 8),
}


def brax_published(env_id: str) -> dict[str, Any]:
    """Brax's own PPO configuration at its own scale (``preset brax``): the 10⁷-step sweep's best configuration
    for ant and halfcheetah (``BRAX_PPO_SWEEP_BEST``, the configurations behind the published returns), the
    notebook's ``train_fn`` table (``BRAX_PPO_PUBLISHED``) for the other envs; the settings of
    ``brax.training.agents.ppo.train`` as in ``brax_defaults``, without the CPU scaling."""
    name, _ = parse_id(env_id)
    d: dict[str, Any] = dict(anneal_lr=False, max_grad_norm=None, normalize_observations=True,
                             action_squash="tanh", activation="silu", hidden_sizes=(128, 128), clip_eps=0.3,
                             gae_lambda=0.95, clip_value_loss=False, normalize_advantages=True)
    if name in BRAX_PPO_SWEEP_BEST:
        r_scale, gamma, unroll, batch, n_mb, epochs = BRAX_PPO_SWEEP_BEST[name]
        n_envs, steps, lr, ent = 2048, 10_000_000, 3e-4, 1e-3
    else:
        steps, r_scale, unroll, n_mb, epochs, gamma, lr, ent, n_envs, batch = \
            BRAX_PPO_PUBLISHED.get(name, BRAX_PPO_PUBLISHED["ant"])
    d.update(num_envs=n_envs, num_steps=unroll * batch * n_mb // n_envs, total_timesteps=steps, gamma=gamma,
             learning_rate=lr, ent_coef=ent, reward_scale=float(r_scale), num_minibatches=n_mb, num_epochs=epochs)
    return d


_GB_METRIC = "mean return of 164 test episodes sampled from the policy, one run (the ppo.pkl training log)"
_GB = {"Breakout-MinAtar": (16.6, 22.0, 22.9), "SpaceInvaders-MinAtar": (50.4, 99.9, 131.6),
       "Asterix-MinAtar": (1.8, 8.1, 15.0), "Freeway-MinAtar": (29.0, 52.1, 58.8)}
_CLEANRL_METRIC = "training-episode return at the end of the run, mean ± std over seeds (CleanRL's benchmark)"
_REJAX_METRIC = ("IQM over seeds of the final evaluation (128 episodes per seed, rejax's own act function), "
                 "rejax 0.1.3 run here with ../shared/peers/run_rejax.py (issue 28)")

PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("gymnax-blines", "PPO on MinAtar as gymnax-blines trains it (the gymnax author's baselines).", (
        PresetEntry(
            "ppo", MINATAR_GAMES, GYMNAX_BLINES_MINATAR_PPO,
            "github.com/RobertTLange/gymnax-blines @ 15b76af: agents/<game>-MinAtar/ppo.yaml, utils/ppo.py, "
            "utils/models.py",
            tuple(Published(env, steps, v, None, _GB_METRIC)
                  for env, vals in _GB.items() for steps, v in zip((960_000, 4_800_000, 9_920_000), vals, strict=True)),
            "Initialisation: theirs is flax's default (LeCun-normal kernels) with biases drawn from U[0, 0.05); here "
            "LeCun-normal kernels and zero biases (orthogonal_init false). Their 5% lr warm-up is a no-op (lr_begin "
            "= lr_end = 5e-4): the lr is constant. Their minibatch permutations repeat every iteration (one key is "
            "reused); here a fresh key each time. Their step returns done = terminated or truncated; here a time "
            "limit bootstraps. Their test return samples actions from the policy (164 episodes); ours is greedy "
            "(eval_episodes, fixed keys), so the training-episode return is the closer metric. One seed. Our MinAtar "
            "default for PPO differs (CNN torso, 64 envs, 1 × 256, orthogonal init, γ 0.99, lr 2.5e-4 annealed): "
            "the purejaxrl-style defaults every algorithm shares, kept so that one flag set compares algorithms."),)),
    Preset("cleanrl", "CleanRL's single-file PPO and DQN on classic control, at its benchmark budget (5·10⁵).", (
        PresetEntry(
            "ppo", CLASSIC_DISCRETE, CLEANRL_PPO,
            "github.com/vwxyzjn/cleanrl @ 2f4172e: cleanrl/ppo.py; results: docs/rl-algorithms/ppo.md",
            (Published("CartPole-v1", 500_000, 492.40, 13.05, _CLEANRL_METRIC),
             Published("Acrobot-v1", 500_000, -89.93, 6.34, _CLEANRL_METRIC),
             Published("MountainCar-v0", 500_000, -200.00, 0.00, _CLEANRL_METRIC)),
            "Equal to PPOConfig's defaults (purejaxrl's ppo.py has the same numbers). CleanRL ends the GAE trace at "
            "a time limit without bootstrapping (done = terminated or truncated); here V(final obs) bootstraps."),
        PresetEntry(
            "dqn", CLASSIC_DISCRETE, CLEANRL_DQN,
            "github.com/vwxyzjn/cleanrl @ 020cf0e: cleanrl/dqn.py; results: docs/rl-algorithms/dqn.md",
            (Published("CartPole-v1", 500_000, 488.69, 16.11, _CLEANRL_METRIC),
             Published("Acrobot-v1", 500_000, -91.54, 7.20, _CLEANRL_METRIC),
             Published("MountainCar-v0", 500_000, -194.95, 8.48, _CLEANRL_METRIC)),
            "Our default (purejaxrl's dqn.py) acts in 10 envs × 1 step per gradient step; CleanRL in 1 env, a "
            "gradient step every 10 steps: the same ratio. Its MSE is δ², our squared loss ½δ² (Adam makes the "
            "factor nearly irrelevant). PyTorch's default initialisation (uniform) vs flax's LeCun-normal."),)),
    Preset("purejaxrl", "purejaxrl's ppo.py and dqn.py on classic control (the speed peer; PPOConfig's and DQNConfig's "
                        "defaults).", (
        PresetEntry(
            "ppo", CLASSIC_DISCRETE, CLEANRL_PPO,
            "github.com/luchris429/purejaxrl @ 31756b1: purejaxrl/ppo.py (copy in ../shared/peers/purejaxrl)",
            (),
            "purejaxrl publishes curves, no table: ../shared/peers/run_purejaxrl.py runs it here. It treats a time "
            "limit as a termination; here V(final obs) bootstraps."),
        PresetEntry(
            "dqn", CLASSIC_DISCRETE, PUREJAXRL_DQN,
            "github.com/luchris429/purejaxrl @ 31756b1: purejaxrl/dqn.py (copy in ../shared/peers/purejaxrl)",
            (),
            "purejaxrl publishes curves, no table: ../shared/peers/run_purejaxrl.py runs it here. It treats a time "
            "limit as a termination; here max_a Q⁻(final obs) bootstraps."),)),
    Preset("rejax", "rejax's tuned configurations (Liesen et al. 2024) for PPO, SAC, TD3 and PQN.", (
        PresetEntry(
            "ppo", ("Pendulum-v1",), REJAX_PPO_PENDULUM,
            "github.com/keraJLi/rejax @ 4954fbf: configs/gymnax/pendulum.yaml (ppo); rejax/algos/networks.py",
            (Published("Pendulum-v1", 1_000_000, -176.0, None, _REJAX_METRIC, measured=True),),
            "rejax trains 1.5·10⁵ steps; our Pendulum default trains 10⁶ with the same settings (and orthogonal "
            "initialisation, (64, 64)), where the learning curve has flattened. rejax's Gaussian policy clips its "
            "actions to the bounds, as ours (action_squash clip)."),
        PresetEntry(
            "ppo", ("CartPole-v1", "Acrobot-v1"),
            lambda env: {**REJAX_PPO_CLASSIC, "normalize_observations": env == "Acrobot-v1"},
            "github.com/keraJLi/rejax @ 4954fbf: configs/gymnax/{cartpole,acrobot}.yaml (ppo)",
            (),
            "No published number: rejax publishes its configs and curves. Our default is purejaxrl's (4 × 128, "
            "lr 2.5e-4 annealed, 5·10⁵ steps)."),
        PresetEntry(
            "sac", ("Pendulum-v1",), REJAX_SAC_PENDULUM,
            "github.com/keraJLi/rejax @ 4954fbf: configs/gymnax/pendulum.yaml (sac); rejax/algos/sac.py",
            (Published("Pendulum-v1", 10_000, -151.0, None, "4 seeds: −154, −149, −146, −153; " + _REJAX_METRIC,
                       measured=True),),
            "Equal to SACConfig's Pendulum-v1 defaults."),
        PresetEntry(
            "td3", ("Pendulum-v1",), REJAX_TD3_PENDULUM,
            "github.com/keraJLi/rejax @ 4954fbf: configs/gymnax/pendulum.yaml (td3); rejax/algos/td3.py",
            (),
            "Equal to TD3Config's Pendulum-v1 defaults; rejax's noises (0.3, 0.2, clip 0.5, in action units) are "
            "halved here because ours are in units of the action half-range (Pendulum: 2)."),
        PresetEntry(
            "pqn", ("CartPole-v1", "Acrobot-v1"), REJAX_PQN_CLASSIC,
            "github.com/keraJLi/rejax @ 4954fbf: configs/gymnax/{cartpole,acrobot}.yaml (pqn); rejax/algos/pqn.py",
            (Published("CartPole-v1", 524_288, 483.0, None, "4 seeds: 466, 327, 500, 500; " + _REJAX_METRIC,
                       measured=True),),
            "Equal to PQNConfig's defaults."),)),
    Preset("purejaxql", "PQN on MinAtar as its authors' purejaxql trains it.", (
        PresetEntry(
            "pqn", MINATAR_GAMES, PUREJAXQL_PQN_MINATAR,
            "github.com/mttga/purejaxql @ 0cd95ed: purejaxql/config/alg/pqn_minatar.yaml, purejaxql/pqn_minatar.py",
            (),
            "purejaxql publishes curves (Gallici et al. 2025), no MinAtar table. Theirs: RAdam, He-normal "
            "initialisation, a VALID convolution; here Adam, LeCun-normal, the shared SAME-padded CNN torso. Their "
            "TOTAL_TIMESTEPS_REAL keeps the ε and lr schedules at 10⁷ steps when a run is shorter; here they scale "
            "with total_timesteps. Equal to PQNConfig's MinAtar defaults."),)),
    Preset("minatar", "DQN on MinAtar as the MinAtar paper trains it (Young & Tian 2019).", (
        PresetEntry(
            "dqn", (*MINATAR_GAMES, "Seaquest-MinAtar"), MINATAR_PAPER_DQN,
            "github.com/kenjyoung/MinAtar @ 3f078e5: examples/dqn.py; arXiv:1903.03176",
            (),
            "The paper publishes learning curves over 30 runs (README img/results.gif), no table. Theirs: centred "
            "RMSProp (momentum 0.95, ε 0.01), a VALID 3×3 convolution (8×8×16 features), PyTorch's initialisation, "
            "uniform random actions for the first 5,000 steps; here Adam, a SAME convolution (10×10×16) and ε "
            "decaying from the first step. Our MinAtar DQN default (10 envs, a gradient step of 128 per 10 env "
            "steps, ε over half the run) does 1/10 of the gradient steps: 2.5× less compute per env step on a CPU."),)),
    Preset("brax", "Brax's PPO at Brax's own scale (2048-4096 envs): accelerator budgets.", (
        PresetEntry(
            "ppo", ("brax:*",), brax_published,
            "github.com/google/brax @ 0b96d05: datasets/ppo_10_million_steps.tar.gz (ant, halfcheetah), "
            "notebooks/training.ipynb (the rest)",
            (Published("brax:ant", 9_830_400, 5418.8, None, "best of a 288-configuration sweep, one seed each "
                       "(Brax 2021's engine)"),
             Published("brax:halfcheetah", 9_830_400, 4426.5, None, "best of a 288-configuration sweep, one seed "
                       "each (Brax 2021's engine)")),
            "Brax collects each env's steps as several short unrolls (unroll_length 5); here one unroll of the same "
            "length per env. One torso width (128, 128) for policy and value (Brax: (32,)×4 and (256,)×5). The "
            "published returns are a sweep's best single-seed runs on Brax's 2021 engine (here: brax 0.14, spring "
            "backend), an optimistic reference. Our brax: defaults scale this to 64 envs and 1/10 of the budget "
            "for a CPU."),)),
)}


def preset_names() -> list[str]:
    return list(PRESETS)


def presets_for(algo: str, env_id: str) -> list[str]:
    """The presets with an entry for ``algo`` on ``env_id``."""
    return [n for n, p in PRESETS.items() if any(e.algo == algo and e.matches(env_id) for e in p.entries)]


def preset_entry(name: str, algo: str, env_id: str) -> PresetEntry:
    """Preset ``name``'s entry for (``algo``, ``env_id``); a ``ValueError`` naming the preset, the algorithm, the env
    and the presets that do apply when there is none."""
    applicable = presets_for(algo, env_id)
    these = f"presets for {algo} on {env_id}: {', '.join(applicable)}" if applicable else \
        f"no preset covers {algo} on {env_id}"
    if name not in PRESETS:
        close = difflib.get_close_matches(name, PRESETS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown preset {name!r}{hint}; presets: {', '.join(PRESETS)}; {these}")
    for e in PRESETS[name].entries:
        if e.algo == algo and e.matches(env_id):
            return e
    raise ValueError(f"preset {name!r} has no entry for {algo} on {env_id} (it covers {PRESETS[name].covers()}); "
                     f"{these}")


def preset_overrides(name: str, config_class: type[BaseConfig], env_id: str, env_defaults: dict[str, Any],
                     overrides: dict[str, Any]) -> dict[str, Any]:
    """The fields preset ``name`` sets for ``config_class`` on ``env_id``, ``Derived`` values computed from the class
    defaults, ``env_defaults``, the preset's fixed values and the caller's ``overrides`` (which ``default_config``
    applies on top; a derived field the caller sets is left to the caller)."""
    entry = preset_entry(name, config_class.algo, env_id)
    values = entry.values(env_id)
    fixed = {k: v for k, v in values.items() if not isinstance(v, Derived)}
    defaults = {f.name: f.default for f in dataclasses.fields(config_class) if f.default is not dataclasses.MISSING}
    resolved = {**defaults, **env_defaults, **fixed, **overrides}
    out = dict(fixed)
    for k, v in values.items():
        if isinstance(v, Derived) and k not in overrides:
            out[k] = v.fn(resolved)
    return out
