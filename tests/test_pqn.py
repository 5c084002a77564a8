"""PQN (Gallici et al. 2025): the loop contract, its Q(λ) targets, probes with known Q-values, a λ sweep in one
program, its config and bad inputs. Learning on CartPole and MinAtar: experiments/pqn.py (not a timed test)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import final_return, train_seeds

from jaxrl_policy import default_config, make_train, seed_keys
from jaxrl_policy.algorithms.pqn import MINATAR_PQN_DEFAULTS, PQNConfig, q_lambda_targets
from jaxrl_policy.cli.main import main
from jaxrl_policy.core import losses
from jaxrl_policy.core.config import ConfigError, hparams
from jaxrl_policy.core.envs import env_spec
from jaxrl_policy.core.networks import QNetwork, dummy_obs, make_q_network
from jaxrl_policy.core.types import DIAGNOSTICS, Transition

SMALL = dict(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 6, num_minibatches=2, num_epochs=2)


def test_jit_vmap_metrics_contract():
    cfg, state, m = train_seeds("pqn", "CartPole-v1", 2, **SMALL)
    n, G = cfg.num_iterations, cfg.num_epochs * cfg.num_minibatches
    for k in ("loss", "grad_norm", "q_mean", "td_abs", "epsilon", *DIAGNOSTICS):
        assert m[k].shape == (2, n), k
    for k in ("loss", "grad_norm", "q_mean", "td_abs", "epsilon", "data_age", "data_age_max", "grad_steps"):
        assert np.all(np.isfinite(m[k])), k
    np.testing.assert_array_equal(m["grad_steps"], np.broadcast_to(G * np.arange(1, n + 1), (2, n)))
    np.testing.assert_array_equal(m["learned"], 1.0)
    np.testing.assert_array_equal(m["data_age"], (G - 1) / 2)  # on-policy: the j-th step's data is j steps old
    np.testing.assert_array_equal(m["data_age_max"], G - 1)
    for k in ("ratio_mean", "ratio_max", "ratio_clip_frac", "ess", "policy_kl"):  # no importance ratios in PQN
        assert np.all(np.isnan(m[k])), k
    # ε decays linearly from 1 to 0.05 over half of the budget, read at the end of each iteration
    eps = 1 + np.clip(m["env_steps"][0] / (0.5 * cfg.total_timesteps), 0, 1) * (0.05 - 1)
    np.testing.assert_allclose(m["epsilon"][0], eps, rtol=1e-6)
    assert np.all(np.isfinite(m["eval_return"][:, -1]))
    assert state.agent.grad_steps.tolist() == [n * G] * 2 and not hasattr(state.agent, "target_params")


# ---- the targets ---------------------------------------------------------------------------------------------
def q_fn(o):
    """An elementwise Q-function ``[..., 2] -> [..., 3]``: gathering rows and evaluating them commute exactly."""
    return jnp.stack([jnp.sin(o).sum(-1) * 3.0 + o[..., 0], jnp.cos(o[..., 1]) * 2.0, o[..., 0] * o[..., 1]], -1)


def hand_built_unroll(max_steps, T=16, E=3, offsets=(0, 3, 1)):
    """Obs ``obs[t + 1]`` after step t (a reset obs after an episode's end), true final observations where an
    episode was truncated (every ``max_steps`` steps of each env's clock) or terminated (env 1 at t = 6)."""
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(0), 3)
    obs = jax.random.normal(k1, (T + 1, E, 2))
    finals = jax.random.normal(k2, (T, E, 2))
    clock = np.arange(T)[:, None] + np.array(offsets)[None]
    truncated = (clock + 1) % max_steps == 0
    terminated = np.zeros((T, E), bool)
    terminated[6, 1] = True
    truncated &= ~terminated
    ended = jnp.asarray(truncated | terminated)
    next_obs = jnp.where(ended[..., None], finals, obs[1:])
    extras = {"q": q_fn(obs[:-1]), "version": jnp.zeros((T, E), jnp.int32)}
    unroll = Transition(obs=obs[:-1], action=jnp.zeros((T, E), jnp.int32),
                        reward=jax.random.uniform(k3, (T, E)), terminated=jnp.asarray(terminated),
                        truncated=jnp.asarray(truncated), next_obs=next_obs, extras=extras)
    assert truncated.sum() >= E and truncated[-1].sum() == 0  # truncations inside the unroll, not only at its end
    return unroll


def reference_targets(unroll, q_t, hp):
    """``losses.q_lambda_returns`` per env from given Q(next_obs) ``[T, E, A]``."""
    discount_t = hp["gamma"] * (1.0 - unroll.terminated.astype(jnp.float32))
    return jax.vmap(losses.q_lambda_returns, in_axes=(1, 1, 1, None, 1), out_axes=1)(
        unroll.reward * hp["reward_scale"], discount_t, q_t, hp["td_lambda"], unroll.truncated)


@pytest.mark.parametrize("max_steps", [5, None])
def test_targets_equal_q_lambda_returns_of_a_full_forward_pass(max_steps):
    """The algorithm's targets reuse the acting Q-values and evaluate Q only at the last step and at truncations
    (common.next_values on [T, E, A]): exactly q_lambda_returns of Q(next_obs) for every next observation."""
    unroll = hand_built_unroll(max_steps or 5)
    hp = {**hparams(default_config("pqn")), "td_lambda": np.float32(0.65), "reward_scale": np.float32(2.0)}
    got = q_lambda_targets(q_fn, unroll, hp, max_steps)
    want = reference_targets(unroll, q_fn(unroll.next_obs), hp)
    # each Q is the same elementwise function of the same row, gathered: bit-identical by construction
    np.testing.assert_array_equal(got, want)
    # planted bug: no truncation bootstrap (Q of the reset obs that follows a truncation) fails the check
    q = unroll.extras["q"]
    q_reset = jnp.concatenate([q[1:], q_fn(unroll.next_obs[-1])[None]], 0)
    bug = reference_targets(unroll, q_reset, hp)
    trunc = np.asarray(unroll.truncated)
    assert not np.allclose(np.asarray(bug)[trunc], np.asarray(want)[trunc], rtol=1e-3, atol=1e-3)
    np.testing.assert_array_equal(np.asarray(bug)[-1], np.asarray(want)[-1])  # (the last step was evaluated)


# ---- probes with known Q-values --------------------------------------------------------------------------
PROBE = dict(num_envs=8, num_steps=16, num_minibatches=4, num_epochs=4, learning_rate=1e-2, anneal_lr=False,
             eps_decay_fraction=0.3)


def learned_q(env_id, obs, **overrides):
    cfg, state, m = train_seeds("pqn", env_id, 1, **{**PROBE, **overrides})
    params = jax.tree.map(lambda x: x[0], state.agent.params)
    return np.asarray(make_q_network(cfg, env_spec(env_id)).apply(params, jnp.asarray(obs, jnp.float32))), m


def test_two_arm_probe_learns_both_action_values():
    """One-step episodes: Q(s, 0) = +1, Q(s, 1) = −1; the greedy policy earns +1. (ε stays 0.5, so the worse arm
    keeps being sampled and its value is learned too.)"""
    q, m = learned_q("Probe-TwoArm-v0", [[0.0]], total_timesteps=8_000, eps_start=0.5, eps_end=0.5)
    np.testing.assert_allclose(q[0], [1.0, -1.0], atol=0.1)
    assert m["eval_return"][0, -1] == 1.0 and final_return(m)[0] > 0.9 - 0.5 * 2  # ε = 0.5 costs ½·2 in training


def test_time_limit_bootstraps_and_termination_does_not():
    """Probe-TimeLimit: reward 1, cut after 10 steps, γ = 0.9: Q = 1 / (1 − γ) = 10 only if the cut bootstraps
    (≈ 4.1 if it were a termination). Probe-Terminate: Q(start) = (1 − γ¹⁰) / (1 − γ) = 6.51, Q(5 left) = 4.10."""
    q, _ = learned_q("Probe-TimeLimit-v0", [[0.0]], total_timesteps=20_000, gamma=0.9)
    assert abs(q[0, 0] - 10.0) < 1.0, q
    q, _ = learned_q("Probe-Terminate-v0", [[1.0], [0.5]], total_timesteps=20_000, gamma=0.9)
    np.testing.assert_allclose(q[:, 0], [6.513, 4.095], atol=0.5)


# ---- a λ sweep is one program -------------------------------------------------------------------------------
def test_lambda_sweep_is_one_program_and_each_point_is_its_own_run():
    cfg = default_config("pqn", "CartPole-v1", **SMALL)
    lambdas = [0.0, 0.65, 0.9, 1.0]
    points = {**{k: np.repeat(v, 4) for k, v in hparams(cfg).items()}, "td_lambda": np.float32(lambdas)}
    train = jax.jit(jax.vmap(jax.vmap(make_train(cfg), (0, None)), (None, 0)))
    state, metrics = train(seed_keys(0, 2), points)  # [P, S, ...]
    assert train._cache_size() == 1
    params = [np.asarray(x) for x in jax.tree.leaves(state.agent.params)]
    assert all(any(not np.allclose(p[j], p[0]) for p in params) for j in range(1, 4))  # λ is data that matters
    for j in (0, 3):  # the ends (a reversed or shifted stacking order fails too); one compile each
        lam = lambdas[j]
        solo_state, solo_m = jax.jit(jax.vmap(make_train(cfg.replace(td_lambda=lam))))(seed_keys(0, 2))
        # tolerance and why: tests/test_sweep.py (vmapping over points may batch the dots into other GEMM shapes,
        # per CPU); measured bit-identical on the 2-core AMD EPYC development machine
        for a, b in zip(jax.tree.leaves(solo_state.agent.params), params, strict=True):
            np.testing.assert_allclose(a, b[j], rtol=2e-4, atol=2e-5, err_msg=str(lam))
        np.testing.assert_array_equal(solo_m["episodes"], metrics["episodes"][j])


# ---- config, network, bad inputs ---------------------------------------------------------------------------
def test_defaults_are_rejax_cartpole_and_purejaxql_minatar():
    c = default_config("pqn")
    assert (c.num_envs, c.num_steps, c.num_minibatches, c.num_epochs, c.max_grad_norm, c.learning_rate,
            c.anneal_lr, c.total_timesteps, c.eps_start, c.eps_end, c.eps_decay_fraction, c.gamma, c.td_lambda,
            c.hidden_sizes, c.activation, c.layer_norm, c.normalize_observations) == \
        (16, 128, 16, 5, 10.0, 3e-4, False, 524_288, 1.0, 0.05, 0.5, 0.99, 0.9, (64, 64), "relu", True, False)
    assert c.gradient_steps_per_iteration == 80
    m = default_config("pqn", "Breakout-MinAtar")
    assert all(getattr(m, k) == v for k, v in MINATAR_PQN_DEFAULTS.items())
    assert {"td_lambda", "eps_start", "eps_end", "eps_decay_fraction", "learning_rate"} <= PQNConfig.TRACED
    assert {"num_epochs", "num_minibatches", "layer_norm"}.isdisjoint(PQNConfig.TRACED)


def test_layer_norm_adds_parameters_only_when_asked():
    spec = env_spec("CartPole-v1")
    names = lambda net: sorted("/".join(k.key for k in path)  # noqa: E731
                               for path, _ in jax.tree_util.tree_leaves_with_path(net.init(jax.random.PRNGKey(0),
                                                                                            dummy_obs((4,)))))
    plain = ["params/Dense_0/bias", "params/Dense_0/kernel", "params/MLPTorso_0/Dense_0/bias",
             "params/MLPTorso_0/Dense_0/kernel", "params/MLPTorso_0/Dense_1/bias", "params/MLPTorso_0/Dense_1/kernel"]
    assert names(QNetwork(2, (8, 8))) == plain  # DQN's network is unchanged
    assert names(make_q_network(default_config("pqn", layer_norm=False), spec)) == plain
    ln = names(make_q_network(default_config("pqn"), spec))
    assert sorted(set(ln) - set(plain)) == [f"params/MLPTorso_0/LayerNorm_{i}/{w}" for i in (0, 1)
                                            for w in ("bias", "scale")]
    # the CNN torso (MinAtar): a LayerNorm after the conv and in the dense layer
    cfg = default_config("pqn", "Breakout-MinAtar")
    spec = env_spec("Breakout-MinAtar")
    params = make_q_network(cfg, spec).init(jax.random.PRNGKey(0), dummy_obs(spec.obs_shape))["params"]
    assert {"Conv_0", "LayerNorm_0", "MLPTorso_0"} <= set(params["CNNTorso_0"])
    assert "LayerNorm_0" in params["CNNTorso_0"]["MLPTorso_0"]


@pytest.mark.parametrize("overrides,field,rule", [
    (dict(num_minibatches=3), "num_minibatches", "must divide the batch num_envs × num_steps = 2048"),
    (dict(td_lambda=1.5), "td_lambda", "must be in [0, 1]"),
    (dict(eps_end=-0.1), "eps_end", "must be in [0, 1]"),
    (dict(num_epochs=0), "num_epochs", "must be an integer >= 1"),
    (dict(torso="gru"), "torso", "pqn has no recurrent policy"),
    (dict(layer_norm="yes"), "layer_norm", "must be true or false"),
])
def test_bad_fields_are_refused_by_name(overrides, field, rule):
    with pytest.raises(ConfigError) as e:
        default_config("pqn", "CartPole-v1", **overrides)
    assert [p[0] for p in e.value.problems] == [field] and rule in str(e.value)


@pytest.mark.parametrize("argv,needles", [
    (["--env", "Pendulum-v1"], ["env_id = 'Pendulum-v1'", "pqn needs a discrete action space"]),
    (["--num-minibatches", "3"], ["num_minibatches = 3", "must divide"]),
])
def test_cli_bad_inputs_exit_2_before_compiling(tmp_path, capsys, argv, needles):
    out = tmp_path / "bad"
    with pytest.raises(SystemExit) as e:
        main(["train", "--algo", "pqn", *argv, "--out", str(out)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert all(n in err for n in needles), err
    assert not out.exists()  # refused before a run folder (or a program) was made
