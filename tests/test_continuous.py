"""Continuous actions, observation normalisation and recurrent policies (distributions.py,
normalization.py, the GRU torso), checked against closed forms and against the loop's own records.

Integration cases are one tiny compile each: the importance ratio is exactly 1 on the first
gradient step of an iteration (acting and learning parameters equal), which only holds when the
learner rebuilds the acting log-probabilities exactly, for a Gaussian policy (clip and tanh) and
for a GRU replayed from each unroll's stored initial state.
"""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats as sps

from jaxrl_policy import default_config
from jaxrl_policy.algorithms.common import sampled_kl
from jaxrl_policy.core.config import ConfigError
from jaxrl_policy.core.distributions import ActionSpace, Gaussian, entropy, log_prob, mode, sample
from jaxrl_policy.core.normalization import init_stats, normalize, update, variance
from jaxrl_policy.run.build import build_loop

BOX = ActionSpace(num_actions=None, low=np.array([-2.0, 0.0], np.float32), high=np.array([2.0, 1.0], np.float32))
TANH = BOX._replace(squash="tanh")


def gaussian(mean, std):
    return Gaussian(mean=jnp.asarray(mean, jnp.float32), log_std=jnp.log(jnp.asarray(std, jnp.float32)))


def test_gaussian_log_prob_and_entropy_match_closed_forms():
    dist = gaussian([[0.3, -1.0], [2.0, 0.5]], [[0.5, 2.0], [1.5, 0.1]])
    a = jnp.asarray([[0.1, 0.7], [-1.0, 0.45]])
    want = sps.norm.logpdf(np.asarray(a), np.asarray(dist.mean), np.exp(np.asarray(dist.log_std))).sum(-1)
    np.testing.assert_allclose(log_prob(dist, a, BOX), want, rtol=1e-5)
    want_h = sps.norm.entropy(np.asarray(dist.mean), np.exp(np.asarray(dist.log_std))).sum(-1)
    np.testing.assert_allclose(entropy(dist, BOX), want_h, rtol=1e-5)
    np.testing.assert_array_equal(mode(dist, BOX), dist.mean)
    # a sample's log-probability is the density at the sample (clip: the unclipped sample is stored)
    act, logp = sample(jax.random.PRNGKey(0), dist, BOX)
    np.testing.assert_allclose(logp, log_prob(dist, act, BOX), rtol=1e-5)


def test_tanh_squash_is_a_density_on_the_bounds():
    """exp(log π(a)) integrates to 1 over [low, high] per dimension (fails without the Jacobian term)."""
    dist = gaussian([[0.4]], [[0.8]])
    for low, high in ((-2.0, 2.0), (0.0, 1.0)):
        space = ActionSpace(None, np.array([low], np.float32), np.array([high], np.float32), "tanh")
        grid = np.linspace(low, high, 200_001, dtype=np.float64)[1:-1]
        dens = np.exp(np.asarray(log_prob(dist, jnp.asarray(grid, jnp.float32)[:, None], space), np.float64))
        assert abs(np.trapezoid(dens, grid) - 1.0) < 2e-3, (low, high)
    act, logp = sample(jax.random.PRNGKey(1), gaussian(np.zeros((1000, 2)), np.ones((1000, 2))), TANH)
    assert np.all((np.asarray(act) >= BOX.low) & (np.asarray(act) <= BOX.high))
    np.testing.assert_allclose(logp, log_prob(gaussian(np.zeros((1000, 2)), np.ones((1000, 2))), act, TANH),
                               atol=2e-3)


def test_sampled_kl_is_unbiased_for_gaussians():
    """Schulman's k3 estimator on actions sampled by μ averages to the closed-form KL(μ ‖ π)."""
    mu, pi = gaussian([[0.0, 1.0]], [[1.0, 0.5]]), gaussian([[0.3, 0.8]], [[1.2, 0.6]])
    n = 400_000
    a = mu.mean + jnp.exp(mu.log_std) * jax.random.normal(jax.random.PRNGKey(2), (n, 2))
    est = sampled_kl(log_prob(pi, a, BOX) - log_prob(mu, a, BOX))
    s_mu, s_pi = np.exp(np.asarray(mu.log_std)), np.exp(np.asarray(pi.log_std))
    kl = np.sum(np.log(s_pi / s_mu) + (s_mu**2 + (np.asarray(mu.mean) - np.asarray(pi.mean)) ** 2) / (2 * s_pi**2)
                - 0.5)
    assert abs(float(est) - kl) < 3e-3, (float(est), kl)


def test_running_observation_statistics_match_numpy():
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(7, 13, 3)).astype(np.float32)
    stats = init_stats((3,))
    for batch in x:  # merged batch by batch, any leading dims
        stats = update(stats, jnp.asarray(batch.reshape(13, 1, 3)))
    flat = x.reshape(-1, 3)
    assert float(stats.n) == flat.shape[0]
    np.testing.assert_allclose(stats.mean, flat.mean(0), rtol=1e-5)
    np.testing.assert_allclose(variance(stats), flat.var(0), rtol=1e-4)
    z = normalize(stats, jnp.asarray(flat))
    np.testing.assert_allclose(np.asarray(z).mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(np.asarray(z).std(0), 1.0, atol=1e-4)
    assert normalize(None, jnp.asarray(flat)) is not None and np.all(np.abs(np.asarray(
        normalize(stats, jnp.asarray(flat * 1e3)))) <= 10.0)  # clipped to ±10


def test_observation_statistics_in_the_agent_state_count_every_env_step(train):
    cfg, state, m = train("ppo", "Pendulum-v1", num_envs=4, num_steps=8, num_minibatches=2, num_epochs=1,
                          total_timesteps=96, num_chunks=1, normalize_observations=True, eval_episodes=0)
    stats = state.agent.obs_stats
    assert float(stats.n[0]) == cfg.total_timesteps  # every observation acted on, merged once
    assert np.all(np.abs(np.asarray(stats.mean[0])) <= 8.0) and np.all(np.asarray(variance(
        jax.tree.map(lambda x: x[0], stats))) > 0)


# ---- one loop, exact ratios ------------------------------------------------------------------
# (observation normalisation off: the learner normalises with statistics that include the new unroll,
# so its first ratio is near 1, not exactly 1)
ONE_STEP = dict(num_envs=4, num_steps=16, num_minibatches=1, total_timesteps=64, num_chunks=1, eval_episodes=0,
                normalize_observations=False)


@pytest.mark.parametrize("algo,env_id,extra", [
    ("ppo", "Pendulum-v1", dict(num_epochs=1)),
    ("ppo", "Pendulum-v1", dict(num_epochs=1, action_squash="tanh", state_dependent_std=True)),
    ("vtrace", "Pendulum-v1", dict(replay_ratio=1)),
    ("ppo", "Probe-TimeLimit-v0", dict(num_epochs=1, torso="gru", rnn_size=8)),
    ("vtrace", "Probe-Terminate-v0", dict(replay_ratio=1, torso="gru", rnn_size=8)),
])
def test_ratio_is_one_when_acting_and_learning_parameters_are_equal(train, algo, env_id, extra):
    """One gradient step per iteration on the freshest unroll: the learner's log-probabilities equal
    the acting ones (ratio 1, KL 0). For the GRU the episodes (10 steps) straddle the 16-step
    unrolls, so this holds only if learning replays from the stored carry and resets it where the
    stored ``first`` says, as acting did."""
    _, _, m = train(algo, env_id, **ONE_STEP, **extra)
    np.testing.assert_allclose(m["ratio_mean"][0], 1.0, atol=2e-5)
    np.testing.assert_allclose(m["ratio_max"][0], 1.0, atol=2e-5)
    np.testing.assert_allclose(m["policy_kl"][0], 0.0, atol=1e-6)


@pytest.mark.parametrize("env_id", ["Probe-TimeLimit-v0", "Probe-Terminate-v0"])
def test_recurrent_state_resets_where_episodes_end(env_id):
    """Rolling out a GRU policy: the stored carry is the initial (zero) state exactly at episode
    starts — after a truncation (TimeLimit) and after a termination (Terminate) — and not elsewhere."""
    cfg = default_config("ppo", env_id, torso="gru", rnn_size=8, num_envs=2, num_steps=25, num_minibatches=1,
                         total_timesteps=50, eval_episodes=0)
    loop = build_loop(cfg)
    state = loop.init(jax.random.PRNGKey(0))
    from jaxrl_policy.loop.common import RolloutState

    acting = RolloutState(env=state.env, carry=state.carry, first=state.first)
    # biases away from 0, so the GRU's state moves even on the probes' all-zero observations
    agent = state.agent._replace(params=jax.tree.map(lambda x: x + 0.1, state.agent.params))
    _, unroll, _ = jax.jit(loop.rollout)(agent, acting, jax.random.PRNGKey(1), jnp.int32(0), loop.hparams)
    first, carry = np.asarray(unroll.extras["first"]), np.asarray(unroll.extras["carry"])
    done = np.asarray(unroll.terminated | unroll.truncated)
    ended = np.asarray(unroll.truncated if env_id == "Probe-TimeLimit-v0" else unroll.terminated)
    assert ended[:-1].any()  # the kind of episode end under test happens inside the unroll
    np.testing.assert_array_equal(first[0], True)
    np.testing.assert_array_equal(first[1:], done[:-1])
    zero = np.all(carry == 0.0, axis=-1)
    np.testing.assert_array_equal(zero, first)


def test_unsupported_combinations_are_refused_before_compiling():
    with pytest.raises(ConfigError, match="needs a discrete action space"):
        default_config("dqn", "Pendulum-v1")
    with pytest.raises(ConfigError, match="no recurrent policy"):
        default_config("dqn", "CartPole-v1", torso="gru")
    with pytest.raises(ConfigError, match="num_minibatches"):
        default_config("ppo", "CartPole-v1", torso="gru", num_envs=4, num_minibatches=3)
    with pytest.raises(ConfigError, match="action_squash"):
        default_config("ppo", "Pendulum-v1", action_squash="sigmoid")


def test_log_std_init_sets_the_initial_exploration():
    from jaxrl_policy.core.envs import env_spec
    from jaxrl_policy.core.networks import dummy_obs, make_actor_critic

    cfg = default_config("ppo", "Pendulum-v1", log_std_init=-0.5)
    net = make_actor_critic(cfg, env_spec("Pendulum-v1"))
    params = net.init(jax.random.PRNGKey(0), dummy_obs((3,)))
    policy, value, _ = net.apply(params, dummy_obs((3,)))
    np.testing.assert_allclose(policy.log_std, -0.5)
    assert policy.mean.shape == (1, 1) and value.shape == (1,)
    assert math.isclose(float(entropy(policy, BOX._replace(low=BOX.low[:1], high=BOX.high[:1]))[0]),
                        -0.5 + 0.5 * (1 + math.log(2 * math.pi)), rel_tol=1e-5)
