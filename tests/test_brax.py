"""The Brax adapter: the gymnax VecEnv contract on ``brax:`` ids, defaults, and the missing-brax error.

Brax is optional; the tests that step it are skipped when it is not importable. One compiled
program (the adapter's step beside Brax's raw step) serves every stepping check, on the cheapest
env (inverted_pendulum, spring backend), because compiling Brax physics on CPU takes seconds.
"""
import importlib.util
import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_policy.algorithms.presets import brax_defaults
from jaxrl_policy.cli.main import main
from jaxrl_policy.core import envs as adapter
from jaxrl_policy.core.envs import brax as ba
from jaxrl_policy.running.build import default_config

HAS_BRAX = importlib.util.find_spec("brax") is not None
needs_brax = pytest.mark.skipif(not HAS_BRAX, reason='brax is not installed (pip install "jaxrl-policy[brax]")')

ENV = "brax:inverted_pendulum"
LIMIT = 10  # forced short episode_length
# inverted_pendulum terminates when |pole angle| > 0.2: pushing the cart with +1 every step tips the
# pole over after 7 steps (measured: every seed), well before LIMIT; with 0 it stays up past LIMIT.
PUSH, STILL = 5.0, 0.0  # 5.0 is outside Brax's [-1, 1]: the adapter must clip it to 1


def test_import_does_not_import_brax():
    code = "import sys, jaxrl_policy, jaxrl_policy.core.config, jaxrl_policy.core.envs; print('brax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_parse_id():
    assert ba.parse_id("brax:ant") == ("ant", ba.DEFAULT_BACKEND)
    assert ba.parse_id("brax:ant@positional") == ("ant", "positional")


def test_missing_brax_is_a_config_error_before_compiling(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "brax", None)  # `import brax` now raises ImportError
    monkeypatch.setitem(sys.modules, "brax.envs", None)
    assert ba.unknown_env_message("brax:ant") == ba.INSTALL_HINT
    with pytest.raises(SystemExit) as e:
        main(["train", "--algo", "ppo", "--env", "brax:ant", "--out", "unused"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    for text in ("env_id", "'brax:ant'", 'pip install "jaxrl-policy[brax]"'):
        assert text in err, (text, err)


def test_brax_defaults_follow_the_published_configs_and_flags_win():
    # ant in brax's notebooks/training.ipynb: unroll 5, batch 2048, 32 minibatches, 4096 envs, 4 updates
    # per batch, discounting 0.97, lr 3e-4, entropy 1e-2, reward scaling 10, 5e7 steps.
    d = brax_defaults("ppo", "brax:ant@generalized")
    assert d["num_envs"] == 64 and d["num_steps"] == 5 * 2048 * 32 // 4096 == 80
    assert (d["num_minibatches"], d["num_epochs"], d["gamma"], d["learning_rate"], d["ent_coef"]) == \
        (32, 4, 0.97, 3e-4, 1e-2)
    assert d["reward_scale"] == 10 and d["normalize_observations"] and d["total_timesteps"] == 5_000_000
    assert d["action_squash"] == "tanh" and d["anneal_lr"] is False and d["max_grad_norm"] is None


@needs_brax
def test_spec_and_unknown_ids():
    spec = adapter.env_spec("brax:ant")
    assert spec.obs_shape == (27,) and spec.num_actions is None and spec.action_shape == (8,)
    assert spec.action_low == (-1.0,) * 8 and spec.action_high == (1.0,) * 8
    assert spec.max_episode_steps == ba.EPISODE_LENGTH == 1000
    assert adapter.unknown_env_message("brax:ant@positional") is None
    assert "brax:ant" in adapter.unknown_env_message("brax:antt")
    assert "backend" in adapter.unknown_env_message("brax:ant@nope")
    cfg = default_config("ppo", "brax:ant", num_envs=8)  # user-given flags win over the env's defaults
    assert cfg.num_envs == 8 and cfg.num_steps == 80 and cfg.gamma == 0.97


@pytest.fixture(scope="module")
def stepped():
    """``LIMIT`` steps of 2 envs (pushed, still) with the adapter and, from the same states, raw Brax."""
    venv = ba.make_vec_env(ENV, 2, episode_length=LIMIT)
    raw_step = jax.vmap(ba._base_env(*ba.parse_id(ENV)).step)

    @jax.jit
    def both(key, state, action):
        new, out = venv.step(key, state, action)
        raw = raw_step(state.inner, jnp.clip(action, -1.0, 1.0))  # Brax's own step from the same state
        return new, out, raw.obs, raw.reward

    state = jax.jit(venv.reset)(jax.random.PRNGKey(0))
    action = jnp.array([[PUSH], [STILL]], jnp.float32)
    rows = []
    for t in range(LIMIT):
        new, out, raw_obs, raw_reward = both(jax.random.PRNGKey(100 + t), state, action)
        rows.append(dict(prev=state, new=new, out=out, raw_obs=raw_obs, raw_reward=raw_reward))
        state = new
    return venv, jax.tree.map(np.asarray, rows)


@needs_brax
def test_shapes_and_dtypes(stepped):
    venv, rows = stepped
    out, new = rows[0]["out"], rows[0]["new"]
    assert new.obs.shape == out.next_obs.shape == (2, 4) and new.obs.dtype == out.next_obs.dtype == np.float32
    assert out.reward.shape == (2,) and out.reward.dtype == np.float32
    assert out.terminated.dtype == out.truncated.dtype == bool
    assert venv.spec.max_episode_steps == LIMIT


@needs_brax
def test_one_step_equals_raw_brax_step(stepped):
    _, rows = stepped
    # the same Brax step of the same state and action inside one jitted program: bit-identical by construction
    for r in rows:  # every step, the ones that end an episode included (next_obs is pre-reset)
        np.testing.assert_array_equal(r["out"].next_obs, r["raw_obs"])
        np.testing.assert_array_equal(r["out"].reward, r["raw_reward"])


@needs_brax
def test_terminated_and_truncated_kept_apart(stepped):
    _, rows = stepped
    term = np.stack([r["out"].terminated for r in rows])  # [T, 2]
    trunc = np.stack([r["out"].truncated for r in rows])
    # pushed env: a terminal state (the pole fell) before the limit, never a truncation
    assert term[:, 0].sum() == 1 and not trunc[:, 0].any()
    t_end = int(np.argmax(term[:, 0]))
    assert t_end < LIMIT - 1
    assert abs(rows[t_end]["out"].next_obs[0, 1]) > 0.2  # the final observation shows the fallen pole
    # still env: cut by the time limit at exactly LIMIT steps, not terminated
    assert not term[:, 1].any() and trunc[:, 1].tolist() == [False] * (LIMIT - 1) + [True]
    assert rows[-1]["out"].episode_length[1] == LIMIT
    assert rows[t_end]["out"].episode_length[0] == t_end + 1
    # the adapter adds the float32 rewards one step at a time, as this sum does (np.float32 + np.float32): exact
    np.testing.assert_array_equal(rows[-1]["out"].episode_return[1], sum(r["out"].reward[1] for r in rows))


@needs_brax
def test_auto_reset_keeps_the_final_observation(stepped):
    _, rows = stepped
    t_end = int(np.argmax([r["out"].terminated[0] for r in rows]))
    r = rows[t_end]
    final, after = r["out"].next_obs[0], r["new"].obs[0]
    assert not np.allclose(final, after)  # the agent acts next on the reset observation
    assert abs(after[1]) < 0.02  # a fresh initial state: the pole upright (Brax's reset noise is ±0.01)
    assert r["new"].inner.info["steps"][0] == 0 and r["new"].episode_length[0] == 0
    assert r["new"].episode_return[0] == 0
    # the env that did not end is untouched by the reset
    np.testing.assert_array_equal(r["new"].obs[1], r["out"].next_obs[1])
    # the next step starts from the reset state (its observation is the one the agent saw)
    np.testing.assert_array_equal(rows[t_end + 1]["prev"].obs[0], after)


@needs_brax
def test_ppo_iteration_from_the_cli(tmp_path, capsys):
    out = tmp_path / "run"
    main(["train", "--algo", "ppo", "--env", ENV, "--out", str(out), "--quiet", "--checkpoint-every", "0",
          "--total-timesteps", "64", "--num-envs", "4", "--num-steps", "16", "--num-minibatches", "2",
          "--num-epochs", "1", "--eval-episodes", "0", "--num-chunks", "1"])
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["env_id"] == ENV and cfg["normalize_observations"] is True and cfg["action_squash"] == "tanh"
    s = json.loads((out / "summary.json").read_text())
    assert s["env"] == ENV and s["total_timesteps"] == 64 and s["env_steps_per_s"] > 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    assert rows[-1]["env_steps"] == 64 and np.isfinite(rows[-1]["loss"])
