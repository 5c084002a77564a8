#!/usr/bin/env python3
"""Brax throughput: raw Brax stepping vs our adapter vs end-to-end PPO training, in env-steps/s.

``python benchmarks/brax_throughput.py [--env brax:ant] [--num-envs 64] [--repeats 5]`` (needs the
``brax`` extra). Three programs, each compiled once and then called ``--repeats`` times:

- ``raw Brax``: ``jit`` of a ``lax.scan`` over ``--steps`` steps of ``vmap(env.step)`` on Brax's own
  env (no wrappers, no resets) with uniform random actions in [-1, 1];
- ``adapter``: the same scan over our ``make_vec_env(...).step`` (EpisodeWrapper, auto-reset with
  fresh keys, episode statistics), ``vmap``-ed over one seed as the training loop runs it (so the
  reset is computed every step: under ``vmap`` its ``lax.cond`` becomes a select);
- ``PPO train``: ``jit(vmap(make_train(cfg)))`` for one seed with the env's defaults (``num_envs``
  set to ``--num-envs``, no evaluation), ``--ppo-iterations`` iterations per call.

Rates are env steps ÷ wall seconds of a call (compile excluded); the table gives the fastest call
and the median. Prints a markdown table with the machine and writes JSON under benchmarks/results/.

Shape legend: ``E`` envs, ``T`` steps per call, ``D`` action dimensions.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import shlex
import socket
import statistics
import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from jaxrl_policy.cli.bench import positive_int
from jaxrl_policy.core.envs import brax as brax_adapter
from jaxrl_policy.core.envs import make_vec_env
from jaxrl_policy.loop.common import seed_keys
from jaxrl_policy.running.bench import Program, call_seconds, compile_program
from jaxrl_policy.running.build import default_config, make_train


def raw_program(env_id: str, E: int, T: int) -> Program:
    env = brax_adapter._base_env(*brax_adapter.parse_id(env_id))
    D = env.action_size

    def run(key):
        state = jax.vmap(env.reset)(jax.random.split(key, E))

        def body(carry, k):
            state, total = carry
            action = jax.random.uniform(k, (E, D), minval=-1.0, maxval=1.0)
            state = jax.vmap(env.step)(state, action)
            return (state, total + state.reward.sum()), None

        return jax.lax.scan(body, (state, jnp.zeros(())), jax.random.split(key, T))[0][1]

    return compile_program(run, jax.random.PRNGKey(0), env_steps=E * T)


def adapter_program(env_id: str, E: int, T: int) -> Program:
    venv = make_vec_env(env_id, E)
    D = venv.spec.action_shape[0]

    def run(key):
        state = venv.reset(key)

        def body(carry, k):
            state, total = carry
            k_act, k_env = jax.random.split(k)
            action = jax.random.uniform(k_act, (E, D), minval=-1.0, maxval=1.0)
            state, out = venv.step(k_env, state, action)
            return (state, total + out.reward.sum()), None

        return jax.lax.scan(body, (state, jnp.zeros(())), jax.random.split(key, T))[0][1]

    return compile_program(jax.vmap(run), seed_keys(0, 1), env_steps=E * T)


def ppo_program(env_id: str, E: int, iterations: int) -> tuple[Program, dict[str, Any]]:
    probe = default_config("ppo", env_id, num_envs=E, eval_episodes=0)
    cfg = probe.replace(total_timesteps=iterations * probe.steps_per_iteration)
    prog = compile_program(jax.vmap(make_train(cfg)), seed_keys(0, 1),
                           env_steps=cfg.num_iterations * cfg.steps_per_iteration)
    return prog, {k: getattr(cfg, k) for k in ("num_envs", "num_steps", "num_minibatches", "num_epochs",
                                                 "hidden_sizes", "total_timesteps")}


def timed(name: str, prog: Program, repeats: int) -> dict[str, Any]:
    rates = [prog.env_steps / call_seconds(prog) for _ in range(repeats)]
    r = {"program": name, "env_steps_per_call": prog.env_steps, "compile_s": round(prog.compile_s, 1),
         "env_steps_per_s_max": round(max(rates)), "env_steps_per_s_median": round(statistics.median(rates)),
         "env_steps_per_s_all": [round(x) for x in rates]}
    print(f"[{name}] {r['env_steps_per_s_max']:,} env-steps/s (fastest), {r['env_steps_per_s_median']:,} (median); "
          f"compile {r['compile_s']}s", flush=True)
    return r


def table(rows: list[dict], raw_max: float) -> str:
    lines = ["| program | env-steps/s (fastest) | env-steps/s (median) | ÷ raw (fastest) | compile s |",
             "|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['program']} | {r['env_steps_per_s_max']:,} | {r['env_steps_per_s_median']:,} | "
                     f"{r['env_steps_per_s_max'] / raw_max:.2f}× | {r['compile_s']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="benchmarks/brax_throughput.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default="brax:ant", help="brax:NAME[@BACKEND] (default brax:ant, spring backend)")
    p.add_argument("--num-envs", type=positive_int, default=64)
    p.add_argument("--steps", type=positive_int, default=200, help="steps per env per call of raw/adapter")
    p.add_argument("--ppo-iterations", type=positive_int, default=4, help="PPO iterations per call")
    p.add_argument("--repeats", type=positive_int, default=5)
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)
    from jaxrl_policy import use_cpu_speedups
    use_cpu_speedups()  # as the command line trains
    msg = brax_adapter.unknown_env_message(a.env) if brax_adapter.is_brax_id(a.env) else "not a brax: id"
    if msg:
        print(f"benchmarks/brax_throughput.py: error: --env {a.env!r}: {msg}", file=sys.stderr)
        raise SystemExit(2)
    from jaxrl_policy.io.metadata import run_metadata
    E = a.num_envs
    rows = [timed(f"raw Brax ({E} envs)", raw_program(a.env, E, a.steps), a.repeats),
            timed(f"adapter ({E} envs)", adapter_program(a.env, E, a.steps), a.repeats)]
    ppo, ppo_cfg = ppo_program(a.env, E, a.ppo_iterations)
    rows.append(timed(f"PPO train ({E} envs × {ppo_cfg['num_steps']} steps, {ppo_cfg['num_epochs']} epochs × "
                      f"{ppo_cfg['num_minibatches']} minibatches, {ppo_cfg['hidden_sizes']})", ppo, a.repeats))
    m = run_metadata()
    machine = f"{m['cpu']}, {m['cores']} cores, {m['device_kind']} × {m['device_count']}"
    doc = {"machine": m, "machine_line": machine, "env": a.env,
           "date": _dt.datetime.now().isoformat(timespec="seconds"),
           "command": shlex.join(["python", "benchmarks/brax_throughput.py", *argv]), "repeats": a.repeats,
           "ppo_config": ppo_cfg, "results": rows, "markdown": table(rows, rows[0]["env_steps_per_s_max"])}
    host = socket.gethostname().split(".")[0] or "host"
    out = a.out or Path(__file__).resolve().parent / "results" / f"brax-{host}-{_dt.date.today().isoformat()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print(f"\n{a.env}, {E} envs; {machine}; {a.repeats} calls each\n")
    print(doc["markdown"])
    print(f"\nwrote {out}")
    return doc


if __name__ == "__main__":
    main()
