"""Reliability: run folders never lose data, divergence is never silent, checkpoints survive damage.

The issue's three reproductions come first: training into a finished run folder, an unwritable
``--out``, and PPO at learning rate 1e9.
"""
import json
import time

import pytest

from jaxrl_policy.cli import main

TINY_PPO = ["--total-timesteps", "512", "--num-envs", "4", "--num-steps", "32", "--num-chunks", "2",
            "--eval-episodes", "0", "--hidden-sizes", "16", "--num-epochs", "1", "--num-minibatches", "2"]


def fake_finished_run(d):
    d.mkdir(parents=True)
    for name, doc in (("config.json", {"algo": "ppo"}), ("summary.json", {"algo": "ppo", "final_return": [1.0]})):
        (d / name).write_text(json.dumps(doc))
    (d / "metrics.jsonl").write_text('{"seed": 0, "iteration": 1}\n')


def test_existing_run_folder_is_refused_before_compiling(tmp_path, capsys):
    """(a) train --out DIR into a finished run: exit 2 naming DIR, nothing touched."""
    d = tmp_path / "done"
    fake_finished_run(d)
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    t = time.perf_counter()
    with pytest.raises(SystemExit) as e:
        main(["train", "--out", str(d), "--quiet", *TINY_PPO])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert str(d) in err and "--resume" in err and "--overwrite" in err
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before
    assert time.perf_counter() - t < 10  # refused before compiling


@pytest.mark.parametrize("where", ["under_a_file", "proc"])
def test_unwritable_out_is_a_clear_error_before_compiling(tmp_path, capsys, where):
    """(b) --out where nothing can be written: exit 2 naming the folder, no traceback."""
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" / "run" if where == "under_a_file" else "/proc/jaxrl-policy-run"
    t = time.perf_counter()
    with pytest.raises(SystemExit) as e:
        main(["train", "--out", str(out), "--quiet", *TINY_PPO])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert str(out) in err and "Traceback" not in err
    assert time.perf_counter() - t < 10


def test_divergence_stops_the_run_and_exits_3(tmp_path, capsys):
    """(c) PPO at learning rate 1e9: the loss explodes in the first iteration; the run stops after that
    chunk, says where and what, and the summary says diverged."""
    d = tmp_path / "lr1e9"
    with pytest.raises(SystemExit) as e:
        main(["train", "--out", str(d), "--quiet", "--seeds", "2", "--learning-rate", "1e9",
              "--checkpoint-every", "1e-9", *TINY_PPO])
    assert e.value.code == 3
    err = capsys.readouterr().err
    assert "diverged" in err and "iteration 1" in err and "loss" in err and "seed 0" in err
    s = json.loads((d / "summary.json").read_text())
    assert s["status"] == ["diverged", "diverged"]
    assert s["divergence"][0]["quantity"] == "loss" and s["divergence"][0]["iteration"] == 1
    assert s["env_steps_done"] == 128 * 2 and not s["complete"]  # stopped after chunk 1 of 2
    assert not (d / "checkpoints").exists()  # the diverged state is never checkpointed
