"""The spectrum diagnostics every algorithm logs: ratios, ESS, sampled KL, data age."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tolerance import FN, assert_within, gamma, kl_bound, log_softmax_err

from jaxrl_policy.algorithms.common import age_diagnostics, ratio_diagnostics, sampled_kl
from jaxrl_policy.core import losses


def test_sampled_kl_matches_exact_kl():
    """k3 over actions drawn from μ estimates KL(μ ‖ π) without bias."""
    mu_logits, pi_logits = jnp.array([0.5, -1.0, 0.2]), jnp.array([-0.3, 0.4, 0.0])
    a = jax.random.categorical(jax.random.PRNGKey(0), mu_logits, shape=(200_000,))
    log_rho = jax.nn.log_softmax(pi_logits)[a] - jax.nn.log_softmax(mu_logits)[a]
    exact = losses.categorical_kl(mu_logits, pi_logits)
    # statistical: 5 standard errors of the mean of the n k3 = expm1(x) − x samples; plus float32's rounding: the
    # mean of n terms (γ_n·mean|k3|), each term's expm1 and − (γ_{FN+1}), x's two log-softmax errors and − carried
    # ×|e^x − 1|, and the exact KL's own float32 evaluation (kl_bound)
    x = np.asarray(log_rho, np.float64)
    k3 = np.expm1(x) - x
    dx = log_softmax_err(pi_logits)[np.asarray(a)] + log_softmax_err(mu_logits)[np.asarray(a)] + gamma(1) * np.abs(x)
    n = len(x)
    rounding = (gamma(n) * np.abs(k3).mean() + kl_bound(mu_logits, pi_logits)
                + np.mean(np.abs(np.expm1(x)) * dx + gamma(FN + 1) * (np.abs(np.expm1(x)) + np.abs(x))))
    assert_within(sampled_kl(log_rho), exact, 5 * k3.std() / np.sqrt(n) + rounding)
    assert float(sampled_kl(jnp.zeros(5))) == 0.0  # on-policy: exactly 0


def test_ratio_diagnostics_hand_case():
    rho = jnp.array([1.0, 1.0, 0.5, 2.5])
    d = ratio_diagnostics(rho, 0.8, 1.2)
    # dyadic values: sums, squares, the max and the fraction 2/4 are exact in float32
    np.testing.assert_array_equal(d["ratio_mean"], 1.25)
    np.testing.assert_array_equal(d["ratio_max"], 2.5)
    np.testing.assert_array_equal(d["ratio_clip_frac"], 0.5)
    # (Σρ)² / (N Σρ² + 1e-12) = 25 / 34: exact but for the constant's conversion, the + and the ÷ (γ_3)
    assert_within(d["ess"], 5.0 ** 2 / (4 * (1 + 1 + 0.25 + 6.25)), gamma(3) * 25 / 34)
    assert_within(ratio_diagnostics(jnp.ones(7), 0.8, 1.2)["ess"], 1.0, gamma(3))  # 49 / (49 + 1e-12)


def test_age_diagnostics():
    d = age_diagnostics(jnp.int32(10), jnp.array([10, 8, 4]))
    assert_within(d["data_age"], 2.0 + 2.0 / 3.0, gamma(1) * 8 / 3)  # (0 + 2 + 6) / 3: exact sum, one ÷
    assert float(d["data_age_max"]) == 6.0


def test_dqn_epsilon_greedy_uses_one_draw_correctly():
    """ε = 1: uniform over actions; ε → 0: greedy. One uniform draw per env serves both."""
    from jaxrl_policy import default_config
    from jaxrl_policy.algorithms.dqn import make_dqn
    from jaxrl_policy.core.config import hparams
    from jaxrl_policy.core.envs import env_spec
    cfg = default_config("dqn", "Probe-TwoArm-v0", eps_end=0.0, eps_decay_fraction=0.1)
    algo, hp = make_dqn(cfg, env_spec("Probe-TwoArm-v0")), hparams(cfg)
    agent = algo.init(jax.random.PRNGKey(0))
    obs = jnp.zeros((20_000, 1))
    a0, _, _ = algo.act(algo.actor(agent, hp), obs, None, jax.random.PRNGKey(1), 0, hp)
    # statistical: frequencies of n fair binary draws, 5 standard errors √(¼/n) = 0.018 at n = 20,000
    n = obs.shape[0]
    assert_within(np.bincount(np.asarray(a0), minlength=2) / n, [0.5, 0.5], 5 * np.sqrt(0.25 / n))
    late, _, _ = algo.act(algo.actor(agent, hp), obs, None, jax.random.PRNGKey(1), cfg.total_timesteps, hp)
    assert len(set(np.asarray(late).tolist())) == 1  # same obs, ε = 0: always the argmax


@pytest.mark.parametrize("n", [1, 7, 512, 5000])
def test_shuffle_is_a_uniform_permutation(n):
    from jaxrl_policy.algorithms.common import shuffle
    keys = jax.random.split(jax.random.PRNGKey(0), 400)
    perms = np.asarray(jax.jit(jax.vmap(lambda k: shuffle(k, n)))(keys))
    assert all(np.array_equal(np.sort(p), np.arange(n)) for p in perms)
    if n >= 7:  # where element 0 lands: uniform over positions (chi-square over equal-width bins)
        bins = n if n <= 10 else 4
        counts = np.bincount(np.argmax(perms == 0, axis=1) * bins // n, minlength=bins)
        expected = len(perms) / bins
        assert ((counts - expected) ** 2 / expected).sum() < 25, counts


def test_vtrace_without_correction_ignores_the_behaviour_log_probs_and_with_it_uses_them():
    """off_policy_correction = 0 sets ρ = c = 1: the update is the same whatever log-probs the actor
    stored (only the diagnostics see them); with the correction the stored log-probs change it."""
    from jaxrl_policy import default_config
    from jaxrl_policy.core.config import hparams
    from jaxrl_policy.loop.common import RolloutState
    from jaxrl_policy.running.build import build_loop

    cfg = default_config("vtrace", num_envs=4, num_steps=8, num_minibatches=1, replay_ratio=1, hidden_sizes=(8,))
    loop = build_loop(cfg)
    state = loop.init(jax.random.PRNGKey(0))
    hp = {**hparams(cfg), "off_policy_correction": np.float32(0.0)}
    acting = RolloutState(env=state.env, carry=None, first=state.first)
    _, unroll, _ = loop.rollout(state.agent, acting, jax.random.PRNGKey(1), jnp.int32(0), hp)

    learn = jax.jit(loop.algorithm.learn)  # one compile: the flag is traced, so all three calls share it

    def learned(log_prob_shift, correction):
        u = unroll._replace(extras={**unroll.extras, "log_prob": unroll.extras["log_prob"] + log_prob_shift})
        h = {k: jnp.asarray(v) for k, v in {**hp, "off_policy_correction": np.float32(correction)}.items()}
        agent, m = learn(state.agent, jax.tree.map(lambda x: x[None], u), jax.random.PRNGKey(2), jnp.int32(32), h)
        return jax.tree.leaves(agent.params), m

    shift = jax.random.normal(jax.random.PRNGKey(3), unroll.reward.shape)
    (p0, m0), (p1, m1) = learned(0.0, 0.0), learned(shift, 0.0)
    for a, b in zip(p0, p1, strict=True):
        np.testing.assert_array_equal(a, b)
    assert float(m0["ratio_mean"]) != float(m1["ratio_mean"])  # the diagnostics still see the stale log-probs
    p2, _ = learned(shift, 1.0)
    assert any(not np.array_equal(a, b) for a, b in zip(p0, p2, strict=True))
