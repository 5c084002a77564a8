"""``jaxrl-policy bench``: training throughput against the raw env rate, our own compute ceiling and peers.

Shape legend: ``S`` seeds, ``E`` envs, ``T`` unroll length, ``I`` iterations, ``C`` learn calls.

For each algorithm × env count this measures, in one process and one run (so the ratios between
the numbers are meaningful even when the machine is shared and absolute numbers drift):

1. **training**: ``jax.jit(jax.vmap(make_train(cfg)))`` over ``seed_keys(0, S)``; compile timed
   on its own (``.lower(keys).compile()``), then ``--repeats`` full runs. env-steps/s =
   S × I × E × T / run time; the max (from the fastest run) and the median are reported.
2. **raw env rate**: random actions through gymnax, vmapped over E envs inside one jitted
   ``lax.scan`` (as ``shared/peers/raw_env_ceiling.py``); best of the repeats.
3. **compute ceiling with the project's own pieces** (``make_loop(cfg)``):
   *acting only* = the loop's rollout (``algo.actor`` / ``algo.act`` + ``make_vec_env`` step +
   ``storage.add``) for the same number of env steps as training, no learning;
   *learning only* = ``algo.learn`` called C times in a ``lax.scan`` on one fixed batch sampled once
   from a storage filled by one rollout, counted as C × E × T env steps;
   ``combined = 1 / (1/acting + f/learning)`` is what the loop would reach with zero overhead
   (``f`` = share of iterations that learn: 1, or less for DQN's ``learning_starts``), and
   ``pct_of_combined`` = training ÷ combined.
4. with ``--peers DIR``: purejaxrl (``run_purejaxrl.py``) and the peer compute ceiling
   (``ceiling.py``) at the same hyperparameters, run as subprocesses in the same run.

Training, raw env, acting and learning are compiled first and then timed in interleaved rounds
(train, raw, act, learn; ``--repeats`` rounds), so load from other processes hits all of them alike.
Writes one JSON file and prints a markdown table.
"""
from __future__ import annotations

import jaxrl_policy  # noqa: F401  (first: sets the XLA:CPU scheduler flag before jax starts)

import argparse
import datetime as _dt
import json
import os
import platform
import shlex
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxrl_policy._xla_flags import cpu_threads, set_cpu_threads
from jaxrl_policy.config import BaseConfig, default_config
from jaxrl_policy.envs.adapter import make_gymnax
from jaxrl_policy.loop import make_loop, make_train
from jaxrl_policy.runner import seed_keys

ALGOS = ("ppo", "dqn", "vtrace")
DEFAULT_NUM_ENVS = {"ppo": [4, 64, 1024], "vtrace": [4, 64, 1024], "dqn": [10]}
LARGE_ENVS = 1024  # at and above this many envs ppo/vtrace default to LARGE_TIMESTEPS
LARGE_TIMESTEPS = 5_000_000
PEER_ALGOS = ("ppo", "dqn")  # what shared/peers can time (no V-trace peer)
# V-trace at PPO's batch: 4 envs × 128 steps, 4 minibatches × 4 draws = PPO's 4 epochs × 4 minibatches.
PPO_EQUAL_VTRACE = dict(num_envs=4, num_steps=128, num_minibatches=4, replay_ratio=4)
QUICK = dict(total_timesteps=20_000, num_envs=[4], repeats=1, ceiling_steps=20_000, raw_steps=20_000)
TARGETS = {  # (what, threshold): the speed targets the ratios are read against
    "ppo_vs_purejaxrl": 1.0,
    "ppo_pct_of_peer_combined": 95.0,
    "dqn_vs_purejaxrl": 1.3,
    "vtrace_over_ppo_time_per_step": 1.2,  # at most
}


# ---------------------------------------------------------------------------------------------
# timing helpers
# ---------------------------------------------------------------------------------------------
class Program(NamedTuple):
    """A compiled program, its arguments and the env steps one call covers."""

    compiled: Any
    args: tuple
    env_steps: int
    compile_s: float


def _compile(fn, *args) -> tuple[Any, float]:
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - t0


def _call_s(p: Program) -> float:
    t0 = time.perf_counter()
    jax.block_until_ready(p.compiled(*p.args))
    return time.perf_counter() - t0


def training_program(cfg: BaseConfig, seeds: int) -> Program:
    """``jit(vmap(make_train(cfg)))`` on ``seed_keys(0, seeds)``, compiled on its own clock."""
    keys = seed_keys(0, seeds)
    compiled, compile_s = _compile(jax.vmap(make_train(cfg)), keys)
    return Program(compiled, (keys,), seeds * cfg.num_iterations * cfg.num_envs * cfg.num_steps, compile_s)


def raw_env_program(env_id: str, num_envs: int, total_steps: int, seeds: int = 1) -> Program:
    """Random-action gymnax stepping over ``num_envs`` envs in one jitted scan (raw_env_ceiling.py)."""
    env, params = make_gymnax(env_id)
    T = max(1, total_steps // num_envs)

    def run(key):
        obs, st = jax.vmap(env.reset, (0, None))(jax.random.split(key, num_envs), params)

        def body(c, _):
            st, key = c
            key, ka, ks = jax.random.split(key, 3)
            act = jax.vmap(env.action_space(params).sample)(jax.random.split(ka, num_envs))
            out = jax.vmap(env.step, (0, 0, 0, None))(jax.random.split(ks, num_envs), st, act, params)
            return (out[1], key), out[2].sum()

        return jax.lax.scan(body, (st, key), None, T)[1].sum()

    keys = seed_keys(0, seeds)
    compiled, compile_s = _compile(jax.vmap(run), keys)
    return Program(compiled, (keys,), seeds * num_envs * T, compile_s)


def ceiling_programs(cfg: BaseConfig, seeds: int, learn_steps: int) -> tuple[Program, Program, float, int]:
    """Acting-only and learning-only programs built from ``make_loop(cfg)``'s pieces.

    Returns (acting, learning, learn_fraction, learn_calls).
    """
    loop = make_loop(cfg)
    algo = loop.algorithm
    rollout = loop.rollout
    N = cfg.num_envs * cfg.num_steps
    n_iter = cfg.num_iterations
    keys = seed_keys(0, seeds)

    # acting only: the training loop with learning removed (rollout + storage.add), same env steps
    def acting(key):
        state = loop.init(key)

        def it(carry, i):
            agent, env_state, storage, key = carry
            key, k = jax.random.split(key)
            env_state, unroll, (ep_ret, _, done) = rollout(agent, env_state, k, i * N)
            storage = algo.storage.add(storage, unroll)
            return (agent, env_state, storage, key), (ep_ret * done).sum()

        carry, out = jax.lax.scan(it, (state.agent, state.env, state.storage, state.key),
                                  jnp.arange(n_iter, dtype=jnp.int32))
        return carry[2], out.sum()

    act_c, act_compile = _compile(jax.vmap(acting), keys)

    # learning only: one rollout fills the storage, one batch is sampled, then C learn calls on it
    calls = max(1, min(n_iter, -(-learn_steps // N)))

    def prepare(key):
        state = loop.init(key)
        k_roll, k_sample = jax.random.split(jax.random.fold_in(key, 1))
        _, unroll, _ = rollout(state.agent, state.env, k_roll, jnp.int32(0))
        storage = algo.storage.add(state.storage, unroll)
        return state.agent, algo.storage.sample(storage, k_sample)

    agent, batch = jax.block_until_ready(jax.jit(jax.vmap(prepare))(keys))

    def learning(agent, batch, key):
        def call(agent, i):
            agent, metrics = algo.learn(agent, batch, jax.random.fold_in(key, i), (i + 1) * N)
            return agent, metrics.get("loss", jnp.zeros(()))

        agent, losses = jax.lax.scan(call, agent, jnp.arange(calls, dtype=jnp.int32))
        return agent, losses.sum()

    learn_c, learn_compile = _compile(jax.vmap(learning), agent, batch, keys)
    # Iterations before storage.ready (DQN's learning_starts) only act: weight learning by the share that learns.
    learn_fraction = float(jnp.sum(algo.storage.ready(jnp.arange(1, n_iter + 1, dtype=jnp.int32)))) / n_iter
    return (Program(act_c, (keys,), seeds * n_iter * N, act_compile),
            Program(learn_c, (agent, batch, keys), seeds * calls * N, learn_compile), learn_fraction, calls)


def measure(cfg: BaseConfig, seeds: int, repeats: int, learn_steps: int, raw_steps: int) -> dict[str, Any]:
    """Training, raw env, acting-only and learning-only rates, timed in interleaved rounds.

    Every program is compiled first; then each round times training once and each of the
    other programs once, so all four see the same load on a shared machine. The ceilings get
    one untimed warm-up call each (training gets none, as purejaxrl's timing).
    """
    train = training_program(cfg, seeds)
    raw = raw_env_program(cfg.env_id, cfg.num_envs, min(raw_steps, 100_000 * cfg.num_envs), seeds)
    act, learn, learn_fraction, calls = ceiling_programs(cfg, seeds, learn_steps)
    for p in (raw, act, learn):
        _call_s(p)
    times: dict[str, list[float]] = {"train": [], "raw": [], "act": [], "learn": []}
    for _ in range(repeats):
        for name, p in (("train", train), ("raw", raw), ("act", act), ("learn", learn)):
            times[name].append(_call_s(p))
    rate = {k: p.env_steps / min(times[k]) for k, p in (("raw", raw), ("act", act), ("learn", learn))}
    combined = 1.0 / (1.0 / rate["act"] + learn_fraction / rate["learn"])
    t_min, t_med = min(times["train"]), statistics.median(times["train"])
    return {
        "compile_s": round(train.compile_s, 3),
        "train_s_min": round(t_min, 4),
        "train_s_median": round(t_med, 4),
        "train_env_steps_per_s_max": round(train.env_steps / t_min),
        "train_env_steps_per_s_median": round(train.env_steps / t_med),
        "raw_env_steps_per_s": round(rate["raw"]),
        "acting_only": round(rate["act"]),
        "learning_only": round(rate["learn"]),
        "combined": round(combined),
        "combined_median": round(1.0 / (statistics.median(times["act"]) / act.env_steps
                                        + learn_fraction * statistics.median(times["learn"]) / learn.env_steps)),
        "learn_calls": calls,
        "learn_fraction": round(learn_fraction, 4),
    }


# ---------------------------------------------------------------------------------------------
# peers
# ---------------------------------------------------------------------------------------------
def _json_lines(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return out


def run_peer(python: str, script: Path, args: list[str], timeout: float) -> tuple[list[dict], str | None]:
    """Run a peer script; return (its JSON lines, error or None)."""
    cmd = [python, str(script), *args]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return [], f"timed out after {timeout:.0f}s: {shlex.join(cmd)}"
    lines = _json_lines(p.stdout)
    if p.returncode != 0 or not lines:
        tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
        return lines, f"exit {p.returncode}: {shlex.join(cmd)}: {' | '.join(tail)}"
    return lines, None


def peer_python(peers: Path, given: str | None) -> str:
    if given:
        return given
    p = subprocess.run(["bash", str(peers / "venv.sh")], capture_output=True, text=True, check=True)
    return p.stdout.strip().splitlines()[-1]


def measure_peers(cfg: BaseConfig, seeds: int, repeats: int, peers: Path, python: str,
                  timeout: float) -> dict[str, Any]:
    """purejaxrl training and the peer compute ceiling at ``cfg``'s env count and budget."""
    out: dict[str, Any] = {}
    errors = []
    lines, err = run_peer(python, peers / "run_purejaxrl.py",
                          ["--algo", cfg.algo, "--seeds", str(seeds), "--num-envs", str(cfg.num_envs),
                           "--total-timesteps", str(cfg.total_timesteps), "--repeats", str(repeats),
                           "--env", cfg.env_id], timeout)
    if lines:
        pj = lines[-1]
        out.update(peer_purejaxrl_env_steps_per_s=pj.get("env_steps_per_s"),
                   peer_purejaxrl_compile_s=pj.get("compile_s"),
                   peer_purejaxrl_train_s_min=pj.get("train_s_min"),
                   peer_purejaxrl_train_s_median=pj.get("train_s_median"))
        if pj.get("train_s_median"):
            out["peer_purejaxrl_env_steps_per_s_median"] = round(seeds * pj["total_timesteps"] / pj["train_s_median"])
    if err:
        errors.append(err)
    # ceiling.py knows only CartPole at purejaxrl's hyperparameters; its DQN update assumes 10 env steps per update.
    if cfg.env_id == "CartPole-v1" and (cfg.algo == "ppo" or cfg.num_envs == 10):
        lines, err = run_peer(python, peers / "ceiling.py", ["--algo", cfg.algo, "--num-envs", str(cfg.num_envs)],
                              timeout)
        if lines:
            c = lines[-1]
            out.update(peer_ceiling_acting_only=c.get("rollout_only"), peer_ceiling_learning_only=c.get("update_only"),
                       peer_ceiling_combined=c.get("combined"))
        if err:
            errors.append(err)
    if errors:
        out["peer_errors"] = errors
    return out


# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------
def machine_info() -> dict[str, Any]:
    import jaxlib

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    dev = jax.devices()
    return {"hostname": socket.gethostname(), "cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "jax": jax.__version__, "jaxlib": jaxlib.__version__,
            "device_kind": dev[0].device_kind, "device_count": len(dev), "xla_flags": os.environ.get("XLA_FLAGS", ""),
            "cpu_threads": cpu_threads()}


def _ratio(a, b, digits=3):
    return round(a / b, digits) if a and b else None


def add_ratios(r: dict[str, Any]) -> None:
    tr = r["train_env_steps_per_s_max"]
    r["pct_of_combined"] = round(100 * tr / r["combined"], 1)
    r["pct_of_combined_median"] = round(100 * r["train_env_steps_per_s_median"] / r["combined_median"], 1)
    r["pct_of_raw_env"] = round(100 * tr / r["raw_env_steps_per_s"], 1)
    if r.get("peer_purejaxrl_env_steps_per_s"):
        r["vs_purejaxrl"] = _ratio(tr, r["peer_purejaxrl_env_steps_per_s"])
        if r.get("peer_purejaxrl_env_steps_per_s_median"):
            r["vs_purejaxrl_median"] = _ratio(r["train_env_steps_per_s_median"],
                                              r["peer_purejaxrl_env_steps_per_s_median"])
    if r.get("peer_ceiling_combined"):
        r["pct_of_peer_combined"] = round(100 * tr / r["peer_ceiling_combined"], 1)
        r["combined_vs_peer_combined"] = _ratio(r["combined"], r["peer_ceiling_combined"])


def check_targets(results: list[dict]) -> list[dict]:
    """The speed targets, read off this run's ratios (None where a ratio is missing)."""
    out = []
    for r in results:
        label = f"{r['algo']} E={r['num_envs']}"
        if r["algo"] == "ppo" and r.get("vs_purejaxrl") is not None:
            out.append(dict(target=f"{label}: train ÷ purejaxrl >= 1.0", value=r["vs_purejaxrl"],
                            met=r["vs_purejaxrl"] >= TARGETS["ppo_vs_purejaxrl"]))
        if r["algo"] == "ppo" and r.get("pct_of_peer_combined") is not None and r["num_envs"] in (4, 1024):
            out.append(dict(target=f"{label}: train ÷ peer combined >= 95%", value=r["pct_of_peer_combined"],
                            met=r["pct_of_peer_combined"] >= TARGETS["ppo_pct_of_peer_combined"]))
        if r["algo"] == "dqn" and r.get("vs_purejaxrl") is not None:
            out.append(dict(target=f"{label}: train ÷ purejaxrl >= 1.3", value=r["vs_purejaxrl"],
                            met=r["vs_purejaxrl"] >= TARGETS["dqn_vs_purejaxrl"]))
        if r.get("vtrace_over_ppo_time_per_step") is not None:
            v = r["vtrace_over_ppo_time_per_step"]
            out.append(dict(target="vtrace (PPO-equal batch) time per env step ÷ PPO's <= 1.2", value=v,
                            met=v <= TARGETS["vtrace_over_ppo_time_per_step"]))
    return out


def _fmt(x) -> str:
    if x is None:
        return "–"
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e4:
        return f"{x / 1e3:.0f}k"
    if x >= 1e3:
        return f"{x / 1e3:.1f}k"
    return f"{x:.0f}"


def markdown_table(results: list[dict]) -> str:
    peers = any("peer_purejaxrl_env_steps_per_s" in r or "peer_ceiling_combined" in r for r in results)
    head = ["algo", "E×T", "train max", "median", "raw env", "acting", "learning", "combined", "% comb", "compile s"]
    if peers:
        head += ["purejaxrl", "÷ pj", "peer comb", "% peer comb"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        name = r["algo"] + (" (ppo-eq)" if r.get("variant") == "ppo_equal" else "")
        row = [name, f"{r['num_envs']}×{r['num_steps']}", _fmt(r["train_env_steps_per_s_max"]),
               _fmt(r["train_env_steps_per_s_median"]), _fmt(r["raw_env_steps_per_s"]), _fmt(r["acting_only"]),
               _fmt(r["learning_only"]), _fmt(r["combined"]), f"{r['pct_of_combined']:.0f}%", f"{r['compile_s']:.1f}"]
        if peers:
            pj, pc = r.get("peer_purejaxrl_env_steps_per_s"), r.get("peer_ceiling_combined")
            row += [_fmt(pj), f"{r['vs_purejaxrl']:.2f}×" if r.get("vs_purejaxrl") else "–", _fmt(pc),
                    f"{r['pct_of_peer_combined']:.0f}%" if r.get("pct_of_peer_combined") else "–"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _default_out() -> Path:
    root = Path(__file__).resolve().parents[1]
    base = root if (root / "benchmarks").is_dir() else Path.cwd()
    host = socket.gethostname().split(".")[0] or "host"
    return base / "benchmarks" / "results" / f"throughput-{host}-{_dt.date.today().isoformat()}.json"


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------
def _int(s: str) -> int:
    """Integers that may be written as 5e5."""
    v = float(s)
    if not v.is_integer() or v < 1:
        raise argparse.ArgumentTypeError(f"{s!r}: must be a positive integer")
    return int(v)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="jaxrl-policy bench",
        description="Training throughput (env-steps/s) vs the raw env rate, the project's own compute ceiling "
                    "(acting only, learning only, combined) and, with --peers, purejaxrl and its ceiling. "
                    "Writes JSON and prints a markdown table.")
    p.add_argument("--algos", nargs="+", default=list(ALGOS), choices=ALGOS, help="algorithms (default: all)")
    p.add_argument("--env", default="CartPole-v1", help="gymnax env id (default CartPole-v1)")
    p.add_argument("--seeds", type=_int, default=1, help="seeds, vmapped in one program (default 1)")
    p.add_argument("--num-envs", type=_int, nargs="+", default=None,
                   help="env counts for every algorithm (default: 4 64 1024 for ppo/vtrace, 10 for dqn)")
    p.add_argument("--total-timesteps", type=_int, default=None,
                   help=f"env steps per seed for every run (default: the algorithm's default; "
                        f"{LARGE_TIMESTEPS:.0e} for ppo/vtrace at >= {LARGE_ENVS} envs)")
    p.add_argument("--repeats", type=_int, default=None, help="timed runs of each program; min and median kept (default 3)")
    p.add_argument("--ceiling-steps", type=_int, default=None,
                   help="env steps the learning-only ceiling covers (learn calls × E × T, at least one call; "
                        "default 4e5)")
    p.add_argument("--raw-steps", type=_int, default=None,
                   help="env steps of the raw env rate (default 2e6, capped at 1e5 × E for few envs)")
    p.add_argument("--no-ppo-equal", action="store_true",
                   help="skip the V-trace run at PPO's batch (4 envs × 128 steps, 4 minibatches, replay ratio 4)")
    p.add_argument("--peers", type=Path, default=None, help="peer harness folder (e.g. ../shared/peers)")
    p.add_argument("--peer-python", default=None, help="python for the peers (default: output of PEERS/venv.sh)")
    p.add_argument("--peer-timeout", type=float, default=1800, help="seconds before a peer run is abandoned")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON output (default benchmarks/results/throughput-<hostname>-<date>.json)")
    p.add_argument("--quick", action="store_true",
                   help="tiny smoke run: 2e4 timesteps, 4 envs (dqn: 10), repeats 1")
    p.add_argument("--cpu-threads", type=_int, default=None,
                   help="XLA:CPU threads (PJRT_NPROC) for this run and the peers it times (default: all cores)")
    return p


def plan(a: argparse.Namespace) -> list[tuple[dict, BaseConfig]]:
    """(row tags, config) for every measurement, all validated before anything is compiled."""
    items = []
    for algo in a.algos:
        envs = a.num_envs or (DEFAULT_NUM_ENVS[algo] if not a.quick or algo == "dqn" else QUICK["num_envs"])
        for E in envs:
            over: dict[str, Any] = {"num_envs": E}
            if a.total_timesteps:
                over["total_timesteps"] = a.total_timesteps
            elif a.quick:
                over["total_timesteps"] = QUICK["total_timesteps"]
            elif algo in ("ppo", "vtrace") and E >= LARGE_ENVS:
                over["total_timesteps"] = LARGE_TIMESTEPS
            items.append(({}, default_config(algo, a.env, **over)))
    if "vtrace" in a.algos and not a.no_ppo_equal:
        over = dict(PPO_EQUAL_VTRACE)
        if a.total_timesteps or a.quick:
            over["total_timesteps"] = a.total_timesteps or QUICK["total_timesteps"]
        eq = default_config("vtrace", a.env, **over)
        same = next((i for i, (_, c) in enumerate(items) if c == eq), None)
        if same is None:
            items.append(({"variant": "ppo_equal"}, eq))
        else:  # a planned V-trace row already runs at PPO's batch (its CartPole defaults): don't time it twice
            items[same] = ({"variant": "ppo_equal"}, eq)
    return items


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = list(sys.argv[1:] if argv is None else argv)
    a = build_parser().parse_args(argv)
    if a.cpu_threads is not None:  # before anything starts JAX's backend; the peers inherit it
        try:
            set_cpu_threads(a.cpu_threads)
        except (ValueError, RuntimeError) as e:
            print(f"jaxrl-policy bench: error: --cpu-threads: {e}", file=sys.stderr)
            raise SystemExit(2)
    defaults = QUICK if a.quick else {"repeats": 3, "ceiling_steps": 400_000, "raw_steps": 2_000_000}
    for k in ("repeats", "ceiling_steps", "raw_steps"):
        if getattr(a, k) is None:
            setattr(a, k, defaults[k])
    try:
        items = plan(a)
    except ValueError as e:
        print(f"jaxrl-policy bench: error: {e}", file=sys.stderr)
        raise SystemExit(2)
    peers = a.peers.resolve() if a.peers else None
    py = None
    if peers is not None:
        if not (peers / "run_purejaxrl.py").exists():
            print(f"jaxrl-policy bench: error: {peers}: no run_purejaxrl.py", file=sys.stderr)
            raise SystemExit(2)
        py = peer_python(peers, a.peer_python)
    out = a.out or _default_out()
    doc: dict[str, Any] = {"machine": machine_info(), "date": _dt.datetime.now().isoformat(timespec="seconds"),
                           "command": shlex.join(["jaxrl-policy", "bench", *argv]), "repeats": a.repeats,
                           "results": []}
    results = doc["results"]
    t_start = time.perf_counter()
    for tags, cfg in items:
        t0 = time.perf_counter()
        label = f"[bench {cfg.algo}{' ppo-equal' if tags else ''} {cfg.env_id} E={cfg.num_envs} T={cfg.num_steps}]"
        print(f"{label} training {cfg.total_timesteps:,} steps × {a.seeds} seed(s) × {a.repeats} …", flush=True)
        r: dict[str, Any] = {"algo": cfg.algo, **tags, "env": cfg.env_id, "num_envs": cfg.num_envs,
                             "num_steps": cfg.num_steps, "seeds": a.seeds, "total_timesteps": cfg.total_timesteps,
                             "num_iterations": cfg.num_iterations,
                             "gradient_steps_per_iteration": cfg.gradient_steps_per_iteration}
        r.update(measure(cfg, a.seeds, a.repeats, a.ceiling_steps, a.raw_steps))
        if peers is not None and cfg.algo in PEER_ALGOS and not tags:
            print(f"{label} peers …", flush=True)
            r.update(measure_peers(cfg, a.seeds, a.repeats, peers, py, a.peer_timeout))
        add_ratios(r)
        r["bench_wall_s"] = round(time.perf_counter() - t0, 1)
        results.append(r)
        print(f"{label} {r['train_env_steps_per_s_max']:,} env-steps/s (max), "
              f"{r['train_env_steps_per_s_median']:,} (median), {r['pct_of_combined']}% of combined "
              f"{r['combined']:,}" + (f", {r['vs_purejaxrl']}× purejaxrl" if r.get("vs_purejaxrl") else "")
              + f"  [{r['bench_wall_s']}s]", flush=True)
        for e in r.get("peer_errors", []):
            print(f"{label} peer error: {e}", file=sys.stderr, flush=True)
    for r in results:  # after the loop: the PPO row may be timed after the V-trace one
        if r.get("variant") == "ppo_equal":
            ppo = next((x for x in results if x["algo"] == "ppo" and x["num_envs"] == r["num_envs"]
                        and x["num_steps"] == r["num_steps"] and x["total_timesteps"] == r["total_timesteps"]), None)
            if ppo is not None:
                # time per env step = 1 / rate; from the fastest runs, and from the medians
                r["vtrace_over_ppo_time_per_step"] = _ratio(ppo["train_env_steps_per_s_max"],
                                                            r["train_env_steps_per_s_max"])
                r["vtrace_over_ppo_time_per_step_median"] = _ratio(ppo["train_env_steps_per_s_median"],
                                                                   r["train_env_steps_per_s_median"])
    doc["targets"] = check_targets(results)
    doc["wall_s"] = round(time.perf_counter() - t_start, 1)
    doc["markdown"] = markdown_table(results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print()
    m = doc["machine"]
    print(f"{m['cpu']}, {m['cores']} cores, XLA:CPU threads: "
          f"{m['cpu_threads'] or 'default (all cores)'}; {m['device_kind']} × {m['device_count']}")
    print(doc["markdown"])
    for t in doc["targets"]:
        print(f"- {t['target']}: {t['value']} ({'met' if t['met'] else 'NOT met'})")
    print(f"\nwrote {out}")
    return doc


if __name__ == "__main__":
    main()
