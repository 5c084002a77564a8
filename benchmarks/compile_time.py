"""Compile time beside purejaxrl's, at purejaxrl's default CartPole-v1 configurations, and what the cache saves.

    PYTHONPATH=. python benchmarks/compile_time.py --rounds 5 --out benchmarks/results/compile-cpu-DATE.json

Each measurement is a fresh process (nothing warm), purejaxrl's and ours interleaved in rounds so that load
from other processes hits them alike; min and median over the rounds are reported, wall clock and the
process's CPU seconds (all threads; less sensitive to a shared machine).

- purejaxrl (``../shared/peers``, its own venv from ``venv.sh``): ``jit(vmap(make_train(config))).lower(keys)
  .compile()`` for 1 seed, its ``ppo.py`` / ``dqn.py`` defaults.
- ours, what the CLI compiles before its first chunk (``running/programs.programs`` with the disk cache off: the
  ``init`` and ``run_chunk`` programs of one seed, and the ``init`` call), at the same configuration
  (``default_config("ppo" | "dqn", "CartPole-v1")`` equals purejaxrl's) — with our default evaluation
  (16 greedy episodes after every chunk, inside the program) and without it (``eval_episodes=0``:
  purejaxrl evaluates nothing, so this is the same work).
- the cache: ``jaxrl-policy compare --algos ppo dqn`` twice with a fresh ``JAXRL_POLICY_CACHE``: the
  second run's ``compile_s`` against the first's, and the cache's size on disk.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT.parent / "shared" / "peers"

OURS = """
import json, os, sys, time
import jaxrl_policy
from jaxrl_policy import default_config, seed_keys
from jaxrl_policy._xla_flags import use_cpu_speedups
use_cpu_speedups()  # as the CLI does
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import NamedSharding, PartitionSpec
from jaxrl_policy.running import programs
from jaxrl_policy.running.mesh import make_mesh, MeshShape, put
algo, evals = sys.argv[1], int(sys.argv[2])
cfg = default_config(algo, "CartPole-v1", eval_episodes=evals)
mesh = make_mesh(MeshShape(1, 1))
keys = put(np.asarray(seed_keys(0, 1)), NamedSharding(mesh, PartitionSpec("batch")))
jnp.zeros(()).block_until_ready()
c0, t0 = time.process_time(), time.perf_counter()
loop, init, chunk = programs.programs(cfg, mesh, keys, {})
jax.block_until_ready(init(keys, {}))
print(json.dumps({"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}))
"""

PEER = """
import os, sys, time, json
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_enable_concurrency_optimized_scheduler=false")
sys.path.insert(0, sys.argv[2])
import jax, jax.numpy as jnp
import run_purejaxrl as R
algo = sys.argv[1]
cfg = dict(R.PPO if algo == "ppo" else R.DQN)
keys = jax.random.split(jax.random.PRNGKey(0), 1)
jnp.zeros(()).block_until_ready()
train = jax.jit(jax.vmap(__import__(algo).make_train(cfg)))
c0, t0 = time.process_time(), time.perf_counter()
train.lower(keys).compile()
print(json.dumps({"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}))
"""


def run_child(python: str, code: str, args: list[str], env: dict | None = None) -> dict:
    out = subprocess.run([python, "-c", code, *args], capture_output=True, text=True, timeout=900,
                         env={**os.environ, **(env or {})}, cwd=str(ROOT))
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def summarise(xs: list[float]) -> dict:
    return {"min": round(min(xs), 3), "median": round(statistics.median(xs), 3), "n": len(xs)}


def cache_check(python: str) -> dict:
    """``compare --algos ppo dqn`` twice with a fresh cache folder: compile seconds and the cache's size."""
    with tempfile.TemporaryDirectory() as d:
        env = {**os.environ, "JAXRL_POLICY_CACHE": str(Path(d) / "cache"), "PYTHONPATH": str(ROOT)}
        rows = []
        for i in range(2):
            out = Path(d) / f"cmp{i}"
            cmd = [python, "-m", "jaxrl_policy.cli", "compare", "--algos", "ppo", "dqn", "--seeds", "1",
                   "--total-timesteps", "20480", "--out", str(out), "--quiet", "--checkpoint-every", "0"]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, env=env, cwd=str(ROOT))
            if r.returncode:
                raise RuntimeError(r.stderr[-3000:])
            runs = json.loads((out / "summary.json").read_text())["runs"]
            rows.append({r["algo"]: r["compile_s"] for r in runs})
        size = sum(f.stat().st_size for f in (Path(d) / "cache").rglob("*") if f.is_file())
        first, second = sum(rows[0].values()), sum(rows[1].values())
        return {"first_compile_s": rows[0], "second_compile_s": rows[1], "ratio": round(second / first, 3),
                "cache_bytes": size}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--peer-python", default=None,
                   help="python with purejaxrl's deps (default: ../shared/peers/venv.sh)")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--no-cache-check", action="store_true")
    a = p.parse_args()
    peer_py = a.peer_python or subprocess.run([str(PEERS / "venv.sh")], capture_output=True, text=True,
                                              check=True).stdout.strip()
    ours_env = {"PYTHONPATH": str(ROOT), "JAXRL_POLICY_CACHE": "off"}
    cases = {f"purejaxrl {algo}": (peer_py, PEER, [algo, str(PEERS)], None) for algo in ("ppo", "dqn")}
    for algo in ("ppo", "dqn"):
        cases[f"ours {algo}"] = (sys.executable, OURS, [algo, "16"], ours_env)
        cases[f"ours {algo}, no evaluation"] = (sys.executable, OURS, [algo, "0"], ours_env)
    samples: dict[str, dict[str, list[float]]] = {k: {"wall_s": [], "cpu_s": []} for k in cases}
    for r in range(a.rounds):
        for name, (py, code, args, env) in cases.items():
            res = run_child(py, code, args, env)
            for k in ("wall_s", "cpu_s"):
                samples[name][k].append(res[k])
        print(f"round {r + 1}/{a.rounds} done", flush=True)
    table = {name: {k: summarise(v) for k, v in s.items()} for name, s in samples.items()}
    ratios = {}
    for algo in ("ppo", "dqn"):
        peer = table[f"purejaxrl {algo}"]
        for variant in (f"ours {algo}", f"ours {algo}, no evaluation"):
            ratios[variant] = {k: round(table[variant][k]["min"] / peer[k]["min"], 3) for k in ("wall_s", "cpu_s")}
    sys.path.insert(0, str(ROOT))
    from jaxrl_policy.io.metadata import run_metadata
    doc = {"date": datetime.date.today().isoformat(), "machine": run_metadata(), "rounds": a.rounds,
           "compile_s": table, "ratio_of_min_to_purejaxrl": ratios}
    if not a.no_cache_check:
        doc["cache"] = cache_check(sys.executable)
    print(json.dumps({k: doc[k] for k in doc if k != "machine"}, indent=2))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
