"""The one loop: all algorithms through make_train, jit(vmap), determinism, no recompiles, chunks."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import FULL_ONLY, train_seeds

from jaxrl_policy import build_loop, default_config, make_train, seed_keys
from jaxrl_policy.algorithms.dqn import make_dqn
from jaxrl_policy.algorithms.ppo import make_ppo
from jaxrl_policy.algorithms.vtrace import make_vtrace
from jaxrl_policy.core.envs import env_spec
from jaxrl_policy.core.types import DIAGNOSTICS, Algorithm, Storage

SMALL = {
    "ppo": dict(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 6, num_minibatches=2, num_epochs=2),
    "dqn": dict(num_envs=4, num_steps=2, total_timesteps=4 * 2 * 30, learning_starts=64, buffer_size=128,
                batch_size=16, replay_ratio=0.25, target_update_interval=32),
    "vtrace": dict(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 6, policy_lag=2, replay_capacity=3,
                   replay_ratio=2, num_minibatches=2),
    "pqn": dict(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 6, num_minibatches=2, num_epochs=2),
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


@pytest.mark.parametrize("algo,num_chunks", [("ppo", 3), pytest.param("vtrace", 4, marks=FULL_ONLY),
                                             pytest.param("dqn", 7, marks=FULL_ONLY)])
def test_chunks_equal_one_scan(algo, num_chunks):
    """Host-visible chunks (the CLI path) reproduce make_train, including a partial last chunk.

    Counts match exactly; floats to rounding amplified by training (two XLA programs; see below)."""
    cfg = default_config(algo, "CartPole-v1", num_chunks=num_chunks, **SMALL[algo])
    keys = seed_keys(0, 2)
    whole = jax.tree.map(np.asarray, jax.jit(jax.vmap(make_train(cfg)))(keys)[1])
    loop = build_loop(cfg)
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
            # Depends on the CPU beyond rounding: the same iteration compiled inside a 6-iteration scan and inside
            # 2-iteration chunks, which XLA may fuse differently (per ISA and version). The first gradient step then
            # differs by float32 reduction order at most (2γ_n·Σ|terms|, ~1e-7 of these means of O(1) terms); every
            # later step runs on parameters already that far apart, and training amplifies it, so no per-op bound
            # holds. Measured on Zen 4: PPO identical in iteration 0; later metrics ≤ 3.4e-5 apart relative,
            # parameters ≤ 1.5e-4 after 30 DQN iterations; pg_loss and policy_kl, small differences of O(1) terms,
            # ≤ 1e-6 absolute. rtol 1e-4 (3× the largest) and atol 1e-5 for the cancelling ones.
            np.testing.assert_allclose(whole[k], chunked[k], rtol=1e-4, atol=1e-5, err_msg=k)


def test_algorithms_are_factories_of_the_same_bundle():
    spec = env_spec("CartPole-v1")
    for name, factory in (("ppo", make_ppo), ("dqn", make_dqn), ("vtrace", make_vtrace)):
        algo = factory(default_config(name, "CartPole-v1"), spec)
        assert type(algo) is Algorithm and type(algo.storage) is Storage
        assert all(callable(f) for f in (algo.init, algo.actor, algo.act, algo.learn, *algo.storage))


def test_loop_is_blind_to_the_algorithm_name():
    """The loop's behaviour depends on the bundle, never on ``cfg.algo``: PPO's factory under another
    name trains bit-identically, and a new algorithm registered at runtime runs through the same loop."""
    import dataclasses
    from typing import ClassVar

    from jaxrl_policy.algorithms.ppo import PPOConfig
    from jaxrl_policy.running.build import register_algorithm

    @dataclasses.dataclass(frozen=True)
    class Renamed(PPOConfig):
        algo: ClassVar[str] = "renamed-ppo"

    register_algorithm(Renamed, make_ppo)
    _, s1, m1 = train_seeds("ppo", "CartPole-v1", 2, **SMALL["ppo"])
    _, s2, m2 = train_seeds("renamed-ppo", "CartPole-v1", 2, **SMALL["ppo"])
    jax.tree.map(np.testing.assert_array_equal, (s1.agent.params, m1), (s2.agent.params, m2))

    # a toy algorithm the loop has never heard of: uniform random actions, learning counts its calls
    from jaxrl_policy.core.config import BaseConfig
    from jaxrl_policy.core.storage import make_ring

    @dataclasses.dataclass(frozen=True)
    class RandomConfig(BaseConfig):
        algo: ClassVar[str] = "random-walk"

    def make_random(cfg, spec):
        def act(actor, obs, carry, key, env_step, hp):
            return jax.random.randint(key, obs.shape[:1], 0, spec.num_actions), {}, carry

        def learn(agent, batch, key, env_step, hp):
            return agent + 1, {"loss": batch.reward.sum(), "grad_steps": (agent + 1).astype(jnp.float32)}

        return Algorithm(init=lambda key: jnp.zeros((), jnp.int32), actor=lambda agent, hp: agent, act=act,
                         learn=learn, storage=make_ring(1, "latest"))

    register_algorithm(RandomConfig, make_random)
    cfg, state, m = train_seeds("random-walk", "CartPole-v1", 2, num_envs=4, num_steps=8, total_timesteps=4 * 8 * 5)
    np.testing.assert_array_equal(state.agent, [5, 5])  # learned once per iteration
    np.testing.assert_array_equal(m["loss"], 32.0)  # CartPole pays 1 per step: 4 envs × 8 steps
    assert np.isnan(m["ratio_mean"]).all()  # diagnostics it does not report stay NaN
    with pytest.raises(ValueError, match="already registered"):
        register_algorithm(RandomConfig, make_ppo)


def test_seed_i_of_a_multi_seed_run_is_seed_i():
    """Seed keys are PRNGKey(seed + i): a 2-seed run starting at 5 contains the 1-seed run with seed 6."""
    np.testing.assert_array_equal(seed_keys(5, 2)[1], seed_keys(6, 1)[0])
