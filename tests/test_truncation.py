"""Time-limit truncation bootstraps from V(final obs); termination does not. For every algorithm.

Probe-TimeLimit-v0: reward 1 every step, never terminates, cut after 10 steps, constant obs.
With γ = 0.9 the true value is 1 / (1 − γ) = 10. Treating the cut as a termination would
teach V ≈ mean over t of (1 − γ^(10−t)) / (1 − γ) ≈ 4.1, so the test fails if bootstrapping
at truncation is removed. Probe-Terminate-v0 (terminates after 10 steps, time left in obs) checks
the other side: V(start) = (1 − γ^10) / (1 − γ) = 6.51, V(5 steps left) = 4.10; bootstrapping
through the termination would push both towards 10.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import train_seeds

from jaxrl_policy.core.envs import env_spec
from jaxrl_policy.core.networks import ActorCritic, make_actor_critic, make_q_network

COMMON = dict(total_timesteps=20_000, learning_rate=3e-3, gamma=0.9, anneal_lr=False)
ALGOS = {
    "ppo": dict(num_envs=4, num_steps=32, **COMMON),
    "vtrace": dict(num_envs=4, num_steps=32, **COMMON),
    "dqn": dict(num_envs=4, num_steps=1, learning_starts=500, replay_ratio=0.25, buffer_size=2000, batch_size=64,
                target_update_interval=100, **COMMON),
}


def learned_values(algo, env_id, obs):
    cfg, state, _ = train_seeds(algo, env_id, 1, **ALGOS[algo])
    params = jax.tree.map(lambda x: x[0], state.agent.params)
    obs = jnp.asarray(obs, jnp.float32)[:, None]
    if algo == "dqn":
        return np.asarray(make_q_network(cfg, env_spec(env_id)).apply(params, obs)[:, 0])
    return np.asarray(make_actor_critic(cfg, env_spec(env_id)).apply(params, obs, method=ActorCritic.value))


@pytest.mark.parametrize("algo", list(ALGOS))
def test_truncation_bootstraps(algo):
    v = learned_values(algo, "Probe-TimeLimit-v0", [0.0])
    assert abs(v[0] - 10.0) < 1.0, v


@pytest.mark.parametrize("algo", list(ALGOS))
def test_termination_does_not_bootstrap(algo):
    v = learned_values(algo, "Probe-Terminate-v0", [1.0, 0.5])
    np.testing.assert_allclose(v, [6.513, 4.095], atol=0.5)


@pytest.mark.parametrize("max_steps,offsets", [(10, [0, 3, 9]), (7, [6, 0, 2]), (None, [0, 1, 2])])
def test_next_values_equals_full_forward_pass(max_steps, offsets):
    """The shifted-values shortcut gives V(next_obs) exactly, final observations at truncations included."""
    from jaxrl_policy.algorithms.common import next_values
    T, E = 32, 3
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    obs = jax.random.normal(k1, (T + 1, E, 2))       # obs[t + 1] is the (reset) obs after step t
    finals = jax.random.normal(k2, (T, E, 2))        # true final observations
    step = np.arange(T)[:, None] + np.array(offsets)[None]  # episode clocks, one per env
    truncated = jnp.asarray((step + 1) % (max_steps or 10**9) == 0)
    next_obs = jnp.where(truncated[..., None], finals, obs[1:])
    value_fn = lambda o: jnp.sin(o).sum(-1) * 3.0 + o[..., 0]  # noqa: E731
    got = next_values(value_fn, value_fn(obs[:-1]), next_obs, truncated, max_steps)
    # each V is the same elementwise function of the same row, gathered: bit-identical by construction
    np.testing.assert_array_equal(got, value_fn(next_obs))
    if max_steps:
        assert int(truncated.sum()) > 0
