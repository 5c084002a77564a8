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
from tolerance import FN, U32, assert_within, gamma

from jaxrl_policy import default_config
from jaxrl_policy.algorithms.common import sampled_kl
from jaxrl_policy.core.config import ConfigError
from jaxrl_policy.core.distributions import ActionSpace, Gaussian, entropy, log_prob, mode, sample
from jaxrl_policy.core.normalization import EPS, init_stats, normalize, update, variance
from jaxrl_policy.running.build import build_loop

BOX = ActionSpace(num_actions=None, low=np.array([-2.0, 0.0], np.float32), high=np.array([2.0, 1.0], np.float32))
TANH = BOX._replace(squash="tanh")


def gaussian(mean, std):
    return Gaussian(mean=jnp.asarray(mean, jnp.float32), log_std=jnp.log(jnp.asarray(std, jnp.float32)))


def test_gaussian_log_prob_and_entropy_match_closed_forms():
    dist = gaussian([[0.3, -1.0], [2.0, 0.5]], [[0.5, 2.0], [1.5, 0.1]])
    a = jnp.asarray([[0.1, 0.7], [-1.0, 0.45]])
    want = sps.norm.logpdf(np.asarray(a), np.asarray(dist.mean), np.exp(np.asarray(dist.log_std))).sum(-1)
    log_std = np.asarray(dist.log_std, np.float64)
    z = (np.asarray(a, np.float64) - np.asarray(dist.mean, np.float64)) / np.exp(log_std)
    # Σ_d −½z² − log σ − ½log 2π: z = (a − μ)·exp(−log σ) is off by γ_{FN+2}, z² by twice that + u, then the
    # constant's conversion, two subtractions and D − 1 additions: γ_{2FN+10} of Σ_d (½z² + |log σ| + ½log 2π)
    assert_within(log_prob(dist, a, BOX), want, gamma(2 * FN + 10) * (0.5 * z ** 2 + np.abs(log_std) + 1).sum(-1))
    want_h = sps.norm.entropy(np.asarray(dist.mean), np.exp(np.asarray(dist.log_std))).sum(-1)
    # Σ_d log σ + ½(1 + log 2π): the constant's conversion, + and D − 1 additions
    assert_within(entropy(dist, BOX), want_h, gamma(4) * (np.abs(log_std) + 1.5).sum(-1))
    np.testing.assert_array_equal(mode(dist, BOX), dist.mean)
    # a sample's log-probability is the density at the sample (clip: the unclipped sample is stored): the same
    # function of the same float32 values, so bit-identical by construction
    act, logp = sample(jax.random.PRNGKey(0), dist, BOX)
    np.testing.assert_array_equal(logp, log_prob(dist, act, BOX))


def test_tanh_squash_is_a_density_on_the_bounds():
    """exp(log π(a)) integrates to 1 over [low, high] per dimension (fails without the Jacobian term)."""
    dist = gaussian([[0.4]], [[0.8]])
    for low, high in ((-2.0, 2.0), (0.0, 1.0)):
        space = ActionSpace(None, np.array([low], np.float32), np.array([high], np.float32), "tanh")
        grid = np.linspace(low, high, 200_001, dtype=np.float64)[1:-1]
        a = np.asarray(jnp.asarray(grid, jnp.float32), np.float64)[:, None]
        dens = np.exp(np.asarray(log_prob(dist, jnp.asarray(a, jnp.float32), space), np.float64))
        # the exact density at the float32 grid (float64) integrates to 1 up to the trapezoid rule's error and the two
        # end cells; ours is off by a relative e^Δ − 1 with Δ the float32 round trip's bound at each point
        y = 2 * (a[:, 0] - low) / (high - low) - 1
        exact = np.exp(-0.5 * ((np.arctanh(y) - 0.4) / 0.8) ** 2 - np.log(0.8) - 0.5 * np.log(2 * np.pi)
                       - np.log((high - low) / 2 * (1 - y ** 2)))
        rel = np.expm1(tanh_round_trip(a, space, 0.4, 0.8))
        bound = abs(np.trapezoid(exact, grid) - 1.0) + np.trapezoid(exact * rel, grid)
        assert_within(np.trapezoid(dens, grid), 1.0, bound, err_msg=f"{low, high}")
    act, logp = sample(jax.random.PRNGKey(1), gaussian(np.zeros((1000, 2)), np.ones((1000, 2))), TANH)
    assert np.all((np.asarray(act) >= BOX.low) & (np.asarray(act) <= BOX.high))
    assert_within(logp, log_prob(gaussian(np.zeros((1000, 2)), np.ones((1000, 2))), act, TANH), tanh_round_trip(act))


def tanh_round_trip(act, space=TANH, mean=0.0, std=1.0):
    """|log π(u) − log π(u')| for N(mean, std²) with u' = atanh(y) recovered from the stored a = low + (tanh u + 1)·r/2
    (r = high − low), both in float32.

    a is off by Δa ≤ γ_{FN+4}·(r/2 + |a|) (tanh, + 1, ×r, + low), y = 2(a − low)/r − 1 by 2Δa/r + γ_3·3, and atanh
    amplifies it: Δu ≤ Δy/(1 − y²) + γ_FN·|u| (needs |y| < 1 − 10⁻⁶, the clip). log π(u) = −½z² − log σ − ½log 2π −
    log(r/2) − 2(log 2 − u − softplus(−2u)), z = (u − μ)/σ, has |∂/∂u| = |z/σ + 2 tanh u| ≤ |z|/σ + 2 and second
    derivative ≤ 1/σ² + 2; both sides evaluate it within γ_{2FN+12} of its terms ½z² + |log σ| + 1 + |log(r/2)|
    + 2(1 + |u| + softplus(−2u)).
    """
    a = np.asarray(act, np.float64)
    r = np.asarray(space.high, np.float64) - space.low
    y = 2 * (a - space.low) / r - 1
    assert np.all(np.abs(y) < 1 - 2e-6)  # no sample at the clip
    u = np.arctanh(y)
    z = (u - mean) / std
    dy = 2 * gamma(FN + 4) * (r / 2 + np.abs(a)) / r + gamma(3) * 3
    du = dy / (1 - y ** 2) + gamma(FN) * np.abs(u)
    terms = 0.5 * z ** 2 + abs(np.log(std)) + 1 + np.abs(np.log(r / 2)) + 2 * (1 + np.abs(u) + np.logaddexp(0, -2 * u))
    return ((np.abs(z) / std + 2) * du + (0.5 / std ** 2 + 1) * du ** 2 + 2 * gamma(2 * FN + 12) * terms).sum(-1)


def test_sampled_kl_is_unbiased_for_gaussians():
    """Schulman's k3 estimator on actions sampled by μ averages to the closed-form KL(μ ‖ π)."""
    mu, pi = gaussian([[0.0, 1.0]], [[1.0, 0.5]]), gaussian([[0.3, 0.8]], [[1.2, 0.6]])
    n = 400_000
    a = mu.mean + jnp.exp(mu.log_std) * jax.random.normal(jax.random.PRNGKey(2), (n, 2))
    est = sampled_kl(log_prob(pi, a, BOX) - log_prob(mu, a, BOX))
    s_mu, s_pi = np.exp(np.asarray(mu.log_std)), np.exp(np.asarray(pi.log_std))
    kl = np.sum(np.log(s_pi / s_mu) + (s_mu**2 + (np.asarray(mu.mean) - np.asarray(pi.mean)) ** 2) / (2 * s_pi**2)
                - 0.5)
    # statistical: 5 standard errors of the mean of the n k3 = expm1(x) − x samples, plus float32's rounding: the
    # mean of n terms (γ_n·mean|k3|), each term's (expm1 and −: γ_{FN+1}), and x = log π − log μ's (each log-density
    # within γ_{2FN+10} of ½z² + |log σ| + 1 per dimension, and the −), which k3 carries times |e^x − 1|
    x = np.asarray(log_prob(pi, a, BOX) - log_prob(mu, a, BOX), np.float64)
    k3 = np.expm1(x) - x
    z_pi = (np.asarray(a, np.float64) - np.asarray(pi.mean)) / s_pi
    z_mu = (np.asarray(a, np.float64) - np.asarray(mu.mean)) / s_mu
    dx = gamma(2 * FN + 11) * (0.5 * z_pi ** 2 + 0.5 * z_mu ** 2 + 4).sum(-1)  # 2(1 + |log σ|) ≤ 4 here
    rounding = gamma(n) * np.abs(k3).mean() + np.mean(np.abs(np.expm1(x)) * dx + gamma(FN + 1) * (np.abs(np.expm1(x))
                                                                                                   + np.abs(x)))
    assert_within(est, kl, 5 * k3.std() / np.sqrt(n) + rounding)


def merged_bounds(batches):
    """update()'s merges replayed in float64 with bounds on the float32 errors of the mean and the variance.

    Batch b (n_b rows): mean_b sums n_b terms and divides (γ_{n_b+1}·mean|x|); m2_b = Σ(x − mean_b)², each square
    off by 2|x − mean_b|·(Δmean_b + u|x − mean_b|) + u(x − mean_b)², the sum by γ_{n_b}·m2_b. Merge with weight
    w = n_b/n: δ = mean_b − mean; mean + δ·w carries the old error ×(1 − w), Δmean_b·w, and rounds δ, ×n_b, ÷n, +
    (γ_3·|δ|w + u|mean'|); m2 + m2_b + δ²·n_a·w carries both parts' errors, δ²'s (2|δ|·(Δmean_b + Δmean + u|δ|)
    + γ_4·δ²)·n_a·w, and the two additions (γ_2·m2'). variance = m2/n rounds once more.
    """
    n = mean = m2 = d_mean = d_m2 = 0.0
    for x in batches:
        x = np.asarray(x, np.float64)
        n_b, mean_b = len(x), x.mean(0)
        d_mean_b = gamma(len(x) + 1) * np.abs(x).mean(0)
        dev = x - mean_b
        m2_b = (dev ** 2).sum(0)
        d_m2_b = (2 * np.abs(dev) * (d_mean_b + U32 * np.abs(dev)) + U32 * dev ** 2).sum(0) + gamma(n_b) * m2_b
        n_new = n + n_b
        w, delta = n_b / n_new, mean_b - mean
        d_delta = d_mean_b + d_mean + U32 * np.abs(delta)
        mean = mean + delta * w
        d_mean = d_mean * (1 - w) + (d_mean_b + gamma(3) * np.abs(delta)) * w + U32 * np.abs(mean)
        m2 = m2 + m2_b + delta ** 2 * n * w
        d_m2 = d_m2 + d_m2_b + (2 * np.abs(delta) * d_delta + gamma(4) * delta ** 2) * n * w + gamma(2) * m2
        n = n_new
    return mean, d_mean, m2 / n, d_m2 / n + U32 * m2 / n


def test_running_observation_statistics_match_numpy():
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(7, 13, 3)).astype(np.float32)
    stats = init_stats((3,))
    for batch in x:  # merged batch by batch, any leading dims
        stats = update(stats, jnp.asarray(batch.reshape(13, 1, 3)))
    flat = x.reshape(-1, 3).astype(np.float64)
    assert float(stats.n) == flat.shape[0]
    _, d_mean, var, d_var = merged_bounds(x)
    assert_within(stats.mean, flat.mean(0), d_mean)
    assert_within(variance(stats), flat.var(0), d_var)
    z = np.asarray(normalize(stats, jnp.asarray(flat, jnp.float32)), np.float64)
    # z = (x − mean)/√(var + ε) rounds 4 times (−, +, √, ÷): a relative γ_4 per element; with the stats' errors its
    # mean is within Δmean/√var + γ_4·mean|z| of 0 and its std within (Δvar + ε)/var + γ_4·rms(z) of 1
    assert_within(z.mean(0), 0.0, d_mean / np.sqrt(var) + gamma(4) * np.abs(z).mean(0))
    assert_within(z.std(0), 1.0, (d_var + EPS) / var + gamma(4) * np.sqrt((z ** 2).mean(0)))
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
    ("ppo", "Probe-Chain-v0", dict(num_epochs=1, torso="gru", rnn_size=8, num_steps=12, total_timesteps=48)),
    ("vtrace", "Probe-Chain-v0", dict(replay_ratio=1, torso="gru", rnn_size=8, num_steps=12, total_timesteps=48)),
])
def test_ratio_is_one_when_acting_and_learning_parameters_are_equal(train, algo, env_id, extra):
    """One gradient step per iteration on the freshest unroll: the learner's log-probabilities equal
    the acting ones (ratio 1, KL 0). For the GRU (Probe-Chain: two actions, 8-step episodes) the episodes
    straddle the 12-step unrolls, so this holds only if learning replays from the stored carry and resets it
    where the stored ``first`` says, as acting did."""
    _, _, m = train(algo, env_id, **{**ONE_STEP, **extra})
    if extra.get("torso") == "gru":
        assert m["episodes"][0, 0] > 0  # an episode ended inside the unroll: the replay must reset the carry there
    # (d) acting and learning evaluate log π of the same parameters, observations and actions in two programs: the
    # ratio is exactly 1 only if XLA computes each batch row alike in both (it does on Zen 4 for clip; that depends on
    # the CPU beyond rounding). Bound: each side's log π is within γ_{2FN+10}·(½z² + |log σ| + 1) of exact, |z| ≤ 6
    # for all 64 draws (2γ_26·19 ≈ 6e-5), plus |z|·Δμ for the mean head's float32 difference at init (the 64-64 MLP's
    # sums, 2γ_65·Σ|h||W| through the layers with the head's gain 0.01, Pendulum |obs| ≤ 8: Δμ ≲ 1.5e-5): Δ ≤ 1.5e-4.
    # With tanh the learner also recovers u = atanh(y) from the stored action: Δu ≤ Δy/(1 − tanh²u) (tanh_round_trip)
    # with Δy ≈ γ_{FN+4} and |u| ≤ 4.5 for 64 draws: Δ ≤ (|u| + 2)·Δu ≈ 2e-2 (observed here: 2.4e-6).
    # |ratio − 1| ≤ e^Δ − 1; the sampled KL (k3 ≈ Δ²/2 per sample) ≤ Δ² + its own rounding γ_{FN+1}·Δ.
    # GRU (Probe-Chain): both sides' log π are log-softmaxes of 2 logits computed by the same GRU (12 steps of FN + 10
    # roundings) and 64-64 MLP from the same inputs: each within γ_352 ≈ 2.1e-5 relative of its terms (O(1) sums scaled
    # by the 0.01-gain head), so Δ = 1e-4 is loose. Replaying without the resets (planted: `first` zeroed in the
    # replay of ppo.py or vtrace.py) moves ratio_max to 1.0015 (PPO): 15× this bound.
    delta = 2e-2 if extra.get("action_squash") == "tanh" else 1e-4 if extra.get("torso") == "gru" else 1.5e-4
    assert_within(m["ratio_mean"][0], 1.0, np.expm1(delta))
    assert_within(m["ratio_max"][0], 1.0, np.expm1(delta))
    assert_within(m["policy_kl"][0], 0.0, delta ** 2 + gamma(FN + 1) * delta)


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
    np.testing.assert_array_equal(policy.log_std, -0.5)  # the constant initialiser's value, exact in float32
    assert policy.mean.shape == (1, 1) and value.shape == (1,)
    # log σ + ½(1 + log 2π): the constant's conversion and the +
    assert_within(entropy(policy, BOX._replace(low=BOX.low[:1], high=BOX.high[:1]))[0],
                  -0.5 + 0.5 * (1 + math.log(2 * math.pi)), gamma(2) * (0.5 + 1.42))
