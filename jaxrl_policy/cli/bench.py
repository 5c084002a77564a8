"""``jaxrl-policy bench``: time configs with the library's bench (``running/bench.py``); ``--peers DIR`` runs the
repository's peer harness (``benchmarks/throughput.py``) instead."""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import runpy
import shlex
import sys
from pathlib import Path
from typing import Any, Sequence

from jaxrl_policy._xla_flags import set_cpu_threads, use_cpu_speedups
from jaxrl_policy.cli.common import fail, folder_arg, shared_configs
from jaxrl_policy.core.config import BaseConfig
from jaxrl_policy.io.metadata import run_metadata
from jaxrl_policy.running.bench import ALGOS, markdown_table, measure, row


def positive_int(s: str) -> int:
    """Integers that may be written as 5e5."""
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r}: must be a positive integer") from None
    if not v.is_integer() or v < 1:
        raise argparse.ArgumentTypeError(f"{s!r}: must be a positive integer")
    return int(v)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="jaxrl-policy bench", allow_abbrev=False,
        description="Training throughput of your configs (env-steps/s) next to the raw env rate and the loop's own "
                    "acting-only / learning-only / combined ceiling, timed in one run. Writes JSON (--out) and prints "
                    "a markdown table. Config fields that every algorithm of --algos has are flags too, applied "
                    "to each (--torso mlp, --hidden-sizes 128 128, …). With --peers DIR, runs the repository's "
                    "benchmarks/throughput.py instead (purejaxrl, rejax, the peer ceiling, the speed targets).")
    p.add_argument("--algos", nargs="+", default=["ppo"], choices=ALGOS, help="algorithms (default: ppo)")
    p.add_argument("--env", default="CartPole-v1", help="gymnax env id (default CartPole-v1)")
    p.add_argument("--seeds", type=positive_int, default=1, help="seeds, vmapped in one program (default 1)")
    p.add_argument("--num-envs", type=positive_int, nargs="+", default=None,
                   help="env counts (default: each algorithm's own)")
    p.add_argument("--total-timesteps", type=positive_int, default=None,
                   help="env steps per seed (default: the algorithm's own)")
    p.add_argument("--repeats", type=positive_int, default=3, help="timed runs of each program (default 3)")
    p.add_argument("--ceiling-steps", type=positive_int, default=400_000,
                   help="env steps the learning-only program covers (default 4e5)")
    p.add_argument("--raw-steps", type=positive_int, default=2_000_000,
                   help="env steps of the raw env rate (default 2e6)")
    p.add_argument("--out", type=lambda s: Path(folder_arg(s)), default=None, help="JSON output (default: none)")
    p.add_argument("--quick", action="store_true", help="a smoke run: 2e4 timesteps, repeats 1, small ceilings")
    p.add_argument("--cpu-threads", type=positive_int, default=None, help="XLA:CPU threads (PJRT_NPROC)")
    return p


def plan(a: argparse.Namespace, rest: Sequence[str] = ()) -> list[BaseConfig]:
    """The configs to time, all validated before anything compiles; ``rest``: config-field flags
    (``--torso mlp``) applied to every algorithm, as ``compare`` applies them."""
    cfgs = []
    for num_envs in a.num_envs or [None]:
        over: dict[str, Any] = {} if num_envs is None else {"num_envs": num_envs}
        if a.total_timesteps or a.quick:
            over["total_timesteps"] = a.total_timesteps or 20_000
        cfgs += shared_configs(a.algos, a.env, list(rest), "jaxrl-policy bench", over)
    return sorted(cfgs, key=lambda c: a.algos.index(c.algo))  # each algorithm's env counts together


def bench_main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = build_parser()
    a, rest = p.parse_known_args(argv)
    if rest and not rest[0].startswith("--"):  # a stray word, not a config flag
        p.error(f"unrecognized arguments: {' '.join(rest)}")
    if a.cpu_threads is not None:  # before anything starts JAX's backend
        try:
            set_cpu_threads(a.cpu_threads)
        except (ValueError, RuntimeError) as e:
            fail(f"--cpu-threads: {e}")
    use_cpu_speedups()
    if a.quick:
        a.repeats, a.ceiling_steps, a.raw_steps = 1, 20_000, 20_000
    try:
        cfgs = plan(a, rest)
    except ValueError as e:
        fail(str(e))
    doc: dict[str, Any] = {"machine": run_metadata(), "date": _dt.datetime.now().isoformat(timespec="seconds"),
                           "command": shlex.join(["jaxrl-policy", "bench", *argv]), "repeats": a.repeats,
                           "results": []}
    for cfg in cfgs:
        print(f"[bench {cfg.algo} {cfg.env_id} E={cfg.num_envs} T={cfg.num_steps}] "
              f"{cfg.total_timesteps:,} steps × {a.seeds} seed(s) × {a.repeats} …", flush=True)
        doc["results"].append({**row(cfg, a.seeds), **measure(cfg, a.seeds, a.repeats, a.ceiling_steps, a.raw_steps)})
    doc["markdown"] = markdown_table(doc["results"])
    m = doc["machine"]
    print(f"\n{m['cpu']}, {m['cores']} cores, XLA:CPU threads: {m['cpu_threads'] or 'default (all cores)'}; "
          f"{m['device_kind']} × {m['device_count']}")
    print(doc["markdown"])
    if a.out is not None:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"\nwrote {a.out}")
    return doc


def project_benchmark() -> Path | None:
    """``benchmarks/throughput.py`` of the source checkout the package runs from, if there is one."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "throughput.py"
    return path if path.exists() else None


def cmd_bench(argv: list[str]) -> None:
    """Time configs with the library's bench; ``--peers DIR`` runs the project's harness against peers."""
    if any(a == "--peers" or a.startswith("--peers=") for a in argv):
        script = project_benchmark()
        if script is None:
            fail("--peers: the comparison with peer codebases is the repository's benchmarks/throughput.py, "
                  "which an installed package does not include; run it from a source checkout")
        sys.argv = [str(script), *argv]
        runpy.run_path(str(script), run_name="__main__")
        return
    bench_main(argv)
