"""The optional suites' adapters (``craftax:``, ``xminigrid:``, ``navix:``, ``jumanji:``) against the raw envs.

Each adapter is stepped beside its suite's own auto-resetting env, from its own state, on the same keys and
random actions, for a few hundred steps with episode ends of both kinds where the suite has them: the
observations after every step, rewards, terminations, truncations (from the raw env's own facts: reward,
step count, health) and the final observation before each reset must be equal, bit for bit. The shared
batching (``suite.batched``) and observation encoding are tested on a toy env without any suite installed.

A suite's tests skip when its package is missing (``pip install "jaxrl-policy[SUITE]"``; ``[dev]`` has
all four). CI runs one env per suite against the raw env and a tiny ``train`` on the three cheap suites;
Craftax's ``train``, every learner on Navix (compare, sweep, resume) and the two-device mesh run with
``JAXRL_FULL=1`` (marker ``suites``).
"""
import importlib.util
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import FULL

from jaxrl_policy.cli.main import main
from jaxrl_policy.core import envs
from jaxrl_policy.core.envs import suite
from jaxrl_policy.core.envs.base import EnvSpec

HEAVY = (pytest.mark.suites, pytest.mark.skipif(not FULL, reason="runs with JAXRL_FULL=1 (CI runs one env per suite)"))
PACKAGES = {"craftax": "craftax", "xminigrid": "xminigrid", "navix": "navix", "jumanji": "jumanji"}


def needs(pkg):
    return pytest.mark.skipif(importlib.util.find_spec(pkg) is None,
                              reason=f'{pkg} is not installed (pip install "jaxrl-policy[{pkg}]")')


def to_np(tree):
    return jax.tree.map(np.asarray, tree)


def test_import_does_not_import_the_suites():
    code = ("import sys, jaxrl_policy, jaxrl_policy.core.config, jaxrl_policy.core.envs; "
            f"print([m for m in {sorted(PACKAGES)} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---- the shared batching, on a toy env (no suite needed) ------------------------------------------------------
# One "episode" of env e lasts LENGTHS[e] steps; it ends terminated when ENDS[e] says so, truncated otherwise, and
# env 3 ends both ways at once (a termination). The observation is (episode id, step); a reset's episode id is
# drawn from its key, so two envs reset in the same step get different ids unless one copies the other's slot.
LENGTHS = jnp.array([2, 3, 2, 2])
TERMINATES = jnp.array([True, False, False, True])
BOTH = jnp.array([False, False, False, True])


def toy_env() -> suite.SuiteEnv:
    def fresh(key, e):
        return dict(e=e, t=jnp.int32(0), ep=jax.random.randint(key, (), 0, 1 << 30)), None

    def obs(inner):
        return jnp.stack([inner["ep"], inner["t"]]).astype(jnp.float32)

    def reset(key):
        e = jax.random.randint(key, (), 0, 1)  # placeholder; the env index comes from the batch below
        inner, _ = fresh(key, e)
        return inner, obs(inner)

    def step(key, inner, action):
        inner = dict(inner, t=inner["t"] + 1)
        end = inner["t"] >= LENGTHS[inner["e"]]
        term = end & TERMINATES[inner["e"]]
        trunc = end & (~TERMINATES[inner["e"]] | BOTH[inner["e"]])
        return inner, obs(inner), jnp.float32(1.0), term, trunc

    def reset_done(key, inner):
        new, _ = fresh(jax.random.fold_in(key, 7), inner["e"])
        return new, obs(new)

    return suite.SuiteEnv(reset=reset, step=step, reset_done=reset_done)


def toy_rollout(reset_slots, T=6):
    spec = EnvSpec(env_id="toy", obs_shape=(2,), num_actions=2, max_episode_steps=3)
    venv = suite.batched(spec, toy_env(), lambda o: o.astype(jnp.float32), 4, reset_slots=reset_slots)
    s = venv.reset(jax.random.PRNGKey(0))
    s = s._replace(inner=dict(s.inner, e=jnp.arange(4)))  # env e has episode length LENGTHS[e]
    rows = []
    for t in range(T):
        new, out = jax.jit(venv.step)(jax.random.PRNGKey(10 + t), s, jnp.zeros(4, jnp.int32))
        rows.append(to_np((s, new, out)))
        s = new
    return rows


def test_batched_keeps_truncation_termination_and_final_observation_apart():
    rows = toy_rollout(None)
    _, new, out = rows[1]  # step 2: envs 0, 2 and 3 end (env 3 both ways: a termination)
    assert out.terminated.tolist() == [True, False, False, True]
    assert out.truncated.tolist() == [False, False, True, False]
    np.testing.assert_array_equal(out.next_obs[:, 1], [2, 2, 2, 2])  # the final observations, before the reset
    np.testing.assert_array_equal(new.obs[:, 1], [0, 2, 0, 0])  # the agent acts next on the reset ones
    assert out.episode_return.tolist() == [2, 0, 2, 2] and out.episode_length.tolist() == [2, 0, 2, 2]
    assert new.episode_return.tolist() == [0, 2, 0, 0] and new.episode_length.tolist() == [0, 2, 0, 0]
    ids = new.obs[[0, 2, 3], 0]
    assert len(set(ids.tolist())) == 3  # every env that ended got its own fresh episode
    _, _, out3 = rows[2]  # env 1 ends at step 3, truncated
    assert out3.truncated.tolist() == [False, True, False, False] and out3.episode_length[1] == 3


def test_reset_slots_give_the_first_ends_their_own_reset_and_copy_beyond():
    exact, slotted = toy_rollout(None), toy_rollout(1)
    _, new_x, _ = exact[1]
    _, new_1, out_1 = slotted[1]
    # three envs end at once with one slot: env 0 (the first by index) gets the reset it gets without slots,
    # envs 2 and 3 start from copies of it
    np.testing.assert_array_equal(new_1.obs[0], new_x.obs[0])
    np.testing.assert_array_equal(new_1.obs[2], new_x.obs[0])
    np.testing.assert_array_equal(new_1.obs[3], new_x.obs[0])
    np.testing.assert_array_equal(new_1.obs[1], new_x.obs[1])  # the env that did not end is untouched
    np.testing.assert_array_equal(out_1.next_obs, exact[1][2].next_obs)  # final observations do not depend on slots
    # one env ending alone (env 1 at step 3) gets its own reset with one slot too
    np.testing.assert_array_equal(slotted[2][1].obs[1], exact[2][1].obs[1])


def test_observation_form():
    sds = jax.ShapeDtypeStruct
    shape, enc = suite.observation_form(sds((5,), jnp.int32))
    assert shape == (5,) and enc(jnp.ones((3, 5), jnp.int32)).dtype == jnp.float32
    assert suite.observation_form(sds((4, 4, 2), jnp.uint8))[0] == (4, 4, 2)  # an image stays an image
    assert suite.observation_form(sds((4, 4), jnp.int32))[0] == (16,)  # another rank is flattened
    tree = {"a": sds((2, 2), jnp.int32), "b": sds((), jnp.float32), "c": sds((3,), jnp.bool_)}
    shape, enc = suite.observation_form(tree)
    assert shape == (8,)
    x = {"a": jnp.arange(8).reshape(2, 2, 2), "b": jnp.array([0.5, 1.5]), "c": jnp.array([[True, False, True]] * 2)}
    np.testing.assert_array_equal(enc(x), [[0, 1, 2, 3, 0.5, 1, 0, 1], [4, 5, 6, 7, 1.5, 1, 0, 1]])
    for bad, needle in ((sds((3,), jnp.dtype("U1")), "dtype"), ({}, "no arrays"), (sds((0, 3), jnp.float32), "empty")):
        with pytest.raises(ValueError, match=needle):
            suite.observation_form(bad)


# ---- ids and messages -----------------------------------------------------------------------------------------
def test_unknown_prefix_and_env_parameters():
    assert "unknown env suite 'mujoco:'" in envs.unknown_env_message("mujoco:Ant")
    assert "craftax:" in envs.unknown_env_message("mujoco:Ant")
    msg = envs.unknown_env_message("navix:Navix-Empty-5x5-v0?max_steps=3")
    assert "not supported for navix: ids" in msg


@pytest.mark.parametrize("prefix,pkg", [("craftax:Craftax-Classic-Symbolic-v1", "craftax"),
                                        ("xminigrid:MiniGrid-Empty-5x5", "xminigrid"),
                                        ("navix:Navix-Empty-5x5-v0", "navix"), ("jumanji:Snake-v1", "jumanji")])
def test_missing_package_is_a_config_error_before_compiling(prefix, pkg, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, pkg, None)  # `import pkg` now raises ImportError
    with pytest.raises(SystemExit) as e:
        main(["train", "--algo", "ppo", "--env", prefix, "--out", "unused"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    for text in ("env_id", repr(prefix), f'pip install "jaxrl-policy[{pkg}]"'):
        assert text in err, (text, err)


def train_cli(tmp_path, env_id, *extra):
    out = tmp_path / "run"
    main(["train", "--algo", "ppo", "--env", env_id, "--out", str(out), "--quiet", "--checkpoint-every", "0",
          "--total-timesteps", "64", "--num-envs", "4", "--num-steps", "16", "--num-minibatches", "2",
          "--num-epochs", "1", "--eval-episodes", "2", "--eval-max-steps", "20", "--num-chunks", "1", *extra])
    s = json.loads((out / "summary.json").read_text())
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x.strip()]
    assert s["env"] == env_id and s["total_timesteps"] == 64
    assert rows[-1]["env_steps"] == 64 and np.isfinite(rows[-1]["loss"])
    return json.loads((out / "config.json").read_text())


def bad_name_exits_2(env_id, needle, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--algo", "ppo", "--env", env_id, "--out", "unused"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert needle in err, err


def lockstep(venv, raw_reset, raw_step, T, seed=0):
    """``T`` steps of ``venv`` and of the raw env, each from its own state, on the same per-env keys and actions.
    ``raw_step(keys [E], raw_state, action [E]) -> (raw_state, dict of obs, final_obs, reward, terminated,
    truncated)``. Returns both sides' per-step rows as numpy, stacked over T."""

    def run(key):
        k_reset, k_run = jax.random.split(key)
        state = venv.reset(k_reset)
        E = state.obs.shape[0]
        raw = raw_reset(jax.random.split(k_reset, E))  # the keys the adapter's reset splits

        def body(carry, k):
            state, raw = carry
            k_act, k_env = jax.random.split(k)
            action = jax.random.randint(k_act, (E,), 0, venv.spec.num_actions)
            new, out = venv.step(k_env, state, action)
            raw, ref = raw_step(jax.random.split(k_env, E), raw, action)  # the keys the adapter's step splits
            mine = dict(obs=new.obs, final_obs=out.next_obs, reward=out.reward, terminated=out.terminated,
                        truncated=out.truncated, episode_length=out.episode_length)
            return (new, raw), (mine, ref)

        return jax.lax.scan(body, (state, raw), jax.random.split(k_run, T))[1]

    mine, ref = jax.jit(run)(jax.random.PRNGKey(seed))
    return to_np(mine), to_np(ref)


def assert_same(mine, ref, need_terminated=True, need_truncated=True, rtol=0.0):
    for k in ("obs", "final_obs", "reward"):
        np.testing.assert_allclose(mine[k], ref[k], rtol=rtol, atol=0, err_msg=k)
    for k in ("terminated", "truncated"):
        np.testing.assert_array_equal(mine[k], ref[k], err_msg=k)
    assert mine["obs"].dtype == mine["final_obs"].dtype == np.float32
    ended = mine["terminated"] | mine["truncated"]
    assert not (mine["terminated"] & mine["truncated"]).any()
    if need_terminated:
        assert mine["terminated"].any()
    if need_truncated:
        assert mine["truncated"].any()
    assert (mine["obs"][ended] != mine["final_obs"][ended]).any()  # the reset observation is not the final one
    assert (mine["episode_length"][ended] > 0).all() and (mine["episode_length"][~ended] == 0).all()


# ---- Craftax --------------------------------------------------------------------------------------------------
CRAFTAX = "craftax:Craftax-Classic-Symbolic-v1"
CRAFTAX_LIMIT = 60  # a short time limit, so that random play ends episodes both ways within the steps below


@needs("craftax")
def test_craftax_spec_and_names(capsys):
    spec = envs.env_spec(CRAFTAX)
    assert spec.obs_shape == (1345,) and spec.num_actions == 17 and spec.max_episode_steps == 10_000
    assert envs.unknown_env_message("craftax:Craftax-Classic-Pixels-v1") is None
    assert "'craftax:Craftax-Classic-Symbolic-v1'" in envs.unknown_env_message("craftax:Craftax-Classic-Symbolic")
    bad_name_exits_2("craftax:Craftax-Clasic-Symbolic-v1", "did you mean 'craftax:Craftax-Classic-Symbolic-v1'",
                     capsys)


@needs("craftax")
def test_craftax_matches_its_own_auto_reset_env():
    from craftax.craftax_classic.constants import BlockType

    from jaxrl_policy.core.envs import craftax as ca

    name = CRAFTAX.partition(":")[2]
    venv = ca.make_vec_env(CRAFTAX, 6, reset_slots=6, max_timesteps=CRAFTAX_LIMIT)  # every env its own world
    auto, params = ca.make_env(name, auto_reset=True)
    plain, _ = ca.make_env(name)
    params = params.replace(max_timesteps=CRAFTAX_LIMIT)

    def raw_reset(keys):
        return jax.vmap(auto.reset, (0, None))(keys, params)[1]

    def raw_step(keys, st, action):
        obs, new, reward, done, _ = jax.vmap(auto.step, (0, 0, 0, None))(keys, st, action, params)
        k_step = jax.vmap(lambda k: jax.random.split(k)[0])(keys)  # Craftax's auto-reset env steps with this key
        final, ended, *_ = jax.vmap(plain.step_env, (0, 0, 0, None))(k_step, st, action, params)
        pos = ended.player_position
        lava = jax.vmap(lambda m, p: m[p[0], p[1]] == BlockType.LAVA.value)(ended.map, pos)
        terminated = done & ((ended.player_health <= 0) | lava)
        return new, dict(obs=obs, final_obs=final, reward=reward, terminated=terminated,
                         truncated=done & ~terminated)

    mine, ref = lockstep(venv, raw_reset, raw_step, T=150)
    # the same float32 math in two programs: XLA fuses the light level's cosine (observation entry 1343) differently
    # in each, so it may differ in the last bit (measured: 12 of 1.2M entries, by 6e-8); everything else is exact
    assert_same(mine, ref, rtol=2e-7)
    np.testing.assert_array_equal(mine["obs"][..., :1343], ref["obs"][..., :1343])
    assert mine["episode_length"][mine["truncated"]].tolist() == [CRAFTAX_LIMIT] * int(mine["truncated"].sum())


@pytest.mark.parametrize("_", [pytest.param(0, marks=HEAVY)])
@needs("craftax")
def test_craftax_train(tmp_path, _):
    cfg = train_cli(tmp_path, CRAFTAX)
    assert cfg["num_steps"] == 16 and cfg["gae_lambda"] == 0.8  # the Craftax preset, flags on top


# ---- XLand-MiniGrid -------------------------------------------------------------------------------------------
XMINIGRID = "xminigrid:MiniGrid-Empty-5x5"


@needs("xminigrid")
def test_xminigrid_spec_and_names(capsys):
    spec = envs.env_spec(XMINIGRID)
    assert spec.obs_shape == (7, 7, 2) and spec.num_actions == 6 and spec.max_episode_steps == 100
    assert "load_benchmark" in envs.unknown_env_message("xminigrid:XLand-MiniGrid-R1-9x9")
    bad_name_exits_2("xminigrid:MiniGrid-Empty5x5", "did you mean 'xminigrid:MiniGrid-Empty-5x5'", capsys)


@needs("xminigrid")
def test_xminigrid_matches_its_gym_auto_reset_wrapper():
    import xminigrid
    from xminigrid.wrappers import GymAutoResetWrapper

    env, params = xminigrid.make(XMINIGRID.partition(":")[2])
    auto = GymAutoResetWrapper(env)

    def raw_reset(keys):
        return jax.vmap(env.reset, (None, 0))(params, keys)

    def raw_step(keys, ts, action):
        new = jax.vmap(auto.step, (None, 0, 0))(params, ts, action)
        final = jax.vmap(env.step, (None, 0, 0))(params, ts, action).observation
        goal = new.last() & (new.reward > 0)  # MiniGrid-Empty ends early only at the goal, which pays > 0
        return new, dict(obs=new.observation.astype(jnp.float32), final_obs=final.astype(jnp.float32),
                         reward=new.reward, terminated=goal, truncated=new.last() & ~goal)

    venv = envs.make_vec_env(XMINIGRID, 8)
    mine, ref = lockstep(venv, raw_reset, raw_step, T=260)
    assert_same(mine, ref)
    assert set(mine["episode_length"][mine["truncated"]].tolist()) == {100}


@needs("xminigrid")
def test_xminigrid_train(tmp_path):
    cfg = train_cli(tmp_path, XMINIGRID)
    assert cfg["torso"] == "auto" and cfg["num_envs"] == 4  # [7, 7, 2] observations: the CNN torso


# ---- Navix ----------------------------------------------------------------------------------------------------
NAVIX = "navix:Navix-Empty-5x5-v0"


@needs("navix")
def test_navix_spec_and_names(capsys):
    spec = envs.env_spec(NAVIX)
    assert spec.obs_shape == (5, 5, 3) and spec.num_actions == 7 and spec.max_episode_steps == 100
    bad_name_exits_2("navix:Empty-5x5", "did you mean 'navix:Navix-Empty-5x5-v0'", capsys)


@needs("navix")
def test_navix_matches_its_own_step():
    from jaxrl_policy.core.envs import navix as na

    env = na.make_env(NAVIX.partition(":")[2])

    def raw_reset(keys):
        return jax.vmap(env.reset)(keys)

    def raw_step(keys, ts, action):
        ended = jax.vmap(env.step)(ts, action)  # Navix's public step
        # Navix resets on the call after an episode ended: that call is the raw env's reset
        after = jax.vmap(env.step)(ended, action)
        done = ended.is_done()
        new = jax.tree.map(lambda a, b: jnp.where(done.reshape(-1, *([1] * (a.ndim - 1))), a, b), after, ended)
        goal = ended.reward > 0  # Empty: the goal pays 1 and ends the episode
        return new, dict(obs=new.observation.astype(jnp.float32), final_obs=ended.observation.astype(jnp.float32),
                         reward=ended.reward, terminated=goal, truncated=(ended.t >= env.max_steps) & ~goal)

    venv = envs.make_vec_env(NAVIX, 8)
    mine, ref = lockstep(venv, raw_reset, raw_step, T=260)
    assert_same(mine, ref)


@needs("navix")
def test_navix_train(tmp_path):
    cfg = train_cli(tmp_path, NAVIX)
    assert cfg["torso"] == "mlp" and cfg["hidden_sizes"] == [64, 64]  # Navix's PPO baseline network


# ---- Jumanji --------------------------------------------------------------------------------------------------
@needs("jumanji")
def test_jumanji_spec_names_and_refusals(capsys):
    spec = envs.env_spec("jumanji:Snake-v1")
    assert spec.obs_shape == (12 * 12 * 5 + 1 + 4,) and spec.num_actions == 4 and spec.max_episode_steps == 4000
    assert envs.env_spec("jumanji:Minesweeper-v0").num_actions == 100  # [10, 10] MultiDiscrete, flattened
    assert envs.env_spec("jumanji:Game2048-v1").max_episode_steps is None
    assert "not discrete" in envs.unknown_env_message("jumanji:MultiCVRP-v0")
    assert "one per agent" in envs.unknown_env_message("jumanji:LevelBasedForaging-v0")
    assert "joint actions" in envs.unknown_env_message("jumanji:JobShop-v0")
    bad_name_exits_2("jumanji:snake", "did you mean 'jumanji:Snake-v1'", capsys)
    bad_name_exits_2("jumanji:MultiCVRP-v0", "not discrete", capsys)


@pytest.mark.parametrize("name", ["Maze-v0", "Minesweeper-v0"])
@needs("jumanji")
def test_jumanji_matches_its_auto_reset_wrapper(name):
    import jumanji
    from jumanji.wrappers import AutoResetWrapper

    env = jumanji.make(name)
    auto = AutoResetWrapper(env, next_obs_in_extras=True)
    shape, encode = suite.observation_form(env.observation_spec.generate_value())
    cols = 10 if name == "Minesweeper-v0" else None

    def raw_reset(keys):
        return jax.vmap(auto.reset)(keys)[0]

    def raw_step(keys, state, action):
        a = action if cols is None else jnp.stack([action // cols, action % cols], -1)  # row, column
        new, ts = jax.vmap(auto.step)(state, a)
        return new, dict(obs=encode(ts.observation), final_obs=encode(ts.extras["next_obs"]), reward=ts.reward,
                         terminated=ts.last(), truncated=jnp.zeros_like(ts.last()))  # their time limit terminates

    venv = envs.make_vec_env(f"jumanji:{name}", 8)
    assert venv.spec.obs_shape == shape
    mine, ref = lockstep(venv, raw_reset, raw_step, T=220)
    assert_same(mine, ref, need_truncated=False)


@needs("jumanji")
def test_jumanji_train(tmp_path):
    train_cli(tmp_path, "jumanji:Snake-v1")


# ---- every discrete learner on a suite: compare, sweep, resume, mesh (JAXRL_FULL=1) ----------------------------
TINY = ["--total-timesteps", "256", "--num-envs", "4", "--num-steps", "16", "--num-chunks", "2", "--quiet",
        "--eval-episodes", "2", "--eval-max-steps", "20", "--checkpoint-every", "0"]


@pytest.mark.parametrize("_", [pytest.param(0, marks=HEAVY)])
@needs("navix")
def test_every_discrete_learner_compares_on_navix(tmp_path, _):
    from jaxrl_policy.running.build import algorithm_names

    algos = [a for a in algorithm_names() if a in ("ppo", "vtrace", "pqn")]
    extra = ["--hidden-sizes", "16"]
    main(["compare", "--algos", *algos, "--env", NAVIX, "--out", str(tmp_path / "cmp"), *TINY, *extra])
    # DQN's replay fields (learning starts, gradient steps per env step) are its own: compare cannot set them
    main(["train", "--algo", "dqn", "--env", NAVIX, "--out", str(tmp_path / "cmp" / "dqn"), *TINY, *extra,
          "--learning-starts", "64", "--replay-ratio", "0.125"])
    for algo in (*algos, "dqn"):
        s = json.loads((tmp_path / "cmp" / algo / "summary.json").read_text())
        assert s["env"] == NAVIX and s["total_timesteps"] == 256, algo


class Crash(Exception):
    pass


@pytest.mark.parametrize("_", [pytest.param(0, marks=HEAVY)])
@needs("xminigrid")
def test_sweep_and_resume_on_xminigrid(tmp_path, _):
    from jaxrl_policy.running.build import default_config
    from jaxrl_policy.running.runner import resume_run, run

    main(["sweep", "--algo", "ppo", "--env", XMINIGRID, "--grid", "learning_rate=1e-3,3e-4", "--out",
          str(tmp_path / "sw"), *TINY])
    assert len(json.loads((tmp_path / "sw" / "sweep.json").read_text())["points"]) == 2
    # a run that crashes after chunk 2 of 4 resumes (the suite's env state is in the checkpoint) to the same end
    cfg = default_config("ppo", XMINIGRID, num_envs=4, num_steps=16, total_timesteps=4 * 16 * 8, num_chunks=4,
                         eval_episodes=2, eval_max_steps=20)
    whole = run(cfg, 2, tmp_path / "whole", progress=None, checkpoint_every_s=0.0)

    def crash_at_chunk_3(line):
        if "chunk 3/" in line:
            raise Crash(line)

    with pytest.raises(Crash):
        run(cfg, 2, tmp_path / "crashed", progress=crash_at_chunk_3, checkpoint_every_s=0.0)
    resumed = resume_run(tmp_path / "crashed", progress=None, checkpoint_every_s=0.0)
    assert resumed["agent_sha256"] == whole["agent_sha256"]


@pytest.mark.parametrize("_", [pytest.param(0, marks=HEAVY)])
@needs("navix")
def test_two_device_mesh_on_navix(tmp_path, _):
    """Runs go over batch; splitting a suite's envs over data on CPU is refused before compiling (such a program
    hangs in jax 0.10.2's XLA:CPU: running/mesh.py, CPU_UNSHARDED_ENV_PREFIXES)."""
    env = {**os.environ, "XLA_FLAGS": os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"}
    code = "import sys; from jaxrl_policy.cli.main import main; main(sys.argv[1:])"

    def train(mesh, out):
        return subprocess.run([sys.executable, "-c", code, "train", "--env", NAVIX, "--seeds", "2", "--mesh", mesh,
                               "--out", str(tmp_path / out), *TINY], env=env, capture_output=True, text=True,
                              timeout=600)

    p = train("batch=1,data=2", "d")
    assert p.returncode == 2 and "cannot be split over data on CPU" in p.stderr, p.stderr[-2000:]
    assert not (tmp_path / "d" / "metrics.jsonl").exists()
    p = train("batch=2,data=1", "m")
    assert p.returncode == 0, p.stderr
    assert json.loads((tmp_path / "m" / "config.json").read_text())["run"]["mesh"] == {"batch": 2, "data": 1}
