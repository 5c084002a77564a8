"""The gymnax adapter: batching, auto-reset, terminated vs truncated, final observations."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_policy.core.envs import env_spec, make_vec_env, unknown_env_message


def rollout(env_id, E, T, action=0, seed=0):
    v = make_vec_env(env_id, E)
    s = v.reset(jax.random.PRNGKey(seed))

    def body(s, k):
        obs = s.obs
        s, o = v.step(k, s, jnp.full((E,), action, jnp.int32))
        return s, (obs, o, s.obs)

    _, (obs, out, obs_after) = jax.lax.scan(body, s, jax.random.split(jax.random.PRNGKey(seed + 1), T))
    return v, jax.tree.map(np.asarray, (obs, out, obs_after))


def test_time_limit_is_truncation_not_termination():
    v, (obs, out, _) = rollout("Probe-TimeLimit-v0", E=3, T=25)
    assert v.spec.max_episode_steps == 10
    assert not out.terminated.any()
    # truncated exactly at steps 10 and 20 (index 9 and 19) in every env
    np.testing.assert_array_equal(np.nonzero(out.truncated[:, 0])[0], [9, 19])
    np.testing.assert_array_equal(out.episode_return[[9, 19]], 10.0)
    np.testing.assert_array_equal(out.episode_length[[9, 19]], 10)
    assert (out.episode_return[[0, 5, 10]] == 0).all()  # only reported when an episode ends


def test_termination_and_final_observation():
    v, (obs, out, obs_after) = rollout("Probe-Terminate-v0", E=2, T=12)
    assert not out.truncated.any()
    np.testing.assert_array_equal(np.nonzero(out.terminated[:, 0])[0], [9])
    # next_obs is the true final observation (time left 0), the agent's next obs is the reset one
    # (time left = 1 − t/10 is exactly 0 and 1 at t = 10 and 0, and the same function of the same state below)
    np.testing.assert_array_equal(out.next_obs[9, :, 0], 0.0)
    np.testing.assert_array_equal(obs_after[9, :, 0], 1.0)
    # inside an episode next_obs equals the following observation
    np.testing.assert_array_equal(out.next_obs[:9], obs[1:10])


def test_cartpole_auto_reset_and_returns():
    v, (obs, out, obs_after) = rollout("CartPole-v1", E=4, T=200)
    assert v.spec.obs_shape == (4,) and v.spec.num_actions == 2
    done = out.terminated | out.truncated
    assert done.sum() > 4  # always pushing left ends episodes quickly
    # every ended episode reports return == length (reward 1 per step)
    np.testing.assert_array_equal(out.episode_return[done], out.episode_length[done])  # sums of 1.0: exact
    # the episode lengths add up to the steps taken before the last end in each env
    for e in range(4):
        ends = np.nonzero(done[:, e])[0]
        assert out.episode_length[ends, e].sum() == ends[-1] + 1
    assert obs.dtype == np.float32


def test_minatar_image_observations():
    spec = env_spec("Breakout-MinAtar")
    assert spec.obs_shape == (10, 10, 4) and spec.num_actions == 3


def test_unknown_env_suggests_close_ids():
    assert unknown_env_message("CartPole-v1") is None
    msg = unknown_env_message("Cartpole-v1")
    assert "CartPole-v1" in msg


@pytest.mark.parametrize("env_id", ["Probe-ObsDependent-v0", "Probe-TwoArm-v0"])
def test_probe_rewards(env_id):
    _, (obs, out, _) = rollout(env_id, E=64, T=2, action=1)
    if env_id == "Probe-TwoArm-v0":
        np.testing.assert_array_equal(out.reward, -1.0)
    else:  # action 1 is right exactly when obs > 0
        np.testing.assert_array_equal(out.reward, np.where(obs[..., 0] > 0, 1.0, -1.0))
        assert 0 < (obs > 0).mean() < 1
