"""Reliability: run folders never lose data, divergence is never silent, checkpoints survive damage.

The issue's three reproductions come first: training into a finished run folder, an unwritable
``--out``, and PPO at learning rate 1e9.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import FULL_ONLY

import jaxrl_policy
from jaxrl_policy.cli.main import main
from jaxrl_policy.io import rundir
from jaxrl_policy.io.checkpoint import complete, latest
from jaxrl_policy.io.rundir import (
    FAULT_ENV,
    LOCK,
    MIN_FREE_BYTES,
    RunFolderError,
    acquire_lock,
    check_writable,
    open_run_folder,
    space_needed,
)
from jaxrl_policy.io.runfolder import truncate_metrics
from jaxrl_policy.loop.common import nonfinite
from jaxrl_policy.running.divergence import DivergenceGuard, find_divergence

TINY_PPO = ["--total-timesteps", "512", "--num-envs", "4", "--num-steps", "32", "--num-chunks", "2",
            "--eval-episodes", "0", "--hidden-sizes", "16", "--num-epochs", "1", "--num-minibatches", "2"]


def fake_finished_run(d):
    d.mkdir(parents=True)
    for name, doc in (("config.json", {"algo": "ppo"}), ("summary.json", {"algo": "ppo", "final_return": [1.0]})):
        (d / name).write_text(json.dumps(doc))
    (d / "metrics.jsonl").write_text('{"seed": 0, "iteration": 1}\n')


@pytest.fixture
def no_compile(monkeypatch):
    """Fail a test that reaches the runner's compile step."""
    import jaxrl_policy.running.programs as runner

    def compiled(*a, **k):
        raise AssertionError("compiled: the error should have come before compiling")

    monkeypatch.setattr(runner, "programs", compiled)


def test_existing_run_folder_is_refused_before_compiling(tmp_path, capsys, no_compile):
    """(a) train --out DIR into a finished run: exit 2 naming DIR, nothing touched."""
    d = tmp_path / "done"
    fake_finished_run(d)
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    with pytest.raises(SystemExit) as e:
        main(["train", "--out", str(d), "--quiet", *TINY_PPO])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert str(d) in err and "--resume" in err and "--overwrite" in err
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before


@pytest.mark.parametrize("where", ["under_a_file", "proc"])
def test_unwritable_out_is_a_clear_error_before_compiling(tmp_path, capsys, where, no_compile):
    """(b) --out where nothing can be written: exit 2 naming the folder, no traceback."""
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" / "run" if where == "under_a_file" else "/proc/jaxrl-policy-run"
    with pytest.raises(SystemExit) as e:
        main(["train", "--out", str(out), "--quiet", *TINY_PPO])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert str(out) in err and "Traceback" not in err


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


# ---------------------------------------------------------------------------------------------
# crash tests: SIGKILL during a chunk, then during a checkpoint write, then resume to the end
# ---------------------------------------------------------------------------------------------
ROOT = str(Path(jaxrl_policy.__file__).resolve().parents[1])  # the checkout under test, for subprocesses
CRASH_CFG = {  # a few hundred env steps in 5 chunks of one iteration each
    "ppo": ["--num-envs", "4", "--num-steps", "32", "--total-timesteps", "640", "--num-epochs", "1",
            "--num-minibatches", "2"],
    "dqn": ["--num-envs", "4", "--num-steps", "16", "--total-timesteps", "320", "--learning-starts", "64",
            "--buffer-size", "256", "--batch-size", "16", "--replay-ratio", "0.0625", "--target-update-interval", "64"],
    "vtrace": ["--num-envs", "4", "--num-steps", "32", "--total-timesteps", "640", "--policy-lag", "1",
               "--replay-capacity", "2", "--replay-ratio", "2", "--num-minibatches", "2"],
    "pqn": ["--num-envs", "4", "--num-steps", "32", "--total-timesteps", "640", "--num-epochs", "1",
            "--num-minibatches", "2"],
    "sac": ["--env", "Pendulum-v1", "--num-envs", "4", "--num-steps", "16", "--total-timesteps", "320",
            "--learning-starts", "64", "--buffer-size", "256", "--batch-size", "16", "--replay-ratio", "0.0625"],
    "td3": ["--env", "Pendulum-v1", "--num-envs", "4", "--num-steps", "16", "--total-timesteps", "320",
            "--learning-starts", "64", "--buffer-size", "256", "--batch-size", "16", "--replay-ratio", "0.0625"],
}
DRIVER = """
import json, os, sys
from jaxrl_policy.cli.main import main
for argv, fault in json.loads(sys.argv[1]):
    os.environ.pop("JAXRL_POLICY_FAULT", None)
    if fault:
        os.environ["JAXRL_POLICY_FAULT"] = fault
    main(argv)  # several runs in one process share its compiled programs
"""


def _env(tmp_path):
    env = {**os.environ, "PYTHONPATH": ROOT, "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "jax-cache"),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}
    env.pop(FAULT_ENV, None)
    return env


def _kill_at(argvs, env, marker, delay):
    """Run ``[(argv, fault)]`` in one driver process, wait for the fault hook's marker on stderr and
    SIGKILL the process ``delay`` s later."""
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, json.dumps(argvs)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    seen = []
    assert proc.stderr is not None
    for line in proc.stderr:
        seen.append(line)
        if line.strip() == marker:
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "".join(seen)
    return "".join(seen)


def _rows(d):
    lines = (d / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(x).items() if k != "wall_s"} for x in lines]


# CI kills DQN (its checkpoint holds the replay buffer, the largest state); JAXRL_FULL=1 all of them
@pytest.mark.parametrize("algo", [a if a == "dqn" else pytest.param(a, marks=FULL_ONLY) for a in CRASH_CFG])
def test_sigkill_during_a_chunk_and_a_checkpoint_then_resume_is_bit_identical(tmp_path, algo):
    rng = np.random.default_rng(list(CRASH_CFG).index(algo))
    k1 = int(rng.integers(2, 4))  # killed while chunk k1 computes: chunks 1..k1-1 checkpointed
    k2 = int(rng.integers(k1 + 1, 5))  # then killed inside the checkpoint write of chunk k2
    d1, d2 = rng.uniform(0.0, 0.5, 2)  # the moment, within the pause
    common = ["train", "--algo", algo, *CRASH_CFG[algo], "--num-chunks", "5", "--eval-episodes", "0",
              "--hidden-sizes", "16", "--quiet", "--checkpoint-every", "1e-9"]  # a checkpoint after every chunk
    ref, d = tmp_path / "ref", tmp_path / "run"

    _kill_at([(common + ["--out", str(ref)], None), (common + ["--out", str(d)], f"chunk:{k1}:60")], _env(tmp_path),
             f"{FAULT_ENV} chunk {k1}", d1)
    assert (ref / "summary.json").exists() and not (d / "summary.json").exists()
    assert latest(d).name == f"chunk_{k1 - 1:06d}"

    err = _kill_at([(["train", "--resume", str(d), "--quiet", "--checkpoint-every", "1e-9"], f"checkpoint:{k2}:60")],
                   _env(tmp_path), f"{FAULT_ENV} checkpoint {k2}", d2)
    assert "taking over the lock" in err and "process gone" in err  # the first process's lock
    assert latest(d).name == f"chunk_{k2 - 1:06d}"  # the half-written chunk k2 is not complete
    assert not (d / "checkpoints" / f"chunk_{k2:06d}" / "meta.json").exists()

    r = subprocess.run([sys.executable, "-m", "jaxrl_policy.cli", "train", "--resume", str(d), "--quiet",
                        "--checkpoint-every", "1e-9"], env=_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    a, b = json.loads((ref / "summary.json").read_text()), json.loads((d / "summary.json").read_text())
    assert b["agent_sha256"] == a["agent_sha256"] and b["final_return"] == a["final_return"]
    assert b["status"] == ["ok"] and b["complete"]
    rows = _rows(d)
    assert rows == _rows(ref)  # no line lost, none duplicated, every number equal
    assert len({(x["seed"], x["iteration"]) for x in rows}) == len(rows) == 5


# ---------------------------------------------------------------------------------------------
# run folders: refusal, overwrite, the lock, atomic files, space
# ---------------------------------------------------------------------------------------------
def test_overwrite_removes_the_old_run_and_keeps_other_files(tmp_path):
    d = tmp_path / "old"
    fake_finished_run(d)
    (d / "checkpoints" / "chunk_000001").mkdir(parents=True)
    (d / "notes.txt").write_text("mine")
    with pytest.raises(RunFolderError, match="already holds a finished run"):
        with open_run_folder(d):
            pass
    with open_run_folder(d, overwrite=True):
        assert sorted(p.name for p in d.iterdir()) == [LOCK, "notes.txt"]
    assert sorted(p.name for p in d.iterdir()) == ["notes.txt"]  # the lock goes with the run
    with pytest.raises(SystemExit) as e:
        main(["train", "--out", str(d), "--resume", str(d), "--overwrite"])
    assert e.value.code == 2


def test_compare_and_sweep_refuse_existing_folders(tmp_path, capsys, no_compile):
    cmp = tmp_path / "cmp"
    fake_finished_run(cmp / "dqn")  # a compare whose dqn run finished
    with pytest.raises(SystemExit) as e:
        main(["compare", "--algos", "ppo", "dqn", "--out", str(cmp), "--quiet", "--total-timesteps", "20000"])
    assert e.value.code == 2 and str(cmp) in capsys.readouterr().err
    assert (cmp / "dqn" / "summary.json").exists()
    sw = tmp_path / "sw"
    sw.mkdir()
    (sw / "sweep.json").write_text("{}")
    with pytest.raises(SystemExit) as e:
        main(["sweep", "--grid", "learning_rate=1e-3,1e-4", "--out", str(sw), "--quiet", *TINY_PPO])
    err = capsys.readouterr().err
    assert e.value.code == 2 and str(sw) in err and "a sweep" in err


LOCK_HOLDER = """
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("rundir", sys.argv[1])
rundir = sys.modules["rundir"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rundir)  # stdlib only: no jax import
rundir.acquire_lock(sys.argv[2])
print("locked", flush=True)
time.sleep(120)
"""


def test_a_live_lock_refuses_a_second_process_and_a_dead_one_is_taken_over(tmp_path, capsys, no_compile):
    d = tmp_path / "run"
    d.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(Path(rundir.__file__)), str(d)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(SystemExit) as e:
            main(["train", "--out", str(d), "--quiet", *TINY_PPO])
        err = capsys.readouterr().err
        assert e.value.code == 2 and f"in use by pid {holder.pid} on {socket.gethostname()}" in err
        assert not (d / "config.json").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    notes = []
    lock = acquire_lock(d, notes.append)  # the holder is gone: its lock is taken over, with a message
    assert len(notes) == 1 and f"pid {holder.pid}" in notes[0] and "process gone" in notes[0]
    assert json.loads((d / LOCK).read_text())["pid"] == os.getpid()
    lock.release()
    assert not (d / LOCK).exists()


def test_a_lock_file_naming_a_live_process_is_refused_even_without_flock(tmp_path):
    """Where a filesystem ignores flock, the lock file's owner (same host, pid, start time) still counts."""
    d = tmp_path / "run"
    d.mkdir()
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        owner = {"host": socket.gethostname(), "pid": sleeper.pid, "start_time": rundir._start_time(sleeper.pid)}
        (d / LOCK).write_text(json.dumps(owner))
        with pytest.raises(RunFolderError, match=f"in use by pid {sleeper.pid}"):
            acquire_lock(d)
    finally:
        sleeper.kill()
        sleeper.wait()
    notes = []
    acquire_lock(d, notes.append).release()  # now the pid is gone
    assert "process gone" in notes[0]


def test_atomic_write_keeps_the_old_file_when_a_write_fails(tmp_path, monkeypatch):
    p = tmp_path / "summary.json"
    p.write_text('{"old": true}')

    def crash(fd):
        raise OSError("disk gone")

    monkeypatch.setattr(rundir.os, "fsync", crash)  # fails after the new bytes were written to the temp file
    with pytest.raises(OSError):
        rundir.atomic_write_json(p, {"new": True})
    assert p.read_text() == '{"old": true}' and [x.name for x in tmp_path.iterdir()] == ["summary.json"]


def test_unwritable_or_full_folders_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(rundir.shutil, "disk_usage", lambda p: SimpleNamespace(free=1 << 20))
    with pytest.raises(RunFolderError, match="1.0 MiB free, the run needs at least"):
        check_writable(tmp_path / "full", space_needed(state_bytes=1 << 20))
    assert space_needed(state_bytes=10) == MIN_FREE_BYTES + 30


def test_resume_drops_a_torn_last_line_and_rows_after_the_checkpoint(tmp_path):
    p = tmp_path / "metrics.jsonl"
    p.write_text("".join(json.dumps({"seed": 0, "iteration": i}) + "\n" for i in (1, 2, 3)) + '{"seed": 0, "itera')
    truncate_metrics(p, 2)
    assert [json.loads(x)["iteration"] for x in p.read_text().splitlines()] == [1, 2]


# ---------------------------------------------------------------------------------------------
# divergence guard
# ---------------------------------------------------------------------------------------------
def test_find_divergence_names_the_first_bad_iteration_and_quantity():
    nan = np.nan
    m = {"env_steps": np.array([[10, 20, 30]] * 4),
         "loss": np.array([[nan, 1.0, 2.0], [nan, 1.0, 1e12], [nan, 1.0, 1.0], [nan, np.inf, 1.0]]),
         "grad_norm": np.array([[nan, 1.0, 1.0], [nan, 1.0, 1.0], [nan, 1.0, 1.0], [nan, 1.0, 1.0]]),
         "learned": np.array([[0, 1, 1]] * 4, np.float32),
         "nonfinite_params": np.array([[nan, nan, 0], [nan, nan, 0], [nan, nan, 1], [nan, nan, 0]], np.float64)}
    out = find_divergence(m, 6, DivergenceGuard())
    assert out[0] is None  # NaN where an iteration did not learn is not divergence
    assert out[1] == {"iteration": 9, "env_steps": 30, "quantity": "loss", "value": 1e12}
    assert out[2]["quantity"] == "parameters" and out[3]["iteration"] == 8 and out[3]["value"] == "inf"
    assert find_divergence(m, 6, DivergenceGuard(loss=None, grad_norm=None))[1] is None  # bounds off, finite


def test_a_nonfinite_state_counts_even_where_the_iteration_did_not_learn_and_a_bad_loss_only_where_it_did():
    nan = np.nan
    m = {"env_steps": np.array([[10, 20]] * 2), "loss": np.array([[np.inf, 1.0], [np.inf, 1.0]]),
         "learned": np.array([[0, 0], [0, 0]], np.float32), "nonfinite_params": np.array([[nan, 1], [nan, 0]])}
    out = find_divergence(m, 0, DivergenceGuard())
    assert out[0] == {"iteration": 2, "env_steps": 20, "quantity": "parameters", "value": "non-finite"}
    assert out[1] is None  # the inf loss came from an iteration that did not learn


def test_the_loop_checks_the_state_at_each_chunks_last_iteration_and_catches_a_planted_nan():
    """nonfinite_params sits on the last row that ran (also in a short last chunk), NaN elsewhere;
    a NaN planted in one parameter leaf is reported as 1."""
    nan = np.nan
    import jax
    import jax.numpy as jnp

    from jaxrl_policy.running.build import build_loop, default_config

    cfg = default_config("ppo", num_envs=2, num_steps=4, total_timesteps=40, num_chunks=2,
                         num_minibatches=1, num_epochs=1, eval_episodes=0)  # 5 iterations: chunks of 3 + 2
    loop = build_loop(cfg)
    state = loop.init(jax.random.PRNGKey(0))
    chunk = jax.jit(loop.run_chunk)
    state, m0 = chunk(state, jnp.int32(0))
    np.testing.assert_array_equal(np.asarray(m0["nonfinite_params"]), [nan, nan, 0.0])
    leaves, tree = jax.tree.flatten(state.agent.params)
    leaves[0] = leaves[0].at[(0,) * leaves[0].ndim].set(jnp.nan)
    state = state._replace(agent=state.agent._replace(params=jax.tree.unflatten(tree, leaves)))
    _, m1 = chunk(state, jnp.int32(1))
    np.testing.assert_array_equal(np.asarray(m1["nonfinite_params"])[:2], [nan, 1.0])  # row 2 is past the budget


def test_nonfinite_is_one_for_any_nan_or_inf_float_leaf():
    import jax.numpy as jnp
    assert float(nonfinite({"w": jnp.ones(3), "step": jnp.int32(1)})) == 0.0
    assert float(nonfinite({"w": jnp.array([1.0, jnp.inf]), "b": jnp.zeros(2)})) == 1.0


def test_a_diverging_sweep_point_is_named_and_the_last_good_checkpoint_kept(tmp_path, capsys):
    """DQN learns from chunk 2 on (65 > the 64 env steps of chunk 1); at learning rate 1e9 point p001
    diverges there. The batch stops after
    chunk 2, chunk 1's checkpoint stays the latest, p000's result is kept (status ok, incomplete)."""
    out = tmp_path / "sw"
    with pytest.raises(SystemExit) as e:
        main(["sweep", "--algo", "dqn", "--grid", "learning_rate=1e-4,1e9", "--out", str(out), "--quiet",
              "--num-envs", "4", "--num-steps", "16", "--total-timesteps", "192", "--learning-starts", "65",
              "--buffer-size", "128", "--batch-size", "16", "--replay-ratio", "0.0625", "--num-chunks", "3",
              "--eval-episodes", "0", "--hidden-sizes", "16", "--checkpoint-every", "1e-9"])
    assert e.value.code == 3
    err = capsys.readouterr().err
    assert "seed 0 of p001 (learning_rate=1e+09)" in err and "iteration 2" in err and "p000" not in err
    assert "chunk_000001" in err and latest(out).name == "chunk_000001"
    p0, p1 = (json.loads((out / p / "summary.json").read_text()) for p in ("p000", "p001"))
    assert p0["status"] == ["ok"] and p1["status"] == ["diverged"] and p1["divergence"][0]["iteration"] == 2
    assert p0["env_steps_done"] == 128 and not p0["complete"]
    assert json.loads((out / "summary.json").read_text())["runs"][1]["status"] == ["diverged"]


# ---------------------------------------------------------------------------------------------
# resume: a readable diff, and a corrupt latest checkpoint
# ---------------------------------------------------------------------------------------------
def test_resume_with_other_flags_is_refused_with_a_diff(tmp_path, capsys):
    from jaxrl_policy import default_config
    from jaxrl_policy.running.runner import run_metadata_for
    d = tmp_path / "run"
    d.mkdir()
    cfg = default_config("ppo", "CartPole-v1", total_timesteps=2048, num_envs=8)
    (d / "config.json").write_text(json.dumps(run_metadata_for(cfg, 2)))

    def resume(*flags):
        with pytest.raises(SystemExit) as e:
            main(["train", "--resume", str(d), "--quiet", *flags])
        return e.value.code, capsys.readouterr().err

    code, err = resume("--learning-rate", "1e-3", "--seeds", "1", "--total-timesteps", "2048", "--num-envs", "8")
    assert code == 2
    assert "learning_rate: run has 0.00025, command line has 0.001" in err
    assert "seeds: run has [0, 1], command line has [0]" in err and "total_timesteps" not in err
    code, err = resume("--total-timesteps", "2048")  # num_envs defaults to 4 on this command line
    assert "num_envs: run has 8, command line has 4" in err
    code, err = resume("--num-envs", "8", "--total-timesteps", "2048", "--seeds", "2")  # the run's own: no diff
    assert code == 2 and "no complete checkpoint" in err and "differs" not in err
    doc = json.loads((d / "config.json").read_text())
    doc["run"]["package_version"] = "0.0.1"
    (d / "config.json").write_text(json.dumps(doc))
    code, err = resume()  # another version is a note, not a refusal: the checkpoint decides
    assert f"started by jaxrl_policy 0.0.1; resuming with {jaxrl_policy.__version__}" in err
    assert code == 2 and "no complete checkpoint" in err and "differs" not in err


def test_a_corrupt_latest_checkpoint_falls_back_to_the_previous_one(tmp_path):
    from jaxrl_policy import default_config
    from jaxrl_policy.running.runner import resume_run, run
    cfg = default_config("ppo", "CartPole-v1", total_timesteps=384, num_envs=4, num_steps=32, num_chunks=3,
                         eval_episodes=0, hidden_sizes=(16,), num_epochs=1, num_minibatches=2)
    d = tmp_path / "run"
    whole = run(cfg, 1, d, progress=None, checkpoint_every_s=0.0)
    ref_rows = _rows(d)
    assert [p.name for p in complete(d)] == ["chunk_000003", "chunk_000002"]  # the last two are kept

    def damage(how):
        files = sorted((p for p in (d / "checkpoints" / "chunk_000003").rglob("*") if p.is_file()),
                       key=lambda p: p.stat().st_size)
        big = files[-1]
        if how == "truncate":
            big.write_bytes(big.read_bytes()[: big.stat().st_size // 2])
        elif how == "flip":
            data = bytearray(big.read_bytes())
            data[len(data) // 2] ^= 0xFF
            big.write_bytes(bytes(data))
        else:
            (d / "checkpoints" / "chunk_000003" / "meta.json").write_text('{"chunks_do')  # half-written

    for how in ("truncate", "flip", "meta"):
        damage(how)
        notes = []
        s = resume_run(d, progress=None, checkpoint_every_s=0.0, note=notes.append)
        assert any("chunk_000003" in n and "unusable" in n for n in notes), (how, notes)
        assert any("resuming from the older checkpoint chunk_000002" in n for n in notes), (how, notes)
        assert s["agent_sha256"] == whole["agent_sha256"] and _rows(d) == ref_rows, how


def test_bad_inputs_table_is_current():
    """docs/bad-inputs.md (experiments/bad_inputs.py) still tells the truth for every case that needs no compile."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("bad_inputs", Path(ROOT) / "experiments" / "bad_inputs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    doc = {(s, i): (c, m) for s, i, c, m in mod.parse(mod.DOC.read_text())}
    assert len(doc) >= 25
    rows = mod.table(only_cheap=True)
    assert len(rows) >= 25
    for surface, shown, code, msg in rows:
        assert doc[(surface, shown)] == (code, msg), (shown, code, msg)
