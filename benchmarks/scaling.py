#!/usr/bin/env python3
"""Scaling over a device mesh: env-steps/s on 1, 2, 4, 8 … devices, weak and strong.

``python benchmarks/scaling.py [--algo ppo] [--devices 1 2 4 8] [--out FILE]``

- **weak scaling**: a fixed number of envs per device (``--envs-per-device``, default 64), so the
  global batch grows with the device count; the envs of the one run go over the mesh's ``data``
  axis (gradients all-reduced across devices).
- **strong scaling**: a fixed total (``--total-envs``, default 512) split over the devices.
- **seeds**: one run per device over the ``batch`` axis (no communication), ``--seeds-per-device``
  runs each.

Every rate is training env-steps/s with compile excluded (the runner's own clock), best of
``--repeats``. On a CPU the devices are forced host devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=N``, set by this script when the backend has
fewer devices than asked for) that share the same cores: there the numbers check that the program
runs and stays correct on every mesh, not speed. On GPUs/TPUs they are the scaling table.
Writes JSON (machine metadata included) and prints a markdown table.

Shape legend: ``D`` devices, ``E`` envs of a run, ``S`` seeds.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import socket
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="benchmarks/scaling.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--algo", default="ppo", choices=["ppo", "dqn", "vtrace"])
    p.add_argument("--env", default="CartPole-v1")
    p.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--envs-per-device", type=int, default=64)
    p.add_argument("--total-envs", type=int, default=512)
    p.add_argument("--seeds-per-device", type=int, default=1)
    p.add_argument("--iterations", type=int, default=20, help="training iterations per run (default 20)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)
    want = max(a.devices)
    if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={want}")
    import jax

    from jaxrl_policy import default_config, use_cpu_speedups
    from jaxrl_policy.io.metadata import run_metadata
    from jaxrl_policy.running.mesh import MeshShape
    from jaxrl_policy.running.runner import run
    use_cpu_speedups()
    if jax.device_count() < want:
        print(f"scaling.py: error: --devices {want}: only {jax.device_count()} device(s)", file=sys.stderr)
        raise SystemExit(2)
    steps = default_config(a.algo, a.env).num_steps

    def rate(cfg, seeds, shape):
        best = 0.0
        for _ in range(a.repeats):
            s = run(cfg, seeds, None, progress=None, checkpoint_every_s=None, devices=shape.devices, mesh_shape=shape)
            best = max(best, s["env_steps_per_s"])
        return round(best)

    rows = []
    for n in a.devices:
        for kind, envs, seeds, shape in (
                ("weak", a.envs_per_device * n, 1, MeshShape(1, n)),
                ("strong", a.total_envs, 1, MeshShape(1, n)),
                ("seeds", a.envs_per_device, a.seeds_per_device * n, MeshShape(n, 1))):
            if envs % shape.data:
                continue
            cfg = default_config(a.algo, a.env, num_envs=envs, total_timesteps=envs * steps * a.iterations,
                                 num_chunks=1)
            t0 = time.perf_counter()
            r = rate(cfg, seeds, shape)
            rows.append({"kind": kind, "devices": n, "mesh": str(shape), "num_envs": envs, "seeds": seeds,
                         "env_steps_per_s": r, "wall_s": round(time.perf_counter() - t0, 1)})
            print(f"[scaling {a.algo} {kind}] {n} device(s), mesh {shape}, {seeds} seed(s) × {envs} envs: "
                  f"{r:,} env-steps/s", flush=True)
    for row in rows:  # speed-up against the same kind on the fewest devices
        ref = next(x for x in rows if x["kind"] == row["kind"])
        row["speedup"] = round(row["env_steps_per_s"] / ref["env_steps_per_s"], 3)
    doc = {"machine": run_metadata(), "date": _dt.datetime.now().isoformat(timespec="seconds"),
           "command": " ".join(["python", "benchmarks/scaling.py", *(argv if argv is not None else sys.argv[1:])]),
           "algo": a.algo, "env": a.env, "results": rows}
    lines = ["| scaling | devices | mesh | seeds × envs | env-steps/s | × vs fewest devices |",
             "|---|--:|---|---|--:|--:|"]
    lines += [f"| {r['kind']} | {r['devices']} | {r['mesh']} | {r['seeds']} × {r['num_envs']} | "
              f"{r['env_steps_per_s']:,} | {r['speedup']:.2f} |" for r in rows]
    doc["markdown"] = "\n".join(lines)
    out = a.out or (Path(__file__).resolve().parent / "results"
                    / f"scaling-{socket.gethostname().split('.')[0]}-{_dt.date.today().isoformat()}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    m = doc["machine"]
    print(f"\n{m['cpu']} · {m['device_kind']} × {m['device_count']} ({m['backend']})")
    print(doc["markdown"])
    print(f"\nwrote {out}")
    return doc


if __name__ == "__main__":
    main()
