"""The command line: run folders and their contract, bad input, compare, report."""
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from jaxrl_policy.cli.main import main

SUMMARY_FIELDS = ("algo", "env", "seeds", "total_timesteps", "final_return", "final_return_iqm",
                  "final_return_ci", "env_steps_per_s", "compile_s", "wall_s")
TINY_PPO = ["--total-timesteps", "2048", "--num-envs", "4", "--num-steps", "32", "--num-chunks", "3"]


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_train_writes_the_contract(tmp_path, capsys):
    out = tmp_path / "run"
    main(["train", "--algo", "ppo", "--env", "CartPole-v1", "--seeds", "2", "--out", str(out), *TINY_PPO,
          "--learning-rate", "1e-3"])
    printed = capsys.readouterr().out
    assert "chunk 3/3" in printed and "steps/s" in printed and "ETA" in printed  # a progress line per chunk

    cfg = json.loads((out / "config.json").read_text())
    assert cfg["algo"] == "ppo" and cfg["env_id"] == "CartPole-v1" and cfg["seeds"] == [0, 1]
    assert cfg["learning_rate"] == 1e-3 and cfg["num_envs"] == 4 and cfg["total_timesteps"] == 2048

    s = json.loads((out / "summary.json").read_text())
    assert all(k in s for k in SUMMARY_FIELDS)
    assert s["algo"] == "ppo" and s["env"] == "CartPole-v1" and s["seeds"] == [0, 1]
    # None where a seed had no episode end in the last 5% of this tiny budget (JSON has no NaN)
    assert len(s["final_return"]) == 2 and all(r is None or r > 0 for r in s["final_return"])
    if None not in s["final_return"]:
        lo, hi = s["final_return_ci"]
        assert lo <= s["final_return_iqm"] <= hi
    assert s["env_steps_per_s"] > 0 and s["compile_s"] > 0 and s["wall_s"] >= s["compile_s"]

    rows = read_jsonl(out / "metrics.jsonl")
    assert {r["seed"] for r in rows} == {0, 1}
    steps = [r["env_steps"] for r in rows if r["seed"] == 0]
    assert steps == sorted(steps) and steps[-1] == 2048
    assert {"episode_return", "episode_length", "loss", "grad_norm", "data_age", "ratio_mean", "policy_kl",
            "grad_steps", "wall_s"} <= set(rows[0])


def test_bad_input_names_every_field_before_compiling(tmp_path, capsys):
    out = tmp_path / "bad"
    t = time.perf_counter()
    with pytest.raises(SystemExit) as e:
        main(["train", "--algo", "ppo", "--out", str(out), "--gamma", "1.5", "--num-minibatches", "3",
              "--learning-rate", "-1"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    for text in ("gamma", "1.5", "[0, 1]", "num_minibatches", "3", "learning_rate", "-1"):
        assert text in err, text
    assert not out.exists() and time.perf_counter() - t < 5


@pytest.mark.parametrize("argv,needle", [
    (["train", "--env", "CartPole-v9"], "CartPole-v1"),       # unknown env: suggests the close id
    (["train", "--algo", "ppq"], "ppo"),                      # unknown algorithm
    (["train", "--seeds", "0"], "--seeds"),
    # compare and bench apply a config flag to every algorithm: it must be a field of each
    (["compare", "--algos", "ppo", "dqn", "--clip-eps", "0.1"], "--clip-eps: not a config field of dqn"),
    (["compare", "--hidden-size", "64"], "did you mean --hidden-sizes"),
    (["compare", "--tuned", "sweeps/ppo", "--torso", "mlp"], "--tuned"),
    (["bench", "--algos", "ppo", "dqn", "--clip-eps", "0.1"], "--clip-eps: not a config field of dqn"),
    (["fly"], "train"),
])
def test_bad_arguments_exit_2(argv, needle, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert needle in capsys.readouterr().err


def test_compare_writes_summary_table_and_plot(tmp_path, capsys):
    out = tmp_path / "cmp"
    main(["compare", "--algos", "ppo", "dqn", "vtrace", "--seeds", "2", "--total-timesteps", "12000",
          "--out", str(out), "--quiet", "--hidden-sizes", "32", "32", "--activation", "relu"])
    printed = capsys.readouterr().out
    runs = json.loads((out / "summary.json").read_text())["runs"]
    assert [r["algo"] for r in runs] == ["ppo", "dqn", "vtrace"]
    for algo in ("ppo", "dqn", "vtrace"):  # config flags shared by all algorithms apply to each
        cfg = json.loads((out / algo / "config.json").read_text())
        assert (cfg["hidden_sizes"], cfg["activation"]) == ([32, 32], "relu"), algo
    for r in runs:
        assert all(k in r for k in SUMMARY_FIELDS) and r["total_timesteps"] == 12000 and r["seeds"] == [0, 1]
        assert all(math.isfinite(x) for x in r["final_return"])
        assert (out / r["algo"] / "metrics.jsonl").exists()
    md = (out / "summary.md").read_text()
    assert "IQM" in md and all(a in md for a in ("ppo", "dqn", "vtrace")) and md.strip() in printed
    png = (out / "returns.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000

    # `report` rebuilds the same table from the run folders
    main(["report", str(out / "ppo"), str(out / "dqn"), "--out", str(tmp_path / "rep")])
    rep = json.loads((tmp_path / "rep" / "summary.json").read_text())["runs"]
    assert [r["final_return"] for r in rep] == [runs[0]["final_return"], runs[1]["final_return"]]


def test_same_seed_same_numbers(tmp_path):
    """Two CLI runs with the same seed give bit-identical metrics (same program, same device count)."""
    def once(d):
        main(["train", "--algo", "vtrace", "--out", str(d), "--quiet", "--total-timesteps", "4096",
              "--policy-lag", "2", "--replay-capacity", "2", "--replay-ratio", "2"])
        rows = read_jsonl(d / "metrics.jsonl")
        return np.array([[r[k] for k in ("env_steps", "episode_return", "loss", "ratio_mean")] for r in rows])
    np.testing.assert_array_equal(once(tmp_path / "a"), once(tmp_path / "b"))


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "jaxrl-policy"
    r = subprocess.run([str(script), "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "train" in r.stdout and "compare" in r.stdout


@pytest.mark.parametrize("command", ["train", "compare", "sweep"])
def test_run_help_lists_every_algorithm_and_preset(command, capsys):
    """The run-level help is filled from the registry and the presets (it once listed ppo, dqn, vtrace only)."""
    from jaxrl_policy.algorithms.presets import preset_names
    from jaxrl_policy.running.build import algorithm_names
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.lstrip().startswith("--algo"))
    assert all(a in line for a in algorithm_names()), line
    assert all(p in out for p in preset_names())
