"""The library's bench (time your own config) and the project's benchmark harness (benchmarks/).

No speed thresholds: timings depend on the machine. These check what the numbers mean.
"""
import importlib.util
import json
import sys
from pathlib import Path

import pytest
from tolerance import U32, assert_within, gamma

from jaxrl_policy import default_config
from jaxrl_policy.cli import bench as cli_bench
from jaxrl_policy.cli.bench import bench_main as main
from jaxrl_policy.cli.main import main as cli_main
from jaxrl_policy.running.bench import learning_fraction

ROOT = Path(__file__).resolve().parents[1]


def harness(name="throughput"):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses (flax modules) look their module up there
    spec.loader.exec_module(mod)
    return mod


def test_bench_quick_writes_json_and_table(tmp_path, capsys):
    out = tmp_path / "b.json"
    main(["--quick", "--algos", "ppo", "--out", str(out)])
    doc = json.loads(out.read_text())
    for k in ("cpu", "cores", "jax_version", "jaxlib_version", "device_kind", "xla_flags", "git"):
        assert k in doc["machine"], k
    assert "date" in doc and doc["command"].startswith("jaxrl-policy bench")
    (r,) = doc["results"]
    assert (r["algo"], r["env"], r["num_envs"], r["num_steps"], r["seeds"]) == ("ppo", "CartPole-v1", 4, 128, 1)
    assert r["total_timesteps"] == 20_000
    # the derived columns are what they say they are
    f = r["learn_fraction"]
    assert f == 1.0
    assert r["combined"] == pytest.approx(1 / (1 / r["acting_only"] + f / r["learning_only"]), rel=1e-3)
    assert r["pct_of_combined"] == pytest.approx(100 * r["train_env_steps_per_s_max"] / r["combined"], abs=0.1)
    steps = r["num_iterations"] * 4 * 128
    assert r["train_env_steps_per_s_max"] == pytest.approx(steps / r["train_s_min"], rel=1e-3)
    assert not any(k.startswith("peer_") for k in r)
    table = capsys.readouterr().out
    assert "| algo |" in table and "| ppo | 4×128 | 1 |" in table


def test_learning_fraction_counts_the_iterations_before_learning_starts():
    cfg = default_config("dqn", "CartPole-v1", learning_starts=10_000, total_timesteps=100_000)
    # 10 env steps per iteration: iterations 1..999 collect < 10,000 steps and do not learn
    assert learning_fraction(cfg) == pytest.approx((10_000 - 999) / 10_000)
    assert learning_fraction(default_config("ppo", "CartPole-v1")) == 1.0


def test_peers_flag_runs_the_project_harness(monkeypatch, tmp_path):
    called = []
    monkeypatch.setattr("runpy.run_path", lambda path, run_name: called.append((path, run_name)))
    cli_main(["bench", "--peers", str(tmp_path)])
    assert called == [(str(ROOT / "benchmarks" / "throughput.py"), "__main__")]
    monkeypatch.setattr(cli_bench, "project_benchmark", lambda: None)  # an installed package has no benchmarks/
    with pytest.raises(SystemExit) as e:
        cli_main(["bench", "--peers", str(tmp_path)])
    assert e.value.code == 2


def test_harness_times_the_ppo_equal_vtrace_config_once():
    h = harness()
    items = h.plan(h.build_parser().parse_args(["--algos", "ppo", "vtrace"]))
    cfgs = [c for _, c in items]
    assert len(cfgs) == len(set(cfgs)) == 6  # ppo and vtrace at 4, 64, 1024 envs; no duplicate
    (eq,) = [c for t, c in items if t.get("variant") == "ppo_equal"]
    assert (eq.algo, eq.num_envs, eq.num_steps) == ("vtrace", 4, 128)
    assert all(getattr(eq, k) == v for k, v in h.PPO_EQUAL_VTRACE.items())
    items = h.plan(h.build_parser().parse_args(["--algos", "ppo", "vtrace", "--num-envs", "64"]))
    assert [t.get("variant") for t, _ in items] == [None, None, "ppo_equal"]


def test_harness_reads_targets_off_the_ratios():
    h = harness()
    rows = [dict(algo="ppo", num_envs=4, num_steps=128, total_timesteps=1, train_env_steps_per_s_max=300,
                 train_env_steps_per_s_median=290, combined=310, peer_purejaxrl_env_steps_per_s=250,
                 peer_ceiling_combined=330),
            dict(algo="dqn", num_envs=10, num_steps=1, total_timesteps=1, train_env_steps_per_s_max=90,
                 train_env_steps_per_s_median=88, combined=100, peer_purejaxrl_env_steps_per_s=95),
            dict(algo="vtrace", variant="ppo_equal", num_envs=4, num_steps=128, total_timesteps=1,
                 train_env_steps_per_s_max=240, train_env_steps_per_s_median=230, combined=260)]
    for r in rows:
        h.add_peer_ratios(r)
    h.vtrace_vs_ppo(rows)
    got = [(t["value"], t["met"]) for t in h.check_targets(rows)]
    assert rows[0]["vs_purejaxrl"] == 1.2 and rows[0]["pct_of_peer_combined"] == pytest.approx(90.9)
    assert got == [(1.2, True),  # ppo ÷ purejaxrl >= 1.0
                   (90.9, False),  # ppo % of the peer ceiling, below 95%
                   (0.947, False),  # dqn ÷ purejaxrl below 1.0
                   (1.25, False)]  # V-trace takes 1.25× PPO's time per env step (> 1.2)


def test_conv_benchmark_feeds_each_step_its_own_minibatch():
    """benchmarks/conv.py's scanned programs see a new input and cotangent every step, as training
    does (one input for all steps let XLA hoist the patches out of the loop and flattered the
    conv); every variant computes nn.Conv's values."""
    import jax
    import jax.numpy as jnp

    conv = harness("conv")
    FEATURES = conv.FEATURES
    mods = conv.modules(4, 4, (8,))
    conv.check_same_values(mods)
    module, shape = mods["conv patches"]
    fn, (params, xs, cts) = conv.program(module, shape, backward=True, wrt_input=False, steps=3)
    assert xs.shape == (3, *shape) and cts.shape[0] == 3
    assert not bool(jnp.array_equal(xs[0], xs[1])) and not bool(jnp.array_equal(cts[0], cts[1]))
    final, sums = fn(params, xs, cts)
    p = params
    # float32 bounds between the scanned program and this replay (tests/tolerance.py): y = conv(x, K) + b sums
    # 9C + 1 terms on each side (2γ·(conv(|x|, |K|) + |b|), nn.Conv at |·| gives it) plus the parameters'
    # difference dp through conv(|x|, ·); Σy adds 2γ_n·Σ|y| over its n elements. The update p − 10⁻⁶·g rounds
    # within u|p'| on each side; g = VJP(x, ct) sums the N·H·W positions, off by 2γ·VJP(|x|, |ct|), times 10⁻⁶
    ref = mods["conv xla"][0]
    dp = jax.tree.map(jnp.zeros_like, params)
    for i in range(3):  # replay the steps by hand: step i sums module(x_i) under the params of step i
        y, vjp = jax.vjp(lambda q, x=xs[i]: module.apply(q, x), p)
        absx, absp = jnp.abs(xs[i]), jax.tree.map(jnp.abs, p)
        dy = 2 * gamma(9 * shape[-1] + 1) * ref.apply(absp, absx) + ref.apply(dp, absx)
        assert_within(sums[i], jnp.sum(y), 2 * gamma(y.size) * jnp.sum(jnp.abs(y)) + jnp.sum(dy))
        g = vjp(cts[i])[0]
        g_terms = jax.vjp(lambda q, x=absx: ref.apply(q, x), absp)[1](jnp.abs(cts[i]))[0]
        p = jax.tree.map(lambda a, b: a - 1e-6 * b, p, g)
        m = y.size // FEATURES  # positions summed by the weight gradient (+1: the ×10⁻⁶)
        dp = jax.tree.map(lambda d, a, t, m=m: d + 2 * U32 * jnp.abs(a) + 1e-6 * 2 * gamma(m + 1) * t, dp, p, g_terms)
    jax.tree.map(assert_within, final, p, dp)
    # --profile: one step split by the compiled program's own XLA operations
    ops = conv.profile(fn, (params, xs, cts), steps=3, runs=1)
    text = fn.as_text()
    assert ops and all(o["ms_per_step"] >= 0 and f"%{o['op']} = " in text for o in ops), ops
