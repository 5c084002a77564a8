"""Smoke test of the throughput benchmark (no speed thresholds: timings depend on the machine)."""
import json

from jaxrl_policy.bench import main

POSITIVE = ("compile_s", "train_env_steps_per_s_max", "train_env_steps_per_s_median", "raw_env_steps_per_s",
            "acting_only", "learning_only", "combined", "pct_of_combined")


def test_bench_quick_writes_json_and_table(tmp_path, capsys):
    out = tmp_path / "b.json"
    main(["--quick", "--algos", "ppo", "--out", str(out)])
    doc = json.loads(out.read_text())
    for k in ("cpu", "cores", "jax", "jaxlib", "device_kind", "xla_flags"):
        assert k in doc["machine"]
    assert doc["machine"]["cores"] >= 1
    assert "date" in doc and doc["command"].startswith("jaxrl-policy bench")
    (r,) = doc["results"]
    assert (r["algo"], r["env"], r["num_envs"], r["num_steps"], r["seeds"]) == ("ppo", "CartPole-v1", 4, 128, 1)
    assert r["total_timesteps"] == 20_000
    for k in POSITIVE:
        assert isinstance(r[k], (int, float)) and r[k] > 0, (k, r[k])
    assert r["train_env_steps_per_s_max"] >= r["train_env_steps_per_s_median"]
    assert r["combined"] <= min(r["acting_only"], r["learning_only"])
    assert not any(k.startswith("peer_") for k in r)  # no --peers given
    table = capsys.readouterr().out
    assert "| algo |" in table and "| ppo | 4×128 |" in table


def test_plan_times_the_ppo_equal_vtrace_config_once():
    from jaxrl_policy.bench import PPO_EQUAL_VTRACE, build_parser, plan
    items = plan(build_parser().parse_args(["--algos", "ppo", "vtrace"]))
    cfgs = [c for _, c in items]
    assert len(cfgs) == len(set(cfgs)) == 6  # ppo and vtrace at 4, 64, 1024 envs; no duplicate
    (eq,) = [c for t, c in items if t.get("variant") == "ppo_equal"]
    assert (eq.algo, eq.num_envs, eq.num_steps) == ("vtrace", 4, 128)
    assert all(getattr(eq, k) == v for k, v in PPO_EQUAL_VTRACE.items())
    # when no planned row matches, the ppo-equal row is added
    items = plan(build_parser().parse_args(["--algos", "ppo", "vtrace", "--num-envs", "64"]))
    assert [t.get("variant") for t, _ in items] == [None, None, "ppo_equal"]
