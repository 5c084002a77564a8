"""Sweeps in one compile: traced hyperparameters vmapped with seeds, static ones one compile each."""
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from tolerance import assert_within

from jaxrl_policy import default_config, make_train, seed_keys
from jaxrl_policy.cli.main import main
from jaxrl_policy.core.config import hparams
from jaxrl_policy.running.runner import run
from jaxrl_policy.running.sweep import (
    SweepError,
    grid_points,
    parse_grid,
    parse_range,
    plan_sweep,
    random_points,
    run_sweep,
)

TINY = {
    "ppo": dict(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 4, num_minibatches=2, num_epochs=2,
                num_chunks=2, learning_rate=5e-3),  # large steps: value clipping (±clip_eps) then binds
    "dqn": dict(num_envs=4, num_steps=2, total_timesteps=4 * 2 * 24, learning_starts=32, buffer_size=128,
                batch_size=16, replay_ratio=0.25, target_update_interval=24, loss="huber", num_chunks=2),
    "vtrace": dict(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 4, replay_capacity=2, replay_ratio=2,
                   num_minibatches=2, num_chunks=2),
    "pqn": dict(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 4, num_minibatches=2, num_epochs=2, num_chunks=2),
    "sac": dict(num_envs=4, num_steps=4, total_timesteps=4 * 4 * 6, learning_starts=32, buffer_size=64, batch_size=16,
                replay_ratio=0.125, hidden_sizes=(16, 16), num_chunks=2),
    "td3": dict(num_envs=4, num_steps=4, total_timesteps=4 * 4 * 6, learning_starts=32, buffer_size=64, batch_size=16,
                replay_ratio=0.125, hidden_sizes=(16, 16), num_chunks=2),
}
ENV = {"sac": "Pendulum-v1", "td3": "Pendulum-v1"}  # continuous-action learners; the rest run CartPole-v1
# one far-away value for every traced field: each must change what the run learns
FAR = {
    "ppo": dict(learning_rate=1e-5, anneal_lr=False, adam_eps=0.1, max_grad_norm=0.01, gamma=0.5, gae_lambda=0.1,
                clip_eps=0.01, ent_coef=0.5, vf_coef=5.0, clip_value_loss=False, normalize_advantages=False,
                reward_scale=10.0),
    "dqn": dict(learning_rate=1e-2, anneal_lr=True, adam_eps=0.1, max_grad_norm=0.01, gamma=0.5, learning_starts=8,
                target_update_interval=8, tau=0.5, eps_start=0.5, eps_end=0.5, eps_decay_fraction=0.9,
                huber_delta=0.01, reward_scale=10.0),
    "vtrace": dict(learning_rate=1e-2, anneal_lr=False, adam_eps=0.1, max_grad_norm=0.01, gamma=0.5, gae_lambda=0.1,
                   clip_rho_threshold=0.1, clip_pg_rho_threshold=0.1, clip_c_threshold=0.1, ent_coef=0.5,
                   vf_coef=5.0, policy_lag=2, normalize_advantages=True, reward_scale=10.0,
                   off_policy_correction=False),
    "pqn": dict(learning_rate=1e-2, anneal_lr=True, adam_eps=0.1, max_grad_norm=0.01, gamma=0.5, td_lambda=0.1,
                eps_start=0.5, eps_end=0.5, eps_decay_fraction=0.9, reward_scale=10.0),
    "sac": dict(learning_rate=1e-4, anneal_lr=True, adam_eps=0.1, max_grad_norm=0.01, gamma=0.5, reward_scale=10.0,
                learning_starts=16, tau=0.5, target_entropy_per_dim=3.0),
    "td3": dict(learning_rate=1e-4, anneal_lr=True, adam_eps=0.1, max_grad_norm=0.01, gamma=0.5, reward_scale=10.0,
                learning_starts=16, tau=0.5, exploration_noise=1.0, target_noise=1.0, target_noise_clip=0.01,
                policy_delay=1),
}


def leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def learned_params(agent):
    """What an agent learns: its network's parameters (SAC, TD3: the actor's and the critics')."""
    return agent.params if hasattr(agent, "params") else (agent.actor_params, agent.critic_params)


@pytest.mark.parametrize("algo", list(TINY))
def test_every_traced_field_is_used_and_a_point_equals_its_own_run(algo):
    """One program runs the base point and one point per traced field moved far away: every moved field
    changes the learned parameters (none is silently ignored), and a point equals `train` with its values."""
    base = default_config(algo, ENV.get(algo, "CartPole-v1"), **TINY[algo])
    assert set(FAR[algo]) == base.TRACED, "every traced field has a far value here"
    names = sorted(base.TRACED)
    own = hparams(base)
    points = [own] + [{**own, n: np.asarray(FAR[algo][n], own[n].dtype)} for n in names]
    cfg = base.replace(max_policy_lag=2) if algo == "vtrace" else base
    stacked = {n: np.stack([p[n] for p in points]) for n in names}
    train = jax.jit(jax.vmap(jax.vmap(make_train(cfg), (0, None)), (None, 0)))
    state, metrics = train(seed_keys(0, 2), stacked)  # [P, S, ...]
    params = leaves(learned_params(state.agent))
    for j, n in enumerate(names, start=1):
        moved = any(not np.allclose(p[j], p[0]) for p in params)
        assert moved, f"{algo}: {n} = {FAR[algo][n]} changed nothing"
    # the last point equals a run of the config with that value (same keys: paired); the last, so a
    # reversed or shifted stacking order fails too
    j = len(names)
    n = names[j - 1]
    solo_state, solo_m = jax.jit(jax.vmap(make_train(cfg.replace(**{n: FAR[algo][n]}))))(seed_keys(0, 2))
    # Depends on the CPU beyond rounding: vmapping over points batches the dots (other GEMM shapes, so possibly
    # another summation order, per ISA and XLA version); the first update then differs by float32 reduction order at
    # most, and training amplifies it (no per-op bound). Measured on Zen 4: PPO identical; DQN and V-trace ≤ 2.4e-7
    # absolute on parameters of O(0.1–1) (relative up to 5e-2 only on parameters near 0). atol 2e-5, ~100× that;
    # every traced field moves some parameter by ≥ 2.8e-5 (measured) and a swapped point by far more.
    for a, b in zip(leaves(learned_params(solo_state.agent)), params, strict=True):
        np.testing.assert_allclose(a, b[j], rtol=2e-4, atol=2e-5, err_msg=n)
    np.testing.assert_array_equal(solo_m["episodes"], metrics["episodes"][j])


def test_unknown_and_static_hparams_are_refused():
    train = make_train(default_config("ppo", "CartPole-v1", **TINY["ppo"]))
    with pytest.raises(ValueError, match="num_envs.*shape the program"):
        train(seed_keys(0, 1)[0], {"num_envs": 8})
    with pytest.raises(ValueError, match="gama: not traced"):
        train(seed_keys(0, 1)[0], {"gama": 0.9})


def test_parsing_grids_ranges_and_points():
    cls = type(default_config("ppo"))
    grid = parse_grid(cls, ["learning_rate=1e-4,3e-4", "normalize_advantages=true,false", "hidden_sizes=64x64,32"])
    assert grid == {"learning_rate": [1e-4, 3e-4], "normalize_advantages": [True, False],
                    "hidden_sizes": [(64, 64), (32,)]}
    pts = grid_points(grid)
    assert len(pts) == 8 and pts[0] == {"learning_rate": 1e-4, "normalize_advantages": True, "hidden_sizes": (64, 64)}
    assert parse_grid(type(default_config("dqn")), ["max_grad_norm=none,1"]) == {"max_grad_norm": [None, 1.0]}
    r = [parse_range(cls, "learning_rate=log:1e-5:1e-2"), parse_range(cls, "num_epochs=int:1:8")]
    a, b = random_points(cls, r, 50, seed=3), random_points(cls, r, 50, seed=3)
    assert a == b and all(1e-5 <= p["learning_rate"] <= 1e-2 and 1 <= p["num_epochs"] <= 8 for p in a)
    assert isinstance(a[0]["num_epochs"], int)
    # log-uniform (statistical): the median of n draws has log10 within 5 standard errors, w/(2√n) for a uniform of
    # width w = 3, of −3.5; with n = 2,000 that is 0.17 (a linear-uniform sampler would give −2.3)
    many = random_points(cls, r[:1], 2000, seed=4)
    assert_within(np.median(np.log10([p["learning_rate"] for p in many])), -3.5, 5 * 3 / (2 * np.sqrt(2000)))


@pytest.mark.parametrize("spec,needle", [
    (["learning_rat=1e-3"], "did you mean learning_rate"),
    (["learning_rate=fast"], "learning_rate = 'fast': must be a number"),
    (["num_epochs=1.5"], "num_epochs = '1.5': must be an integer"),
    (["normalize_advantages=maybe"], "must be a boolean"),
    (["learning_rate="], "at least one value"),
])
def test_bad_grid_specs(spec, needle):
    with pytest.raises(SweepError, match=needle):
        parse_grid(type(default_config("ppo")), spec)


def test_plan_validates_every_point_and_groups_static_fields():
    base = default_config("vtrace", "CartPole-v1", **TINY["vtrace"])
    with pytest.raises(SweepError) as e:
        plan_sweep(base, [{"learning_rate": 1e-3}, {"learning_rate": -1.0, "gamma": 2.0}, {"gamme": 0.9}])
    msg = str(e.value)
    assert "point 1 (learning_rate=-1.0, gamma=2.0): learning_rate = -1.0" in msg and "gamma = 2.0" in msg
    assert "point 2: gamme: not a vtrace config field; did you mean gamma" in msg
    with pytest.raises(SweepError, match="no points"):
        plan_sweep(base, [])
    plan = plan_sweep(base, grid_points({"num_envs": [2, 4], "policy_lag": [0, 3], "learning_rate": [1e-3]}))
    assert [g.point_ids for g in plan.groups] == [[0, 1], [2, 3]]
    assert [g.cfg.num_envs for g in plan.groups] == [2, 4]
    assert all(g.traced == ["learning_rate", "policy_lag"] for g in plan.groups)
    assert all(g.cfg.max_policy_lag == 3 for g in plan.groups)  # one ring covers every lag of the group


COUNT_COMPILES = """
import json, logging, sys
import jaxrl_policy
from jaxrl_policy import default_config
from jaxrl_policy.running.sweep import run_sweep
n = 0
class Count(logging.Handler):
    def emit(self, record):
        global n
        n += "Compiling" in record.getMessage() or "compiling" in record.getMessage()
logging.getLogger("jax").addHandler(Count())
base = default_config("vtrace", "CartPole-v1", **json.loads(sys.argv[1]))
run_sweep(base, json.loads(sys.argv[2]), 2, sys.argv[3], progress=None, checkpoint_every_s=None)
print("COMPILES", n)
"""


def compiles(tmp_path, name, points):
    env = {**os.environ, "JAX_LOG_COMPILES": "1"}
    out = subprocess.run([sys.executable, "-c", COUNT_COMPILES, json.dumps(TINY["vtrace"]), json.dumps(points),
                          str(tmp_path / name)], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return int(out.stdout.split("COMPILES")[-1])


def test_traced_points_share_one_compile_and_static_values_do_not(tmp_path):
    one = compiles(tmp_path, "one", [{"policy_lag": 0}])
    three = compiles(tmp_path, "three", [{"policy_lag": 0}, {"policy_lag": 1}, {"policy_lag": 4}])
    assert one == three > 0
    two_static = compiles(tmp_path, "static", [{"num_envs": 2}, {"num_envs": 4}])
    assert two_static > one  # one compile of the loop programs per static value
    lagged = json.loads((tmp_path / "three" / "summary.json").read_text())["runs"]
    assert [r["hparams"]["policy_lag"] for r in lagged] == [0, 1, 4]
    ages = [r["diagnostics"]["data_age"] for r in lagged]
    assert ages[0] < ages[1] < ages[2]  # the lag is real data of the program


def test_batches_give_the_same_results_as_one_program(tmp_path):
    base = default_config("ppo", "CartPole-v1", **TINY["ppo"])
    pts = grid_points({"learning_rate": [1e-4, 1e-3, 3e-3], "ent_coef": [0.0, 0.05]})
    whole = run_sweep(base, pts, 2, tmp_path / "whole", progress=None, checkpoint_every_s=None)["runs"]
    split = run_sweep(base, pts, 2, tmp_path / "split", max_parallel=4, progress=None, checkpoint_every_s=None)["runs"]
    doc = json.loads((tmp_path / "split" / "sweep.json").read_text())
    assert [b["points"] for b in doc["batches"]] == [[0, 1, 2, 3], [4, 5]] and doc["batches"][1]["pad"] == 2
    for a, b in zip(whole, split, strict=True):
        assert a["hparams"] == b["hparams"]
        # CartPole returns are episode lengths: the same actions give the same returns exactly, and one action changed
        # by a rounding difference would change them by far more than any rounding tolerance
        np.testing.assert_array_equal(a["final_return"], b["final_return"])
    # each point folder is a run folder in the usual format, config.json with the point's values
    cfg = json.loads((tmp_path / "split" / "p005" / "config.json").read_text())
    assert (cfg["learning_rate"], cfg["ent_coef"]) == (3e-3, 0.05)


def test_sweep_point_equals_train_run_files(tmp_path):
    base = default_config("dqn", "CartPole-v1", **TINY["dqn"])
    res = run_sweep(base, [{"gamma": 0.9}, {"gamma": 0.99}], 2, tmp_path / "sw", progress=None,
                    checkpoint_every_s=None)["runs"]
    solo = run(base.replace(gamma=0.9), 2, tmp_path / "solo", progress=None, checkpoint_every_s=None)
    np.testing.assert_array_equal(res[0]["final_return"], solo["final_return"])  # integer returns: see above
    rows = [json.loads(x) for x in (tmp_path / "sw" / "p000" / "metrics.jsonl").read_text().splitlines()]
    solo_rows = [json.loads(x) for x in (tmp_path / "solo" / "metrics.jsonl").read_text().splitlines()]
    assert [r["episodes"] for r in rows] == [r["episodes"] for r in solo_rows]


def test_cli_sweep_report_and_tuned_compare(tmp_path, capsys):
    out = tmp_path / "sw"
    main(["sweep", "--algo", "ppo", "--grid", "learning_rate=1e-4,3e-3", "--seeds", "2", "--out", str(out),
          "--quiet", "--total-timesteps", "512", "--num-envs", "4", "--num-steps", "32", "--num-chunks", "2"])
    printed = capsys.readouterr().out
    assert "★" in printed and "learning_rate" in printed
    runs = json.loads((out / "summary.json").read_text())["runs"]
    assert [r["hparams"] for r in runs] == [{"learning_rate": 1e-4}, {"learning_rate": 3e-3}]
    assert (out / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    main(["report", str(out), "--out", str(tmp_path / "rep")])  # a sweep folder reports as is
    assert "★" in (tmp_path / "rep" / "summary.md").read_text()
    main(["compare", "--tuned", str(out), "--seeds", "1", "--out", str(tmp_path / "cmp"), "--quiet"])
    best = max(range(2), key=lambda i: runs[i]["final_return_iqm"] or -1e9)
    cfg = json.loads((tmp_path / "cmp" / "ppo" / "config.json").read_text())
    assert cfg["learning_rate"] == runs[best]["hparams"]["learning_rate"] and cfg["total_timesteps"] == 512


@pytest.mark.parametrize("argv,needle", [
    (["--grid", "gama=0.9"], "did you mean gamma"),
    (["--grid", "learning_rate=abc"], "learning_rate = 'abc'"),
    (["--grid", "learning_rate=1e-3,-1"], "point 1 (learning_rate=-1.0): learning_rate = -1.0: must be"),
    (["--grid", "learning_rate="], "at least one value"),
    ([], "exactly one of --grid"),
    (["--random", "3"], "--range"),
    (["--algo", "dqn", "--grid", "buffer_size=1000,2000000000"], "does not fit on the device"),
    (["--points", "/nonexistent.json"], "cannot be read"),
    (["--grid", "learning_rate=1e-3", "--max-parallel", "0"], "--max-parallel = 0"),
])
def test_bad_sweep_input_exits_2_before_compiling(argv, needle, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["sweep", *argv, "--out", str(tmp_path / "x"), "--quiet"])
    assert e.value.code == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "x" / "p000").exists()
