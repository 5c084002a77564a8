"""Shared helpers; one JAX compilation cache per test session, and cheap LLVM code generation.

Many tests compile the same tiny programs (a config trained by several tests, a subprocess that
repeats the parent's run, PPO under another name): with JAX's persistent compilation cache in a
fresh folder per session, each program compiles once per session (test_loop.py alone: 156 s →
96 s on the 2-core CI machine). The folder is made before JAX is imported here, so xdist's
workers and the tests' subprocesses inherit it; a cache the caller set (``JAX_COMPILATION_CACHE_DIR``)
is kept. A cache hit runs the same executable, so bit-identity checks keep their meaning (a hit
means the HLO was identical, which is what "same program" claims).
"""
import atexit
import os
import shutil
import tempfile

if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="jaxrl-test-jit-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)  # only the process that made it

# The CLI caches whole compiled programs on disk keyed by the package's source (running/programs.py); tests
# monkeypatch package code in-process, where a source-keyed cache could serve a program built without the
# patch. Off for the test session (tests/test_program_cache.py turns it on in its own subprocesses); JAX's
# own cache above, keyed by the lowered program, stays on.
os.environ.setdefault("JAXRL_POLICY_CACHE", "off")

# Tests compile many small programs and run each briefly, so LLVM's optimisation of the generated
# code costs more than it saves: level 0 (XLA's HLO passes still run, so the programs compute the
# same things) takes test_loop.py from 107 s to 72 s. Benchmarks and users keep XLA's default; set
# the flag yourself (e.g. --xla_backend_optimization_level=2) to test at another level.
if "--xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

import jax  # noqa: E402  (after the cache folder and flags are in the environment)

# in case a plugin imported jax before this file: the environment is read when jax is imported
jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from jaxrl_policy import default_config, make_train, seed_keys  # noqa: E402

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
