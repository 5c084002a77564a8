"""Shared helpers."""
import os

import jax
import numpy as np
import pytest

from jaxrl_policy import default_config, make_train, seed_keys

FULL = os.environ.get("JAXRL_FULL") == "1"
# a parametrized case that repeats a cheaper sibling's check for another algorithm: CI (25 min on 2
# cores) runs the sibling, ``JAXRL_FULL=1 python -m pytest -m slow`` runs every case
FULL_ONLY = (pytest.mark.slow, pytest.mark.skipif(not FULL, reason="runs with JAXRL_FULL=1 (CI keeps one algorithm)"))


def train_seeds(algo, env_id, seeds=1, **overrides):
    """Run ``jit(vmap(make_train(cfg)))`` over ``seeds`` seeds; return (cfg, final_state, metrics as numpy)."""
    cfg = default_config(algo, env_id, **overrides)
    state, metrics = jax.jit(jax.vmap(make_train(cfg)))(seed_keys(cfg.seed, seeds))
    return cfg, state, jax.tree.map(np.asarray, metrics)


def final_return(metrics, frac=0.1):
    """Per-seed episode-weighted mean return over the last ``frac`` of iterations."""
    r, n = metrics["episode_return"], metrics["episodes"]
    k = max(1, int(r.shape[1] * frac))
    r, n = np.nan_to_num(r[:, -k:]), n[:, -k:]
    return (r * n).sum(1) / np.maximum(n.sum(1), 1)


@pytest.fixture
def train():
    return train_seeds
