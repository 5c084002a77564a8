"""Soak: a long PPO run on CartPole (CPU) keeps a flat host memory profile and a constant speed.

Not part of the default run (it takes minutes): it needs ``JAXRL_SOAK=1``. Either

    JAXRL_SOAK=1 python -m pytest -m soak tests/test_soak.py -s
    python tests/test_soak.py [--steps 10000000] [--chunks 100] [--out DIR]

The run goes through the whole runner (run folder, metrics.jsonl after every chunk, a checkpoint
every 10 s). After each chunk it samples the process's resident memory (VmRSS in
/proc/self/status) and the chunk's env steps per second (chunk wall time, the checkpoint included
when one was written). Pass: RSS grows by less than 64 MiB from the end of the first 10% of
chunks to the end, and the median speed of the last 10 chunks is within 25% of the median of
chunks 10–20 (chunk 1 holds the warm-up).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

SOAK = os.environ.get("JAXRL_SOAK") == "1"


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def soak(steps: int = 10_000_000, chunks: int = 100, out: str | os.PathLike | None = None) -> dict:
    from jaxrl_policy import default_config, use_cpu_speedups
    from jaxrl_policy.running.runner import run
    use_cpu_speedups()  # as the CLI does (no effect once the backend started)
    cfg = default_config("ppo", "CartPole-v1", total_timesteps=steps, num_chunks=chunks)
    t, rss, done = [time.perf_counter()], [rss_mib()], [0]

    def progress(line: str) -> None:
        t.append(time.perf_counter())
        rss.append(rss_mib())
        done.append(int(re.search(r"env steps ([\d,]+)/", line).group(1).replace(",", "")))  # type: ignore[union-attr]

    out = Path(out) if out is not None else Path(tempfile.mkdtemp()) / "soak"
    s = run(cfg, 1, out, progress=progress, checkpoint_every_s=10.0, overwrite=True)
    sps = np.diff(done) / np.diff(t)  # per chunk (the first includes nothing of the compile: run() compiles first)
    n = len(sps)
    warm = max(1, n // 10)
    base = float(np.median(sps[10:20])) if n >= 30 else float(np.median(sps[warm:]))
    tail = float(np.median(sps[-10:]))
    return {"env_steps": int(done[-1]), "chunks": n, "compile_s": s["compile_s"], "wall_s": s["wall_s"],
            "env_steps_per_s": s["env_steps_per_s"], "final_return": s["final_return"],
            "rss_mib_start": round(rss[0], 1), "rss_mib_after_warmup": round(rss[warm], 1),
            "rss_mib_end": round(rss[-1], 1), "rss_mib_max": round(max(rss), 1),
            "rss_growth_mib": round(rss[-1] - rss[warm], 1),
            "sps_median_chunks_10_20": round(base), "sps_median_last_10": round(tail),
            "sps_min": round(float(sps[1:].min())), "sps_max": round(float(sps[1:].max())),
            "sps_tail_over_base": round(tail / base, 3),
            "rss_mib_per_chunk": [round(x, 1) for x in rss[1:]], "sps_per_chunk": [round(float(x)) for x in sps]}


@pytest.mark.slow
@pytest.mark.soak
@pytest.mark.skipif(not SOAK, reason="the soak runs only with JAXRL_SOAK=1 (1e7 env steps: minutes)")
def test_soak_flat_memory_and_constant_speed(tmp_path):
    r = soak(out=tmp_path / "soak")
    print(json.dumps({k: v for k, v in r.items() if not k.endswith("per_chunk")}))
    assert r["env_steps"] >= 9_990_000
    assert r["rss_growth_mib"] < 64, r["rss_mib_per_chunk"]
    assert 0.75 <= r["sps_tail_over_base"] <= 1.25, r["sps_per_chunk"]


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=10_000_000)
    p.add_argument("--chunks", type=int, default=100)
    p.add_argument("--out", default=None)
    a = p.parse_args()
    r = soak(a.steps, a.chunks, a.out)
    json.dump(r, sys.stdout, indent=1)
    print()
