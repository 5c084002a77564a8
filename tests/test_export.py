"""Trained policies that leave the framework: `jaxrl-policy export`, `jaxrl_policy.load_policy`, bad exports."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from jaxrl_policy.cli.main import main

RUN = ["--seeds", "2", "--eval-episodes", "4", "--quiet"]  # (checkpointed at the end: export reads it)


def trained(tmp_path, name, *args):
    d = tmp_path / name
    main(["train", *args, *RUN, "--out", str(d)])
    return d, json.loads((d / "summary.json").read_text())


def verified(capsys, folder):
    capsys.readouterr()
    main(["export", "--verify", str(folder)])
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.parametrize("algo,extra", [
    ("ppo", ["--total-timesteps", "4096", "--hidden-sizes", "16", "16"]),
    ("dqn", ["--total-timesteps", "3000", "--learning-starts", "500", "--hidden-sizes", "16"]),
    ("ppo", ["--total-timesteps", "4096", "--torso", "gru", "--rnn-size", "8", "--hidden-sizes", "16"]),
    ("ppo", ["--env", "Pendulum-v1", "--total-timesteps", "4000", "--num-envs", "10", "--hidden-sizes", "16"]),
    ("pqn", ["--total-timesteps", "4096", "--hidden-sizes", "16", "--layer-norm"]),
    ("sac", ["--env", "Pendulum-v1", "--total-timesteps", "600", "--learning-starts", "300", "--hidden-sizes", "16"]),
    ("td3", ["--env", "Pendulum-v1", "--total-timesteps", "600", "--learning-starts", "300", "--hidden-sizes", "16"]),
])
def test_the_loaded_policy_reproduces_the_runs_final_evaluation(tmp_path, capsys, algo, extra):
    """The exported greedy policy of seed 1, replayed on the run's evaluation episodes, returns exactly the
    run's final evaluation of that seed (same network, parameters, statistics and episodes)."""
    run, summary = trained(tmp_path, "run", "--algo", algo, *extra)
    main(["export", str(run), "--out", str(tmp_path / "pol"), "--seed-index", "1"])
    manifest = json.loads((tmp_path / "pol" / "manifest.json").read_text())
    assert manifest["source"]["seed"] == summary["seeds"][1] and manifest["package_version"]
    got, want = verified(capsys, tmp_path / "pol")["eval_return"], summary["final_eval_return"][1]
    if algo in ("sac", "td3"):  # the actor's tanh-scaled output fuses differently inside the training program
        assert got == pytest.approx(want, rel=1e-6, abs=1e-4)  # (float rounding over 200 steps: ~1e-4 of ~1e3)
    else:
        assert got == want


def test_a_fresh_process_loads_and_acts_without_the_training_code(tmp_path):
    run, _ = trained(tmp_path, "run", "--algo", "ppo", "--total-timesteps", "4096", "--hidden-sizes", "16", "16")
    main(["export", str(run), "--out", str(tmp_path / "pol")])
    code = ("import sys, numpy as np, jax, jaxrl_policy\n"
            f"p = jaxrl_policy.load_policy({str(tmp_path / 'pol')!r})\n"
            "a = jax.jit(p)(np.zeros((5, 4), np.float32))\n"
            "print(a.shape, a.dtype)\n"
            "print(sorted(m for m in sys.modules if m.startswith('jaxrl_policy.')))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=os.environ)
    assert r.returncode == 0, r.stderr[-2000:]
    shape_line, modules = r.stdout.strip().splitlines()[-2:]
    assert shape_line == "(5,) int32"
    floors = {m.split(".")[1] for m in eval(modules)}
    assert floors <= {"core", "io", "_version", "_xla_flags"}, floors  # no loop, algorithms, run, results, cli


def test_bad_exports_exit_2_naming_the_file_and_the_reason(tmp_path, capsys):
    run, _ = trained(tmp_path, "run", "--algo", "ppo", "--total-timesteps", "4096", "--hidden-sizes", "16", "16")
    good = tmp_path / "pol"
    main(["export", str(run), "--out", str(good)])

    def fails(argv, *needles):
        with pytest.raises(SystemExit) as e:
            main(argv)
        err = capsys.readouterr().err
        assert e.value.code == 2, err
        for n in needles:
            assert n in err, (n, err)

    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "manifest.json").write_text((good / "manifest.json").read_text())
    raw = (good / "params.msgpack").read_bytes()
    (cut / "params.msgpack").write_bytes(raw[: len(raw) // 2])
    fails(["export", "--verify", str(cut)], "params.msgpack", "truncated")
    old = tmp_path / "old"
    old.mkdir()
    (old / "params.msgpack").write_bytes(raw)
    m = json.loads((good / "manifest.json").read_text())
    (old / "manifest.json").write_text(json.dumps({**m, "version": 99, "package_version": "9.9.9"}))
    fails(["export", "--verify", str(old)], "format version 99", "9.9.9", "export the run again")
    fails(["export", "--verify", str(tmp_path / "run")], "not an exported policy")
    for name, change, needle in (("wide", {"kwargs": {**m["kwargs"], "hidden_sizes": [32, 32]}}, "do not fit"),
                                 ("alien", {"network": "Transformer"}, "not a network of this package")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "params.msgpack").write_bytes(raw)
        (tmp_path / name / "manifest.json").write_text(json.dumps({**m, **change}))
        fails(["export", "--verify", str(tmp_path / name)], needle)
    fails(["export", str(run), "--out", ""], "--out")
    fails(["export", str(run), "--out", str(good)], "already holds an export")
    fails(["export", str(tmp_path / "nope"), "--out", str(tmp_path / "x")], "no such folder")
    fails(["export", str(run), "--out", str(tmp_path / "y"), "--seed-index", "5"], "seed index 5")
    assert np.isfinite(verified(capsys, good)["eval_return"])
