"""Checkpoints: a run that crashes mid-way resumes from its last checkpoint, bit-identically."""
import json
from pathlib import Path

import numpy as np
import pytest

from jaxrl_policy import default_config
from jaxrl_policy.cli.main import main
from jaxrl_policy.io.checkpoint import latest
from jaxrl_policy.running.runner import resume_run, run

CFG = dict(total_timesteps=4 * 128 * 10, num_chunks=4, policy_lag=2, replay_capacity=2)


def rows(path):
    out = [json.loads(line) for line in path.read_text().splitlines()]
    for r in out:
        r.pop("wall_s")
    return out


class Crash(Exception):
    pass


# continuous actions + GRU carry + running observation statistics, all in the checkpointed state
RECURRENT = dict(num_envs=4, num_steps=32, num_minibatches=2, num_epochs=2, total_timesteps=4 * 32 * 10,
                 num_chunks=4, torso="gru", rnn_size=16, normalize_observations=True, eval_episodes=4)


@pytest.mark.parametrize("algo,env_id,over", [("vtrace", "CartPole-v1", CFG), ("ppo", "Pendulum-v1", RECURRENT)])
def test_crash_then_resume_is_bit_identical(tmp_path, algo, env_id, over):
    cfg = default_config(algo, env_id, **over)
    whole = run(cfg, 2, tmp_path / "whole", progress=None, checkpoint_every_s=0.0)

    def crash_at_chunk_3(line):
        if "chunk 3/" in line:
            raise Crash(line)

    with pytest.raises(Crash):
        run(cfg, 2, tmp_path / "crashed", progress=crash_at_chunk_3, checkpoint_every_s=0.0)
    d = tmp_path / "crashed"
    assert latest(d).name == "chunk_000003" and not (d / "summary.json").exists()
    logged = rows(d / "metrics.jsonl")
    assert max(r["iteration"] for r in logged) == 9  # chunks 1-3 of 3 iterations each were logged

    resumed = resume_run(d, progress=None, checkpoint_every_s=0.0)
    assert resumed["final_return"] == whole["final_return"]
    assert resumed["diagnostics"] == whole["diagnostics"]
    assert rows(d / "metrics.jsonl") == rows(tmp_path / "whole" / "metrics.jsonl")
    assert latest(d).name == "chunk_000004"  # the final state is kept for later use
    assert sorted(p.name for p in (d / "checkpoints").glob("chunk_*")) == ["chunk_000003", "chunk_000004"]  # two kept


def test_resume_drops_rows_logged_after_the_checkpoint(tmp_path, monkeypatch):
    """Chunk 3 is logged but not checkpointed (its save is skipped), then the run crashes:
    resuming restarts at chunk 3, drops its rows, and ends with the uninterrupted run's log."""
    import jaxrl_policy.io.checkpoint as ck
    cfg = default_config("ppo", "CartPole-v1", total_timesteps=4 * 128 * 8, num_chunks=4)
    ref = run(cfg, 1, tmp_path / "ref", progress=None, checkpoint_every_s=None)
    assert not (tmp_path / "ref" / "checkpoints").exists()

    real_save = ck.save
    monkeypatch.setattr(ck, "save", lambda d, n, *a: None if n == 3 else real_save(d, n, *a))

    def crash_at_chunk_3(line):
        if "chunk 3/" in line:
            raise Crash(line)

    d = tmp_path / "r"
    with pytest.raises(Crash):
        run(cfg, 1, d, progress=crash_at_chunk_3, checkpoint_every_s=0.0)
    assert latest(d).name == "chunk_000002" and max(r["iteration"] for r in rows(d / "metrics.jsonl")) == 6
    monkeypatch.setattr(ck, "save", real_save)
    resumed = resume_run(d, progress=None)
    assert resumed["final_return"] == ref["final_return"]
    assert rows(d / "metrics.jsonl") == rows(tmp_path / "ref" / "metrics.jsonl")


def test_cli_resume_and_bad_resume(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--resume", str(tmp_path / "nothing")])
    assert e.value.code == 2 and "not a run folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["train", "--checkpoint-every", "-1"])
    assert e.value.code == 2 and "--checkpoint-every" in capsys.readouterr().err
    nock = tmp_path / "nock"
    main(["train", "--total-timesteps", "1024", "--num-chunks", "1", "--checkpoint-every", "0", "--out", str(nock),
          "--quiet"])
    with pytest.raises(SystemExit) as e:
        main(["train", "--resume", str(nock)])
    assert e.value.code == 2 and "no complete checkpoint" in capsys.readouterr().err
    d = tmp_path / "ok"
    main(["train", "--algo", "ppo", "--total-timesteps", "2048", "--num-chunks", "2", "--out", str(d), "--quiet"])
    assert latest(d) is not None
    main(["train", "--resume", str(d), "--quiet"])  # already finished: resumes at the end, rewrites the summary
    assert np.isfinite(json.loads((d / "summary.json").read_text())["env_steps_per_s"])


def test_a_run_folder_written_by_0_3_0_resumes_and_reports(tmp_path, capsys):
    """tests/data/run-0.3.0: a PPO run (2 seeds, 4 chunks) written by jaxrl_policy 0.3.0 (commit 1dde4a5, the flat
    layout) and cut after its chunk-3 checkpoint (chunk 4 and summary.json removed). This version resumes it:
    the loop state restores into today's program, the rows logged up to the checkpoint are kept as they were,
    chunk 4 runs, and `report` reads the folder."""
    import shutil

    src = Path(__file__).parent / "data" / "run-0.3.0"
    d = tmp_path / "run"
    shutil.copytree(src, d)
    before = [json.loads(x) for x in (src / "metrics.jsonl").read_text().splitlines()]
    main(["train", "--resume", str(d), "--quiet", "--checkpoint-every", "0"])
    err = capsys.readouterr().err
    assert "started by jaxrl_policy 0.3.0" in err
    s = json.loads((d / "summary.json").read_text())
    assert s["complete"] and s["status"] == ["ok", "ok"] and s["env_steps_done"] == 4096
    rows = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]
    kept = [r for r in before if r["iteration"] <= 3 * 2]  # 2 iterations per chunk
    strip = lambda r: {k: v for k, v in r.items() if k != "wall_s"}  # noqa: E731
    assert [strip(r) for r in rows[:len(kept)]] == [strip(r) for r in kept]
    assert max(r["iteration"] for r in rows) == 8
    main(["report", str(d), "--out", str(tmp_path / "rep")])
    assert (tmp_path / "rep" / "summary.md").exists()
