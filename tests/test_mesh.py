"""One loop on a device mesh: 8 forced CPU devices match 1, sweeps spread over `batch`, two processes
over 2 × 4 devices hold identical parameters, checkpoints move between device counts, bad meshes fail early.

The multi-device checks run in subprocesses: the device count is fixed when JAX's backend starts.
"""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from jaxrl_policy.running.mesh import MeshError, MeshShape, choose_mesh, parse_mesh

EIGHT = {**os.environ, "XLA_FLAGS": (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8")}

EQUIVALENCE = r'''
import json, sys
from pathlib import Path
import numpy as np
import jax
import jaxrl_policy as jp
from jaxrl_policy.running.mesh import MeshShape
from jaxrl_policy.running.runner import resume_run, run, run_batch
from jaxrl_policy.running.sweep import run_sweep
assert jax.device_count() == 8
out = Path(sys.argv[1])
SMALL = {
    "ppo": dict(num_envs=8, num_steps=16, total_timesteps=8 * 16 * 6, num_minibatches=2, num_epochs=2, num_chunks=3),
    "dqn": dict(num_envs=8, num_steps=2, total_timesteps=8 * 2 * 30, learning_starts=64, buffer_size=256,
                batch_size=16, replay_ratio=0.125, target_update_interval=32, num_chunks=2),
    "vtrace": dict(num_envs=8, num_steps=16, total_timesteps=8 * 16 * 6, policy_lag=2, replay_capacity=3,
                   replay_ratio=2, num_minibatches=2, num_chunks=2),
    "pqn": dict(num_envs=8, num_steps=16, total_timesteps=8 * 16 * 6, num_minibatches=2, num_epochs=2, num_chunks=3),
    "sac": dict(num_envs=8, num_steps=2, total_timesteps=8 * 2 * 30, learning_starts=64, buffer_size=256,
                batch_size=16, replay_ratio=0.125, learning_rate=1e-3, num_chunks=2),
    "td3": dict(num_envs=8, num_steps=2, total_timesteps=8 * 2 * 30, learning_starts=64, buffer_size=256,
                batch_size=16, replay_ratio=0.125, num_chunks=2),
}
ENV = {"sac": "Pendulum-v1", "td3": "Pendulum-v1"}
MESHES = {"ppo": ["one", "b2d4"], "dqn": ["one", "b1d8"], "vtrace": ["one", "b2d4", "b2d4-again"],
          "pqn": ["one", "b2d4"], "sac": ["one", "b1d8"], "td3": ["one", "b2d4"]}
SHAPES = {"one": dict(devices=1), "b2d4": dict(mesh_shape=MeshShape(2, 4)), "b1d8": dict(mesh_shape=MeshShape(1, 8)),
          "b2d4-again": dict(mesh_shape=MeshShape(2, 4))}
def rows(d):
    lines = (d / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(x).items() if k != "wall_s"} for x in lines]
res = {}
for algo, kw in SMALL.items():
    cfg = jp.default_config(algo, ENV.get(algo, "CartPole-v1"), **kw)
    for name in MESHES[algo]:
        s = run(cfg, 2, out / algo / name, progress=None, checkpoint_every_s=None, **SHAPES[name])
        res[f"{algo}/{name}"] = {"rows": rows(out / algo / name), "sha": s["agent_sha256"],
                                 "mesh": json.loads((out / algo / name / "config.json").read_text())["run"]["mesh"]}
# a sweep of 4 points x 2 seeds spreads over the batch axis (no communication); its point at V-trace's own
# learning rate is the 1-device run above
base = jp.default_config("vtrace", "CartPole-v1", **SMALL["vtrace"])
pts = [{"learning_rate": lr} for lr in (1e-4, base.learning_rate, 2e-3, 8e-3)]
r = run_sweep(base, pts, 2, out / "sweep", progress=None, checkpoint_every_s=None)
res["sweep"] = {"rows": rows(out / "sweep" / "p001"), "sha": r["runs"][1]["agent_sha256"],
                "mesh": json.loads((out / "sweep" / "p000" / "config.json").read_text())["run"]["mesh"]}
# a checkpoint written on 8 devices (PPO, b2d4 above) resumes on 1
cfg = jp.default_config("ppo", "CartPole-v1", **SMALL["ppo"])
class Crash(Exception): pass
def crash(line):
    if "chunk 2/" in line: raise Crash()
try:
    run(cfg, 2, out / "moved", progress=crash, checkpoint_every_s=0.0, mesh_shape=MeshShape(2, 4))
except Crash:
    pass
moved = resume_run(out / "moved", progress=None, checkpoint_every_s=None, devices=1)
res["moved"] = {"rows_whole": res["ppo/b2d4"]["rows"], "rows_moved": rows(out / "moved")}
print("RESULT" + json.dumps(res))
'''


def close(a, b, rtol=1e-4, atol=1e-5):
    """Counts (ints) exactly; float metrics to a tolerance that depends on the CPU beyond rounding.

    8 devices split each batch (data-parallel: the gradient is an all-reduce of per-device sums, another order than
    one device's) and batch the sweep's points (vmap: other GEMM shapes); XLA fuses each program its own way per ISA
    and version. The first update differs by float32 reduction order at most, later ones run on parameters already
    apart, and training amplifies it: no per-op bound holds. Measured on Zen 4 (runs of 6 and 30 iterations): ≤ 2.2e-7
    relative, and ≤ 7.2e-8 absolute on pg_loss and policy_kl (small differences of O(1) terms). rtol 1e-4 and atol
    1e-5 (for those) as tests/test_loop.py's chunked-vs-whole check, of the same kind."""
    if isinstance(a, float) or isinstance(b, float):
        return abs(a - b) <= atol + rtol * abs(a)
    return a == b


@pytest.fixture(scope="module")
def eight(tmp_path_factory):
    out = tmp_path_factory.mktemp("mesh")
    p = subprocess.run([sys.executable, "-c", EQUIVALENCE, str(out)], env=EIGHT, capture_output=True, text=True,
                       timeout=1200)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.split("RESULT")[-1])


@pytest.mark.parametrize("algo", ["ppo", "dqn", "vtrace", "pqn", "sac", "td3"])
def test_eight_devices_match_one(eight, algo):
    one = eight[f"{algo}/one"]
    assert one["mesh"] == {"batch": 1, "data": 1}
    for name, mesh in (("b2d4", {"batch": 2, "data": 4}), ("b1d8", {"batch": 1, "data": 8})):
        if f"{algo}/{name}" not in eight:
            continue
        other = eight[f"{algo}/{name}"]
        assert other["mesh"] == mesh
        assert len(other["rows"]) == len(one["rows"])
        for r1, r8 in zip(one["rows"], other["rows"], strict=True):
            for k in r1:
                assert close(r1[k], r8[k]), (algo, name, r1["iteration"], k, r1[k], r8[k])
    if f"{algo}/b2d4-again" in eight:  # the same device count gives bit-identical results
        assert eight[f"{algo}/b2d4"]["sha"] == eight[f"{algo}/b2d4-again"]["sha"]
        assert eight[f"{algo}/b2d4"]["rows"] == eight[f"{algo}/b2d4-again"]["rows"]


def test_sweep_points_spread_over_the_batch_axis(eight):
    assert eight["sweep"]["mesh"] == {"batch": 8, "data": 1}
    one = eight["vtrace/one"]["rows"]
    for r1, r8 in zip(one, eight["sweep"]["rows"], strict=True):
        for k in r1:
            assert close(r1[k], r8[k]), (r1["iteration"], k, r1[k], r8[k])


def test_checkpoint_from_eight_devices_resumes_on_one(eight):
    m = eight["moved"]
    assert [r["iteration"] for r in m["rows_moved"]] == [r["iteration"] for r in m["rows_whole"]]  # no gap, no repeat
    for a, b in zip(m["rows_whole"], m["rows_moved"], strict=True):
        for k in a:
            assert close(a[k], b[k]), (k, a[k], b[k])


PROCESS = r'''
import json, os, sys
pid, port, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
import jax
from jaxrl_policy.cli.main import main
main(["train", "--algo", "ppo", "--seeds", "2", "--num-envs", "8", "--num-steps", "16", "--total-timesteps", "512",
      "--num-minibatches", "2", "--num-chunks", "2", "--checkpoint-every", "0", "--quiet",
      "--coordinator", "127.0.0.1:" + port, "--num-processes", "2", "--process-id", str(pid),
      "--out", out if pid == 0 else out + "-process1"])
print("DEVICES", jax.device_count(), jax.local_device_count())
'''


def test_two_processes_train_one_run(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    env = {**os.environ, "XLA_FLAGS": (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4")}
    out = str(tmp_path / "run")
    procs = [subprocess.Popen([sys.executable, "-c", PROCESS, str(i), port, out], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in (0, 1)]
    logs = [p.communicate(timeout=600) for p in procs]
    for p, (o, e) in zip(procs, logs, strict=True):
        assert p.returncode == 0, e[-3000:]
        assert "DEVICES 8 4" in o
    s = json.loads((Path(out) / "summary.json").read_text())
    # both processes ran the same program: the summary each printed has the same parameter digests
    printed = [json.loads(next(line for line in o.splitlines() if line.startswith("{"))) for o, _ in logs]
    assert printed[0]["final_return"] == printed[1]["final_return"] == s["final_return"]
    assert json.loads((Path(out) / "config.json").read_text())["run"]["mesh"] == {"batch": 2, "data": 4}
    assert not Path(out + "-process1").exists()  # only process 0 writes


@pytest.mark.parametrize("devices,runs,envs,requested,needle", [
    (8, 2, 3, None, "no split of 8 devices"),
    (8, 3, 4, MeshShape(2, 4), "batch = 2 must divide the runs"),
    (8, 2, 6, MeshShape(2, 4), "data = 4 must divide num_envs = 6"),
    (4, 2, 4, MeshShape(2, 4), "uses 8 devices, but 4"),
])
def test_mesh_validation(devices, runs, envs, requested, needle):
    with pytest.raises(MeshError, match=needle):
        choose_mesh(devices, runs, envs, requested)


def test_mesh_choice_puts_runs_first():
    assert choose_mesh(8, 16, 4) == MeshShape(8, 1)
    assert choose_mesh(8, 2, 8) == MeshShape(2, 4)
    assert choose_mesh(8, 1, 8) == MeshShape(1, 8)
    assert choose_mesh(8, 3, 5, exact=False) == MeshShape(1, 5)  # default device count: the most devices that divide
    assert parse_mesh("batch=4,data=2") == MeshShape(4, 2) and parse_mesh("data=2") == MeshShape(1, 2)
    with pytest.raises(MeshError, match="--mesh = 'batch=x'"):
        parse_mesh("batch=x")


@pytest.mark.parametrize("argv,needle", [
    (["--devices", "9"], "--devices = 9: only 8 device(s) exist"),
    (["--mesh", "batch=2,data=4", "--seeds", "3"], "batch = 2 must divide the runs"),
    (["--mesh", "batch=1,data=8", "--num-envs", "4"], "data = 8 must divide num_envs = 4"),
    (["--coordinator", "127.0.0.1:1"], "go together"),
])
def test_bad_mesh_flags_exit_2_before_compiling(argv, needle, tmp_path):
    code = ("import sys; from jaxrl_policy.cli.main import main\ntry:\n    main(sys.argv[1:])\n"
            "except SystemExit as e:\n    print('EXIT', e.code)")
    p = subprocess.run([sys.executable, "-c", code, "train", "--out", str(tmp_path / "x"), *argv], env=EIGHT,
                       capture_output=True, text=True, timeout=300)
    assert "EXIT 2" in p.stdout, p.stderr[-2000:]
    assert needle in p.stderr
    assert not (tmp_path / "x").exists()


def test_suite_envs_stay_off_the_data_axis_on_cpu():
    """On CPU a suite's envs are not split over data (such programs hang in jax 0.10.2's XLA:CPU): chosen meshes
    put the devices on batch, a requested data > 1 is refused naming the rule; gymnax ids are unaffected."""

    assert choose_mesh(2, 1, 4) == MeshShape(batch=1, data=2)
    assert choose_mesh(2, 1, 4, env_id="navix:Navix-Empty-5x5-v0", exact=False) == MeshShape(batch=1, data=1)
    assert choose_mesh(2, 2, 4, env_id="navix:Navix-Empty-5x5-v0") == MeshShape(batch=2, data=1)
    with pytest.raises(MeshError, match="cannot be split over data on CPU"):
        choose_mesh(2, 1, 4, MeshShape(batch=1, data=2), env_id="jumanji:Snake-v1")
    assert choose_mesh(2, 1, 4, MeshShape(batch=1, data=2), env_id="CartPole-v1") == MeshShape(batch=1, data=2)
