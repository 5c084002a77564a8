"""The one loop: all algorithms through make_train, jit(vmap), determinism, no recompiles, chunks."""
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import train_seeds
from jaxrl_policy import default_config, make_loop, make_train, seed_keys
from jaxrl_policy.algorithms import FACTORIES
from jaxrl_policy.envs.adapter import env_spec
from jaxrl_policy.types import DIAGNOSTICS, Algorithm, Storage

SMALL = {
    "ppo": dict(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 6, num_minibatches=2, num_epochs=2),
    "dqn": dict(num_envs=4, num_steps=2, total_timesteps=4 * 2 * 30, learning_starts=64, buffer_size=128,
                batch_size=16, replay_ratio=0.25, target_update_interval=32),
    "vtrace": dict(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 6, policy_lag=2, replay_capacity=3,
                   replay_ratio=2, num_minibatches=2),
}


@pytest.mark.parametrize("algo", list(SMALL))
def test_jit_vmap_metrics_contract(algo):
    cfg, state, m = train_seeds(algo, "CartPole-v1", 2, **SMALL[algo])
    n = cfg.num_iterations
    for k in ("env_steps", "episode_return", "episode_length", "episodes", "loss", "grad_norm", *DIAGNOSTICS):
        assert k in m, k
        assert m[k].shape == (2, n), (k, m[k].shape)
    np.testing.assert_array_equal(m["env_steps"][0], cfg.steps_per_iteration * np.arange(1, n + 1))
    # mean return where episodes ended, NaN where none did
    assert np.all(np.isnan(m["episode_return"]) == (m["episodes"] == 0))
    assert np.nanmin(m["episode_return"]) >= 1
    assert m["grad_steps"][0, -1] > 0
    assert np.all(np.isfinite(m["loss"][m["grad_steps"] > 0]))


@pytest.mark.parametrize("algo", list(SMALL))
def test_bit_identical_and_no_recompile(algo):
    cfg = default_config(algo, "CartPole-v1", **SMALL[algo])
    f = jax.jit(jax.vmap(make_train(cfg)))
    keys = seed_keys(3, 2)
    a = jax.tree.map(np.asarray, f(keys))
    b = jax.tree.map(np.asarray, f(keys))
    assert f._cache_size() == 1  # second call reused the compiled program
    jax.tree.map(np.testing.assert_array_equal, a, b)
    # different seeds give different runs
    assert not np.array_equal(a[1]["episode_return"][0], a[1]["episode_return"][1], equal_nan=True)


@pytest.mark.parametrize("algo,num_chunks", [("ppo", 3), ("vtrace", 4), ("dqn", 7)])
def test_chunks_equal_one_scan(algo, num_chunks):
    """Host-visible chunks (the CLI path) reproduce make_train, including a partial last chunk.

    Counts match exactly; floats to rounding (two XLA programs fuse differently, ~1 ulp)."""
    cfg = default_config(algo, "CartPole-v1", num_chunks=num_chunks, **SMALL[algo])
    keys = seed_keys(0, 2)
    whole = jax.tree.map(np.asarray, jax.jit(jax.vmap(make_train(cfg)))(keys)[1])
    loop = make_loop(cfg)
    assert loop.num_chunks * loop.iterations_per_chunk >= cfg.num_iterations
    state = jax.jit(jax.vmap(loop.init))(keys)
    chunk = jax.jit(jax.vmap(loop.run_chunk, in_axes=(0, None)))
    parts = []
    for c in range(loop.num_chunks):
        state, m = chunk(state, jnp.int32(c))
        parts.append(jax.tree.map(np.asarray, m))
    chunked = {k: np.concatenate([p[k] for p in parts], 1)[:, :cfg.num_iterations] for k in whole}
    for k in whole:
        if np.issubdtype(whole[k].dtype, np.integer):
            np.testing.assert_array_equal(whole[k], chunked[k], err_msg=k)
        else:
            np.testing.assert_allclose(whole[k], chunked[k], rtol=1e-4, atol=1e-5, err_msg=k)


def test_algorithms_are_factories_of_the_same_bundle():
    spec = env_spec("CartPole-v1")
    for name, factory in FACTORIES.items():
        algo = factory(default_config(name, "CartPole-v1"), spec)
        assert type(algo) is Algorithm and type(algo.storage) is Storage
        assert all(callable(f) for f in (*algo[:4], *algo.storage))


def test_loop_never_branches_on_algorithm_name():
    import jaxrl_policy.loop as loop_mod
    src = inspect.getsource(loop_mod).lower()
    for name in ("ppo", "dqn", "vtrace", "impala", "cfg.algo", "isinstance"):
        assert name not in src, name


def test_seed_i_of_a_multi_seed_run_is_seed_i():
    """Seed keys are PRNGKey(seed + i): a 2-seed run starting at 5 contains the 1-seed run with seed 6."""
    np.testing.assert_array_equal(seed_keys(5, 2)[1], seed_keys(6, 1)[0])
