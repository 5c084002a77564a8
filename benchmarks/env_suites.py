#!/usr/bin/env python3
"""Adapter overhead on the optional suites: each suite's own auto-resetting env vs our ``VecEnv``, in env-steps/s.

``python benchmarks/env_suites.py [--suites craftax xminigrid navix jumanji] [--num-envs 64] [--repeats 5]``
(needs the suites' extras). Per suite, programs compiled once and then called ``--repeats`` times, in turn
(raw, adapter, raw, adapter, …: a shared machine's load hits both alike):

- ``raw``: ``jit`` of a ``lax.scan`` over ``--steps`` steps of the suite's own batched, auto-resetting step
  with uniform random actions: Craftax's auto-reset env (``make_craftax_env_from_name(name, True)``), xminigrid's
  ``GymAutoResetWrapper``, Navix's ``Environment.step`` (which resets an ended timestep), Jumanji's
  ``AutoResetWrapper(next_obs_in_extras=True)`` (Jumanji's own option to keep the final observation, which the
  adapter returns too; the others have none); ``vmap``-ed over E envs;
- ``adapter``: the same scan over ``make_vec_env(id, E).step`` (our auto-reset, terminated vs truncated, the
  final observation, float32 observations, episode statistics);
- Craftax only, ``adapter, every env its own reset``: ``reset_slots = E``, the reset work of the raw env;
- Jumanji only, ``raw, no final observation``: its ``AutoResetWrapper`` as it comes.

Both are ``vmap``-ed over one seed, as the training loop runs them (so a ``lax.cond`` on "some env ended"
computes both branches, as it does in the suites' own auto-reset wrappers). Rates are env steps ÷ wall seconds
of a call (compile excluded); the table gives the fastest and the median call, and the adapter's overhead =
1 − adapter rate ÷ raw rate (negative: the adapter is faster). Writes JSON with the machine under
benchmarks/results/.

Shape legend: ``E`` envs, ``T`` steps per call.
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
from typing import Any, Callable

import jax
import jax.numpy as jnp

from jaxrl_policy.cli.bench import positive_int
from jaxrl_policy.core.envs import craftax as craftax_adapter
from jaxrl_policy.core.envs import make_vec_env, unknown_env_message
from jaxrl_policy.loop.common import seed_keys
from jaxrl_policy.running.bench import Program, call_seconds, compile_program

ENVS = {"craftax": "craftax:Craftax-Classic-Symbolic-v1", "xminigrid": "xminigrid:MiniGrid-Empty-5x5",
        "navix": "navix:Navix-Empty-5x5-v0", "jumanji": "jumanji:Snake-v1"}
# Craftax's own auto-reset env generates a world for every env on every step (~160 env-steps/s with 64 envs on
# this CPU): fewer steps per call keep a call near a minute
STEPS = {"craftax": 20, "navix": 2000}


def _total(*trees) -> jax.Array:
    """A scalar that depends on every leaf: a program must compute what it returns (nothing is dead code)."""
    return sum(jnp.sum(x.astype(jnp.float32)) for t in trees for x in jax.tree.leaves(t))


def raw_fns(suite: str, env_id: str, E: int, final_obs: bool = True) -> tuple[Callable, Callable, int]:
    """``(reset(key) -> state, step(key, state, action) -> (state, total), num_actions)`` of the suite's own
    batched, auto-resetting env; ``total`` sums what a learner reads: the observation, reward and episode end, and
    the final observation of an ended episode where the suite's wrapper can keep it (Jumanji; ``final_obs``)."""
    name = env_id.partition(":")[2]
    if suite == "craftax":
        env, params = craftax_adapter.make_env(name, auto_reset=True)

        def craftax_step(k, s, a):
            obs, s, r, d, _ = jax.vmap(env.step, (0, 0, 0, None))(jax.random.split(k, E), s, a, params)
            return s, _total(obs, r, d)

        return (lambda k: jax.vmap(env.reset, (0, None))(jax.random.split(k, E), params)[1], craftax_step,
                int(env.num_actions))
    if suite == "xminigrid":
        import xminigrid
        from xminigrid.wrappers import GymAutoResetWrapper

        env, params = xminigrid.make(name)
        auto = GymAutoResetWrapper(env)

        def xminigrid_step(k, ts, a):
            ts = jax.vmap(auto.step, (None, 0, 0))(params, ts, a)
            return ts, _total(ts.observation, ts.reward, ts.discount, ts.step_type)

        return (lambda k: jax.vmap(auto.reset, (None, 0))(params, jax.random.split(k, E)), xminigrid_step,
                int(env.num_actions(params)))
    if suite == "navix":
        import navix

        env = navix.make(name)

        def navix_step(k, ts, a):
            ts = jax.vmap(env.step)(ts, a)
            return ts, _total(ts.observation, ts.reward, ts.step_type)

        return lambda k: jax.vmap(env.reset)(jax.random.split(k, E)), navix_step, len(env.action_set)
    if suite == "jumanji":
        import jumanji
        from jumanji.wrappers import AutoResetWrapper

        # next_obs_in_extras: Jumanji's own way to keep the final observation (for truncations), as our VecEnv does
        auto = AutoResetWrapper(jumanji.make(name), next_obs_in_extras=final_obs)

        def jumanji_step(k, s, a):
            state, ts = jax.vmap(auto.step)(s, a)
            return state, _total(ts.observation, ts.reward, ts.discount, ts.step_type, ts.extras)

        return (lambda k: jax.vmap(auto.reset)(jax.random.split(k, E))[0], jumanji_step,
                int(auto.action_spec.num_values))
    raise ValueError(suite)


def adapter_fns(venv) -> tuple[Callable, Callable]:
    def step(k, s, a):
        s, out = venv.step(k, s, a)
        return s, _total(s.obs, out)

    return venv.reset, step


def scan_program(reset: Callable, step: Callable, num_actions: int, E: int, T: int) -> Program:
    def run(key):
        state = reset(key)

        def body(carry, k):
            state, total = carry
            k_act, k_env = jax.random.split(k)
            action = jax.random.randint(k_act, (E,), 0, num_actions)
            state, t = step(k_env, state, action)
            return (state, total + t), None

        return jax.lax.scan(body, (state, jnp.zeros(())), jax.random.split(key, T))[0][1]

    return compile_program(jax.vmap(run), seed_keys(0, 1), env_steps=E * T)


def programs(suite: str, env_id: str, E: int, T: int) -> list[tuple[str, Program]]:
    reset, step, n = raw_fns(suite, env_id, E)
    out = [("raw", scan_program(reset, step, n, E, T)),
           ("adapter", scan_program(*adapter_fns(make_vec_env(env_id, E)), n, E, T))]
    if suite == "jumanji":  # the raw wrapper without the final observation, for reference
        reset, step, n = raw_fns(suite, env_id, E, final_obs=False)
        out.append(("raw, no final observation", scan_program(reset, step, n, E, T)))
    if suite == "craftax":
        exact = craftax_adapter.make_vec_env(env_id, E, reset_slots=E)
        out.append(("adapter, every env its own reset", scan_program(*adapter_fns(exact), n, E, T)))
    return out


def timed(progs: list[tuple[str, Program]], repeats: int) -> list[dict[str, Any]]:
    rates: dict[str, list[float]] = {name: [] for name, _ in progs}
    for _ in range(repeats):  # in turn: load on a shared machine hits every program alike
        for name, prog in progs:
            rates[name].append(prog.env_steps / call_seconds(prog))
    rows = []
    for name, prog in progs:
        r = rates[name]
        rows.append({"program": name, "env_steps_per_call": prog.env_steps, "compile_s": round(prog.compile_s, 1),
                     "env_steps_per_s_max": round(max(r)), "env_steps_per_s_median": round(statistics.median(r)),
                     "env_steps_per_s_all": [round(x) for x in r]})
    raw = rows[0]
    for r in rows:
        r["overhead_max"] = round(1 - r["env_steps_per_s_max"] / raw["env_steps_per_s_max"], 3)
        r["overhead_median"] = round(1 - r["env_steps_per_s_median"] / raw["env_steps_per_s_median"], 3)
    return rows


def table(results: dict[str, dict]) -> str:
    lines = ["| env | program | env-steps/s (fastest) | env-steps/s (median) | overhead (fastest) | "
             "overhead (median) | compile s |", "|---|---|---:|---:|---:|---:|---:|"]
    for env_id, res in results.items():
        for r in res["rows"]:
            lines.append(f"| `{env_id}` | {r['program']} | {r['env_steps_per_s_max']:,} | "
                         f"{r['env_steps_per_s_median']:,} | {r['overhead_max']:+.1%} | {r['overhead_median']:+.1%} | "
                         f"{r['compile_s']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="benchmarks/env_suites.py", description=__doc__.split("\n\n")[0],
                                allow_abbrev=False)
    p.add_argument("--suites", nargs="+", default=list(ENVS), choices=list(ENVS))
    p.add_argument("--num-envs", type=positive_int, default=64)
    p.add_argument("--steps", type=positive_int, default=200, help="steps per env per call (Craftax: 20, Navix: 2000)")
    p.add_argument("--repeats", type=positive_int, default=5)
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)
    from jaxrl_policy.io.metadata import run_metadata

    results = {}
    for suite in a.suites:
        env_id = ENVS[suite]
        msg = unknown_env_message(env_id)
        if msg:
            print(f"[{suite}] skipped: {msg}", flush=True)
            continue
        T = STEPS.get(suite, a.steps)
        rows = timed(programs(suite, env_id, a.num_envs, T), a.repeats)
        for r in rows:
            print(f"[{env_id}] {r['program']}: {r['env_steps_per_s_max']:,} env-steps/s (fastest), "
                  f"{r['env_steps_per_s_median']:,} (median), overhead {r['overhead_median']:+.1%} (median); "
                  f"compile {r['compile_s']}s", flush=True)
        results[env_id] = {"num_envs": a.num_envs, "steps_per_call": T, "rows": rows}
    m = run_metadata()
    machine = f"{m['cpu']}, {m['cores']} cores, {m['device_kind']} × {m['device_count']}"
    doc = {"machine": m, "machine_line": machine, "date": _dt.datetime.now().isoformat(timespec="seconds"),
           "command": shlex.join(["python", "benchmarks/env_suites.py", *argv]), "repeats": a.repeats,
           "results": results, "markdown": table(results)}
    host = socket.gethostname().split(".")[0] or "host"
    out = a.out or (Path(__file__).resolve().parent / "results"
                    / f"env-suites-{host}-{_dt.date.today().isoformat()}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print(f"\n{a.num_envs} envs; {machine}; {a.repeats} calls each\n")
    print(doc["markdown"])
    print(f"\nwrote {out}")
    return doc


if __name__ == "__main__":
    main()
