"""Metric sinks: TensorBoard event files and W&B offline runs hold what metrics.jsonl holds."""
import json
import struct
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from tolerance import U32, assert_within

from jaxrl_policy.io.sinks import TensorBoardSink, WandbSink, make_sinks, scalars


def rows_of(seeds=(0, 1), steps=(100, 200)):
    """Rows as the runner writes them: one per seed and window; eval_return None where no evaluation ran."""
    return [{"seed": s, "iteration": i + 1, "env_steps": st, "episode_return": 10.0 * (s + 1) + i, "episodes": 3,
             "eval_return": None if i == 0 else 50.0 + s, "loss": float("nan") if s else 0.25, "algo": "ppo",
             "wall_s": 0.5 * (i + 1)}
            for i, st in enumerate(steps) for s in seeds]


def test_scalars_skip_none_nan_text_and_the_step():
    row = {"seed": 1, "env_steps": 100, "iteration": 2, "episode_return": 3.5, "eval_return": None,
           "loss": float("nan"), "algo": "ppo", "flag": True, "episodes": 4}
    assert scalars(row) == {"iteration": 2.0, "episode_return": 3.5, "episodes": 4.0}


# ---- TensorBoard ------------------------------------------------------------------------------------


def read_events(path: Path):
    """Events of a TensorBoard event file (TFRecord: length u64, crc u32, Event proto, crc u32)."""
    from tensorboardX.proto import event_pb2

    data, pos, events = path.read_bytes(), 0, []
    while pos < len(data):
        (n,) = struct.unpack("<Q", data[pos:pos + 8])
        events.append(event_pb2.Event.FromString(data[pos + 12:pos + 12 + n]))
        pos += 12 + n + 4
    return events


def tb_scalars(folder: Path) -> dict[str, dict[int, float]]:
    """``{tag: {step: value}}`` of every event file in ``folder``."""
    out: dict[str, dict[int, float]] = {}
    for f in sorted(folder.glob("events.out.tfevents.*")):
        for ev in read_events(f):
            for v in ev.summary.value:
                out.setdefault(v.tag, {})[int(ev.step)] = v.simple_value
    return out


def test_tensorboard_event_files_read_back(tmp_path):
    pytest.importorskip("tensorboardX")
    sink = TensorBoardSink(tmp_path / "tb")
    rows = rows_of()
    sink.write("ppo", rows[:2])  # chunk 1
    sink.write("ppo", rows[2:])  # chunk 2
    sink.flush()
    sink.write("dqn", rows[:1])  # after a flush the writers open again
    sink.flush()
    assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == ["dqn", "ppo"]
    s0, s1 = tb_scalars(tmp_path / "tb" / "ppo" / "seed0"), tb_scalars(tmp_path / "tb" / "ppo" / "seed1")
    assert s0["episode_return"] == {100: 10.0, 200: 11.0} and s1["episode_return"] == {100: 20.0, 200: 21.0}
    assert s0["eval_return"] == {200: 50.0} and s1["eval_return"] == {200: 51.0}  # None skipped
    assert s0["loss"] == {100: 0.25, 200: 0.25} and "loss" not in s1  # NaN skipped
    assert "seed" not in s0 and "env_steps" not in s0 and "algo" not in s0
    assert tb_scalars(tmp_path / "tb" / "dqn" / "seed0")["episode_return"] == {100: 10.0}


# ---- Weights & Biases (offline: no network) ------------------------------------------------------------


def wandb_file_records(f: Path) -> list:
    """The Record protos of one offline ``.wandb`` file, in order.

    A ``.wandb`` file is a LevelDB-style log: a 7-byte header (":W&B", magic, version), then 32 KiB blocks
    of records (crc u32, length u16, type u8: 1 full, 2 first, 3 middle, 4 last), each a Record proto.
    """
    from wandb.proto import wandb_internal_pb2 as pb

    data = f.read_bytes()
    assert data[:4] == b":W&B"
    pos, buf, raws = 7, b"", []
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        if left < 7:
            pos += left
            continue
        _, n, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0 and n == 0:
            pos += left
            continue
        chunk = data[pos + 7:pos + 7 + n]
        pos += 7 + n
        if kind in (1, 4):
            raws.append((buf if kind == 4 else b"") + chunk)
            buf = b""
        else:
            buf += chunk
    records = []
    for raw in raws:
        r = pb.Record()
        r.ParseFromString(raw)
        records.append(r)
    return records


def wandb_records(root: Path, timeout_s: float = 60.0) -> dict[str, dict]:
    """Per offline run under ``root/wandb``: its name, config and history rows (``{key: value}`` by step).

    ``run.finish()`` returns once W&B's service has the run's exit, but the service writes the file
    on its own thread: on a loaded machine (CI) the file can still be short when ``finish`` returns.
    So this waits (up to ``timeout_s``) until every run file ends with its ``exit`` record.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        files = {f: wandb_file_records(f) for f in sorted(root.glob("wandb/offline-run-*/run-*.wandb"))}
        kinds = {f.name: [r.WhichOneof("record_type") for r in recs] for f, recs in files.items()}
        finished = all(k and k[-1] == "exit" for k in kinds.values())
        if finished or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert finished, f"unfinished W&B run files after {timeout_s} s: {kinds}"
    runs = {}
    for recs in files.values():
        name, config, history = None, {}, {}
        for r in recs:
            t = r.WhichOneof("record_type")
            if t == "run":
                name = r.run.display_name
                config = {u.key: json.loads(u.value_json) for u in r.run.config.update}
            elif t == "history":
                items = {(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in r.history.item}
                history[int(items["_step"])] = {k: v for k, v in items.items() if not k.startswith("_")}
        runs[name] = {"config": config, "history": history}
    return runs


@pytest.fixture
def wandb_env(tmp_path, monkeypatch):
    """Offline W&B with every file under tmp_path, nothing from the user's settings."""
    pytest.importorskip("wandb")
    for k in ("WANDB_API_KEY", "WANDB_BASE_URL", "WANDB_ENTITY", "WANDB_PROJECT", "WANDB_RUN_ID"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for k in ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(k, str(tmp_path / "wb"))
    return tmp_path / "wb"


def test_wandb_offline_run_folder_has_the_logged_keys(wandb_env):
    sink = WandbSink("jaxrl-test", dir=wandb_env, config={"algo": "ppo", "learning_rate": 3e-4})
    rows = rows_of()
    sink.write("ppo", rows[:2])
    sink.write("ppo", rows[2:])
    sink.write("dqn", rows[:2])
    sink.flush()
    runs = wandb_records(wandb_env)
    assert set(runs) == {"ppo", "dqn"}  # one W&B run per run name
    assert runs["ppo"]["config"]["learning_rate"] == 3e-4
    h = runs["ppo"]["history"]
    assert sorted(h) == [100, 200]  # step = env steps; the seeds of one step in one row
    assert h[100]["seed0/episode_return"] == 10.0 and h[100]["seed1/episode_return"] == 20.0
    assert "seed0/eval_return" not in h[100] and h[200]["seed1/eval_return"] == 51.0  # None skipped
    assert h[200]["seed0/loss"] == 0.25 and "seed1/loss" not in h[200]  # NaN skipped
    assert not any(k.endswith(("/seed", "/env_steps", "/algo")) for k in h[100])
    assert sorted(runs["dqn"]["history"]) == [100]


def test_make_sinks(tmp_path, wandb_env, monkeypatch):
    pytest.importorskip("tensorboardX")
    assert make_sinks(None, None, {}) == []
    monkeypatch.setenv("WANDB_MODE", "dryrun")  # wandb's older spelling of offline
    tb, wb = make_sinks(str(tmp_path / "tb"), "proj", {"algo": "dqn", "env_id": "CartPole-v1", "gamma": 0.99})
    assert isinstance(tb, TensorBoardSink) and tb.logdir == str(tmp_path / "tb")
    assert isinstance(wb, WandbSink) and (wb.project, wb.mode, wb.group) == ("proj", "offline", "dqn-CartPole-v1")
    assert wb.dir == str(wandb_env) and wb.config["gamma"] == 0.99


@pytest.mark.parametrize("cls,args,module,extra", [
    (TensorBoardSink, ("logs",), "tensorboardX", "tensorboard"),
    (WandbSink, ("proj",), "wandb", "wandb"),
])
def test_missing_extra_names_it(cls, args, module, extra, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match=rf'needs {module}.*pip install "jaxrl-policy\[{extra}\]"'):
        cls(*args)


# ---- through the runner: the sinks get what metrics.jsonl gets ---------------------------------------------


def test_runner_feeds_the_sinks_what_it_writes(tmp_path, wandb_env):
    """A tiny sweep from the CLI with both sinks (``--tensorboard DIR --wandb PROJECT``)."""
    pytest.importorskip("tensorboardX")
    from jaxrl_policy.cli.main import main

    main(["sweep", "--algo", "ppo", "--env", "CartPole-v1", "--grid", "learning_rate=1e-4,3e-3", "--seeds", "2",
          "--out", str(tmp_path / "sw"), "--quiet", "--checkpoint-every", "0", "--tensorboard", str(tmp_path / "tb"),
          "--wandb", "jaxrl-test", "--num-envs", "4", "--num-steps", "16", "--total-timesteps", str(4 * 16 * 4),
          "--num-minibatches", "2", "--num-epochs", "2", "--num-chunks", "2", "--eval-episodes", "4"])
    wb = wandb_records(wandb_env)
    assert set(wb) == {"p000", "p001"}  # a W&B run per point
    assert wb["p000"]["config"]["algo"] == "ppo" and wb["p000"]["config"]["num_envs"] == 4
    for point in ("p000", "p001"):
        rows = [json.loads(x) for x in (tmp_path / "sw" / point / "metrics.jsonl").read_text().splitlines()]
        assert {r["seed"] for r in rows} == {0, 1}
        for seed in (0, 1):
            tb = tb_scalars(tmp_path / "tb" / point / f"seed{seed}")
            mine = [r for r in rows if r["seed"] == seed]
            for key in ("episode_return", "eval_return", "loss", "grad_steps", "wall_s"):
                want = {r["env_steps"]: r[key] for r in mine if r[key] is not None}
                assert want, key
                assert sorted(tb[key]) == sorted(want), key
                # the event file stores float32: one rounding of each value, u·|value|
                w = np.array([want[s] for s in sorted(want)])
                assert_within([tb[key][s] for s in sorted(want)], w, U32 * np.abs(w), err_msg=key)
                got = {s: wb[point]["history"][s][f"seed{seed}/{key}"] for s in want}
                assert got == want, key  # W&B keeps the float64 values
