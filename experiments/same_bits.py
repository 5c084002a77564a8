"""Same bits before and after a refactor: run a fixed set of CLI commands, then compare two such runs.

    python experiments/same_bits.py run OUT_DIR          # from the checkout to test (its cwd is used)
    python experiments/same_bits.py compare A_DIR B_DIR  # exit 1 unless every logged number is identical

The commands are small (tens of seconds each on a 2-core CPU) and cover every learner and loop
path: PPO, DQN, V-trace, a recurrent PPO (GRU), continuous PPO (Pendulum), a distill run whose
teacher is the PPO run, DQN learning offline from a dataset collected from that teacher, and a
3-point learning-rate sweep (one compiled program). ``compare`` checks every ``metrics.jsonl``
value (wall-clock fields excepted), every ``summary.json`` number that is not a time, and each
seed's ``agent_sha256`` (a digest of the whole final agent state: parameters, optimizer moments,
target network). Run both sides on the same machine with the same ``XLA_FLAGS``: bit-identity is
promised per machine, not across CPUs.

``--skip-metric NAME`` leaves a metric out of the comparison (a commit that changes what a column
means, e.g. ``learned``, says so in its note and compares the rest).
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

TIME_KEYS = {"wall_s", "compile_s", "env_steps_per_s", "env_steps_per_s_per_seed"}

COMMANDS: list[tuple[str, list[str]]] = [
    ("ppo", ["train", "--algo", "ppo", "--seeds", "2", "--total-timesteps", "20480"]),
    ("dqn", ["train", "--algo", "dqn", "--seeds", "2", "--total-timesteps", "20000", "--learning-starts", "2000"]),
    ("vtrace", ["train", "--algo", "vtrace", "--seeds", "2", "--total-timesteps", "20480", "--policy-lag", "2"]),
    ("ppo_gru", ["train", "--algo", "ppo", "--seeds", "2", "--total-timesteps", "10240", "--torso", "gru",
                 "--rnn-size", "16"]),
    ("ppo_pendulum", ["train", "--algo", "ppo", "--env", "Pendulum-v1", "--seeds", "1",
                      "--total-timesteps", "20000", "--num-envs", "10"]),
    ("distill", ["distill", "--teacher", "{out}/ppo", "--seeds", "2", "--total-timesteps", "10240",
                 "--mode", "mixed", "--rl-coef", "0.5"]),
    ("collect", ["collect", "--from", "{out}/ppo", "--episodes", "20", "--out", "{out}/data.npz"]),
    ("dqn_offline", ["train", "--algo", "dqn", "--dataset", "{out}/data.npz", "--seeds", "2",
                     "--total-timesteps", "5000", "--learning-starts", "0"]),
    ("sweep", ["sweep", "--algo", "ppo", "--seeds", "2", "--total-timesteps", "10240",
               "--grid", "learning_rate=1e-4,3e-4,1e-3"]),
]


def run_all(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, args in COMMANDS:
        args = [a.replace("{out}", str(out)) for a in args]
        if name != "collect":
            args += ["--out", str(out / name), "--quiet"]
        t = time.perf_counter()
        cmd = [sys.executable, "-m", "jaxrl_policy.cli", *args]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        print(f"{name}: {time.perf_counter() - t:.1f} s", flush=True)


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def compare(a: Path, b: Path, skip: set[str]) -> list[str]:
    problems = []
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.name in ("metrics.jsonl", "summary.json"))
    if not files:
        return [f"{a}: no runs found"]
    for rel in files:
        pa, pb = a / rel, b / rel
        if not pb.exists():
            problems.append(f"{rel}: missing in {b}")
            continue
        if rel.name == "metrics.jsonl":
            ra = [json.loads(x) for x in pa.read_text().splitlines()]
            rb = [json.loads(x) for x in pb.read_text().splitlines()]
            if len(ra) != len(rb):
                problems.append(f"{rel}: {len(ra)} vs {len(rb)} rows")
                continue
            for i, (x, y) in enumerate(zip(ra, rb, strict=True)):
                for k in sorted((set(x) | set(y)) - TIME_KEYS - skip):
                    if not _same(x.get(k), y.get(k)):
                        problems.append(f"{rel} row {i} {k}: {x.get(k)!r} vs {y.get(k)!r}")
        else:
            sa, sb = json.loads(pa.read_text()), json.loads(pb.read_text())
            for run_a, run_b in zip(sa.get("runs", [sa]), sb.get("runs", [sb]), strict=True):
                for k in sorted((set(run_a) | set(run_b)) - TIME_KEYS - skip):
                    if not _same(run_a.get(k), run_b.get(k)):
                        problems.append(f"{rel} {k}: {run_a.get(k)!r} vs {run_b.get(k)!r}")
    return problems


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("out")
    c = sub.add_parser("compare")
    c.add_argument("a")
    c.add_argument("b")
    c.add_argument("--skip-metric", action="append", default=[])
    a = p.parse_args(argv)
    if a.cmd == "run":
        run_all(Path(a.out))
        return
    problems = compare(Path(a.a), Path(a.b), set(a.skip_metric))
    for line in problems[:50]:
        print(line)
    n = sum(1 for _ in Path(a.a).rglob("metrics.jsonl"))
    print(f"{n} runs compared: " + ("identical" if not problems else f"{len(problems)} differences"))
    raise SystemExit(1 if problems else 0)


if __name__ == "__main__":
    main()
