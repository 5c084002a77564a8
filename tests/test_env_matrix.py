"""Every algorithm × torso on every gymnax env the adapter accepts: one tiny run or a clear refusal.

Each case either trains (one or two iterations of a tiny budget) with finite learning metrics and
finite final parameters, or is refused by ``default_config`` with a ``ConfigError`` that names
the field and the rule: DQN on a continuous action space (``env_id``: "needs a discrete action
space"; PPO and V-trace train there with a Gaussian policy), ``torso=cnn`` on observations that are
not ``[H, W, C]`` or ``torso=gru`` on ones that are not flat, or under DQN (``torso``), or an env gymnax cannot
build here (``env_id``: MNISTBandit-bsuite downloads MNIST when built, so offline it is refused).
``Probe-*`` ids are covered by test_learning.py and test_envs.py.

Cost: each trained case is one compile (~7–16 s on a shared 2-core CPU); the whole matrix is
79 of them (19 min). The default run trains 10 (``SUBSET``) that still cover every algorithm ×
torso on image observations, the other observation ranks (0 → one-hot, 2), and every
continuous env under DQN's refusal, V-trace on Pendulum with the MLP and the GRU (PPO's
continuous and GRU paths: tests/test_continuous.py);
``JAXRL_FULL=1 pytest -m slow tests/test_env_matrix.py`` runs the
rest. ``auto`` builds exactly the network of the torso it resolves to (``torso_kind``), so a
case with ``auto`` checks the resolution and the config, and shares the run of that torso.
"""
import functools
import os

import jax
import numpy as np
import pytest
from conftest import train_seeds

from jaxrl_policy import default_config
from jaxrl_policy.core.config import ConfigError
from jaxrl_policy.core.envs import env_spec, registered_env_ids
from jaxrl_policy.core.networks import torso_kind
from jaxrl_policy.core.types import DIAGNOSTICS

FULL = os.environ.get("JAXRL_FULL") == "1"
ENV_IDS = [e for e in registered_env_ids() if not e.startswith("Probe-")]
ALGOS = ("ppo", "dqn", "vtrace")
TORSOS = ("mlp", "cnn", "auto", "gru")
# One iteration (two for DQN: the first fills the buffer up to learning_starts), a few gradient steps.
TINY = {
    "ppo": dict(num_envs=4, num_steps=8, num_minibatches=2, num_epochs=1, total_timesteps=32),  # gru: 2 | 4 envs
    "vtrace": dict(num_envs=4, num_steps=8, num_minibatches=2, replay_ratio=1, total_timesteps=32),
    "dqn": dict(num_envs=4, num_steps=4, buffer_size=32, batch_size=8, replay_ratio=0.25, learning_starts=16,
                total_timesteps=32),
}
CONTINUOUS = {"Pendulum-v1", "MountainCarContinuous-v0", "PointRobot-misc", "Reacher-misc", "Swimmer-misc"}
IMAGES = {"Asterix-MinAtar", "Breakout-MinAtar", "Freeway-MinAtar", "Seaquest-MinAtar", "SpaceInvaders-MinAtar",
          "Pong-misc"}  # [H, W, C] observations: the only ones a cnn torso accepts
NEEDS_DOWNLOAD = {"MNISTBandit-bsuite"}
# The default run, env → the algorithms trained on it (refusals are cheap: every algorithm × torso
# of these envs is checked). MinAtar (rank 3: the MLP's flattening and the CNN) under all three
# algorithms, whose networks see [B, O...] (DQN, PPO) and [T, M, O...] (V-trace); bsuite Catch
# (rank 2) under V-trace; FrozenLake (a discrete observation, one-hot encoded by the adapter) under
# DQN; CartPole for its refusal of cnn only (rank 1: every algorithm trains on CartPole and the
# probes in test_learning.py); Pendulum (continuous actions) under PPO and V-trace with every
# torso; every other continuous env for DQN's refusal.
SUBSET = {"Breakout-MinAtar": ALGOS, "Catch-bsuite": ("vtrace",), "FrozenLake-misc": ("dqn",),
          "CartPole-v1": (), **{e: () for e in sorted(CONTINUOUS)}, "Pendulum-v1": ("vtrace",)}


def config(algo, env_id, torso):
    return default_config(algo, env_id, torso=torso, num_chunks=1, **TINY[algo])


@functools.cache
def trained(algo, env_id, torso):
    """(final state, metrics as numpy) of one tiny run; cached, so ``auto`` shares its torso's run."""
    _, state, metrics = train_seeds(algo, env_id, 1, torso=torso, num_chunks=1, **TINY[algo])
    return state, metrics


def refusal(algo, env_id, torso):
    """``(field, rule substring)`` the config must be refused with, or None if it must train."""
    if algo == "dqn" and env_id in CONTINUOUS:
        return "env_id", "needs a discrete action space"
    if torso == "cnn" and env_id not in IMAGES:
        return "torso", "cnn needs [H, W, C] observations"
    if torso == "gru" and algo == "dqn":
        return "torso", "has no recurrent policy"
    if torso == "gru" and env_id not in NEEDS_DOWNLOAD and len(env_spec(env_id).obs_shape) != 1:
        return "torso", "gru needs flat observations"
    return None


def check_case(algo, env_id, torso):
    expected = refusal(algo, env_id, torso)
    if env_id in NEEDS_DOWNLOAD:
        try:
            config(algo, env_id, torso)
        except ConfigError as e:  # offline: gymnax cannot fetch MNIST
            assert ("env_id", env_id) in [(f, v) for f, v, _ in e.problems], e
            assert "gymnax could not build this environment" in str(e)
            return
    if expected is not None:
        with pytest.raises(ConfigError) as e:
            config(algo, env_id, torso)
        field, rule = expected
        assert any(f == field and rule in r for f, _, r in e.value.problems), str(e.value)
        return
    cfg = config(algo, env_id, torso)  # accepted
    spec = env_spec(env_id)
    resolved = torso_kind(spec.obs_shape, cfg.torso)
    assert resolved == (torso if torso in ("cnn", "gru") else "cnn" if torso == "auto" and env_id in IMAGES
                        else "mlp")
    state, m = trained(algo, env_id, resolved)
    assert m["grad_steps"][0, -1] > 0, m["grad_steps"]  # the last iteration learned
    # losses, entropies, ε … of that iteration; episode statistics (NaN when no episode ended) and
    # the loop's diagnostics (NaN for what an algorithm does not report) are left out
    learned = {k: v[:, -1] for k, v in m.items() if k not in DIAGNOSTICS and k not in ("episode_return",
                                                                                          "episode_length")}
    bad = [k for k, v in learned.items() if not np.all(np.isfinite(v))]
    assert not bad, {k: learned[k] for k in bad}
    leaves = [x for x in jax.tree.leaves(state) if np.issubdtype(np.asarray(x).dtype, np.floating)]
    assert all(np.all(np.isfinite(np.asarray(x))) for x in leaves)


def in_subset(algo, env_id, torso):
    return env_id in SUBSET and (algo in SUBSET[env_id] or refusal(algo, env_id, torso) is not None)


ALL_CASES = [(a, e, t) for e in ENV_IDS for a in ALGOS for t in TORSOS]


def test_every_env_is_classified():
    """Every registered gymnax id is in this file's picture: a new id fails here until it is placed."""
    known = CONTINUOUS | IMAGES | NEEDS_DOWNLOAD
    for env_id in ENV_IDS:
        if env_id in NEEDS_DOWNLOAD:
            continue
        spec = env_spec(env_id)
        assert (spec.num_actions is None) == (env_id in CONTINUOUS), env_id
        assert (len(spec.obs_shape) == 3) == (env_id in IMAGES), (env_id, spec.obs_shape)
    assert set(SUBSET) - set(ENV_IDS) == set() and known - set(ENV_IDS) == set()


def test_frozen_lake_observation_is_one_hot():
    """FrozenLake's observation is a cell index (shape ()): the adapter one-hot encodes it."""
    assert env_spec("FrozenLake-misc").obs_shape == (16,)


@pytest.mark.parametrize("algo,env_id,torso", [c for c in ALL_CASES if in_subset(*c)])
def test_env_matrix_subset(algo, env_id, torso):
    check_case(algo, env_id, torso)


@pytest.mark.slow
@pytest.mark.skipif(not FULL, reason="the full env matrix runs with JAXRL_FULL=1 (the default run keeps a subset)")
@pytest.mark.parametrize("algo,env_id,torso", [c for c in ALL_CASES if not in_subset(*c)])
def test_env_matrix_full(algo, env_id, torso):
    check_case(algo, env_id, torso)
