"""Time your own config: training env-steps/s against the raw env rate and the loop's own parts.

Shape legend: ``S`` seeds, ``E`` envs, ``T`` unroll length, ``I`` iterations, ``C`` learn calls.

``measure(cfg, seeds, …)`` times, in one process and one run (so the ratios between the numbers
are meaningful even when the machine is shared and absolute numbers drift):

1. **training**: ``jax.jit(jax.vmap(make_train(cfg)))`` over ``seed_keys(0, S)``; compile timed
   on its own (``.lower(keys).compile()``), then ``repeats`` full runs. env-steps/s =
   S × I × E × T / run time; the max (fastest run) and the median are reported.
2. **raw env rate**: random actions through gymnax, vmapped over E envs inside one jitted
   ``lax.scan``.
3. **the loop's own parts** (``build_loop(cfg)``): *acting only* = the rollout (``algo.actor`` /
   ``algo.act`` + env step + ``storage.add``) for the same env steps as training, no learning;
   *learning only* = ``algo.learn`` called C times in a ``lax.scan`` on one fixed batch;
   ``combined = 1 / (1/acting + f/learning)`` is what the loop would reach with zero overhead
   (``f`` = share of iterations that learn: 1, or less before DQN's ``learning_starts``), and
   ``pct_of_combined`` = training ÷ combined.

All programs are compiled first and then timed in interleaved rounds (train, raw, act, learn),
so load from other processes hits all of them alike. ``jaxrl-policy bench`` runs this for the
configs on its command line (``cli/bench.py``); the project's benchmark against peer codebases (purejaxrl, rejax,
their compute ceiling) and its speed targets live in the repository's ``benchmarks/`` folder
(``jaxrl-policy bench --peers DIR`` runs it from a source checkout).
"""
from __future__ import annotations

import statistics
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxrl_policy.core.config import BaseConfig
from jaxrl_policy.core.envs import make_gymnax
from jaxrl_policy.loop.common import RolloutState, seed_keys
from jaxrl_policy.running.build import build_loop, make_train

ALGOS = ("ppo", "dqn", "vtrace")


class Program(NamedTuple):
    """A compiled program, its arguments and the env steps one call covers."""

    compiled: Any
    args: tuple
    env_steps: int
    compile_s: float


def compile_program(fn, *args, env_steps: int) -> Program:
    """``jax.jit(fn)`` lowered and compiled for ``args``, the compile timed on its own."""
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return Program(compiled=compiled, args=args, env_steps=env_steps, compile_s=time.perf_counter() - t0)


def call_seconds(p: Program) -> float:
    t0 = time.perf_counter()
    jax.block_until_ready(p.compiled(*p.args))
    return time.perf_counter() - t0


def training_program(cfg: BaseConfig, seeds: int) -> Program:
    """``jit(vmap(make_train(cfg)))`` on ``seed_keys(0, seeds)``."""
    keys = seed_keys(0, seeds)
    steps = seeds * cfg.num_iterations * cfg.steps_per_iteration
    return compile_program(jax.vmap(make_train(cfg)), keys, env_steps=steps)


def raw_env_program(env_id: str, num_envs: int, total_steps: int, seeds: int = 1) -> Program:
    """Random-action gymnax stepping over ``num_envs`` envs in one jitted scan (peers' raw_env_ceiling.py)."""
    env, params = make_gymnax(env_id)
    T = max(1, total_steps // num_envs)

    def run(key):
        obs, st = jax.vmap(env.reset, (0, None))(jax.random.split(key, num_envs), params)

        def body(carry, _):
            st, key = carry
            key, k_act, k_step = jax.random.split(key, 3)
            act = jax.vmap(env.action_space(params).sample)(jax.random.split(k_act, num_envs))
            out = jax.vmap(env.step, (0, 0, 0, None))(jax.random.split(k_step, num_envs), st, act, params)
            return (out[1], key), out[2].sum()

        return jax.lax.scan(body, (st, key), None, T)[1].sum()

    return compile_program(jax.vmap(run), seed_keys(0, seeds), env_steps=seeds * num_envs * T)


def learning_fraction(cfg: BaseConfig) -> float:
    """Share of iterations that learn: those whose collected env steps reach ``learning_starts`` (if any)."""
    starts = getattr(cfg, "learning_starts", 0)
    n = cfg.num_iterations
    waiting = min(n, max(0, -(-starts // cfg.steps_per_iteration) - 1))
    return (n - waiting) / n


def ceiling_programs(cfg: BaseConfig, seeds: int, learn_steps: int) -> tuple[Program, Program, int]:
    """Acting-only and learning-only programs built from ``build_loop(cfg)``'s pieces; returns (acting, learning, C)."""
    loop = build_loop(cfg)
    algo = loop.algorithm
    N = cfg.steps_per_iteration
    n_iter = cfg.num_iterations
    keys = seed_keys(0, seeds)
    hp = loop.hparams  # the config's own values, constants as in training

    # acting only: the training loop with learning removed (rollout + storage.add), same env steps
    def acting(key):
        state = loop.init(key)

        def it(carry, i):
            agent, acting, storage, key = carry
            key, k = jax.random.split(key)
            acting, unroll, (ep_ret, _, done) = loop.rollout(agent, acting, k, i * N, hp)
            storage = algo.storage.add(storage, unroll)
            return (agent, acting, storage, key), (ep_ret * done).sum()

        acting = RolloutState(env=state.env, carry=state.carry, first=state.first)
        carry, out = jax.lax.scan(it, (state.agent, acting, state.storage, state.key),
                                  jnp.arange(n_iter, dtype=jnp.int32))
        return carry[2], out.sum()

    act = compile_program(jax.vmap(acting), keys, env_steps=seeds * n_iter * N)

    # learning only: one rollout fills the storage, one batch is sampled, then C learn calls on it
    calls = max(1, min(n_iter, -(-learn_steps // N)))

    def prepare(key):
        state = loop.init(key)
        k_roll, k_sample = jax.random.split(jax.random.fold_in(key, 1))
        acting = RolloutState(env=state.env, carry=state.carry, first=state.first)
        _, unroll, _ = loop.rollout(state.agent, acting, k_roll, jnp.int32(0), hp)
        storage = algo.storage.add(state.storage, unroll)
        return state.agent, algo.storage.sample(storage, k_sample)

    agent, batch = jax.block_until_ready(jax.jit(jax.vmap(prepare))(keys))
    first = n_iter - calls  # the last C iterations' env steps: past any learning_starts

    def learning(agent, batch, key):
        def call(agent, i):
            agent, metrics = algo.learn(agent, batch, jax.random.fold_in(key, i), (first + i + 1) * N, hp)
            return agent, metrics.get("loss", jnp.zeros(()))

        agent, losses = jax.lax.scan(call, agent, jnp.arange(calls, dtype=jnp.int32))
        return agent, losses.sum()

    learn = compile_program(jax.vmap(learning), agent, batch, keys, env_steps=seeds * calls * N)
    return act, learn, calls


def measure(cfg: BaseConfig, seeds: int = 1, repeats: int = 3, learn_steps: int = 400_000,
            raw_steps: int = 2_000_000) -> dict[str, Any]:
    """Training, raw env, acting-only and learning-only rates, timed in interleaved rounds.

    The ceilings get one untimed warm-up call each (training gets none, as purejaxrl's timing).
    """
    train = training_program(cfg, seeds)
    raw = raw_env_program(cfg.env_id, cfg.num_envs, min(raw_steps, 100_000 * cfg.num_envs), seeds)
    act, learn, calls = ceiling_programs(cfg, seeds, learn_steps)
    for p in (raw, act, learn):
        call_seconds(p)
    times: dict[str, list[float]] = {"train": [], "raw": [], "act": [], "learn": []}
    for _ in range(repeats):
        for name, p in (("train", train), ("raw", raw), ("act", act), ("learn", learn)):
            times[name].append(call_seconds(p))
    rate = {k: p.env_steps / min(times[k]) for k, p in (("raw", raw), ("act", act), ("learn", learn))}
    f = learning_fraction(cfg)
    combined = 1.0 / (1.0 / rate["act"] + f / rate["learn"])
    combined_median = 1.0 / (statistics.median(times["act"]) / act.env_steps
                             + f * statistics.median(times["learn"]) / learn.env_steps)
    t_min, t_med = min(times["train"]), statistics.median(times["train"])
    tr_max, tr_med = train.env_steps / t_min, train.env_steps / t_med
    return {
        "compile_s": round(train.compile_s, 3),
        "train_s_min": round(t_min, 4),
        "train_s_median": round(t_med, 4),
        "train_env_steps_per_s_max": round(tr_max),
        "train_env_steps_per_s_median": round(tr_med),
        "raw_env_steps_per_s": round(rate["raw"]),
        "acting_only": round(rate["act"]),
        "learning_only": round(rate["learn"]),
        "combined": round(combined),
        "combined_median": round(combined_median),
        "pct_of_combined": round(100 * tr_max / combined, 1),
        "pct_of_combined_median": round(100 * tr_med / combined_median, 1),
        "pct_of_raw_env": round(100 * tr_max / rate["raw"], 1),
        "learn_calls": calls,
        "learn_fraction": round(f, 4),
    }


def row(cfg: BaseConfig, seeds: int, **tags) -> dict[str, Any]:
    """The identifying fields of a result row."""
    return {"algo": cfg.algo, **tags, "env": cfg.env_id, "num_envs": cfg.num_envs, "num_steps": cfg.num_steps,
            "seeds": seeds, "total_timesteps": cfg.total_timesteps, "num_iterations": cfg.num_iterations,
            "gradient_steps_per_iteration": cfg.gradient_steps_per_iteration}


def fmt_rate(x) -> str:
    if x is None:
        return "–"
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e4:
        return f"{x / 1e3:.0f}k"
    if x >= 1e3:
        return f"{x / 1e3:.1f}k"
    return f"{x:.0f}"


BASE_COLUMNS: list[tuple[str, Any]] = [
    ("algo", lambda r: r["algo"] + (f" ({r['variant']})" if r.get("variant") else "")),
    ("E×T", lambda r: f"{r['num_envs']}×{r['num_steps']}"),
    ("seeds", lambda r: str(r["seeds"])),
    ("train max", lambda r: fmt_rate(r["train_env_steps_per_s_max"])),
    ("median", lambda r: fmt_rate(r["train_env_steps_per_s_median"])),
    ("raw env", lambda r: fmt_rate(r["raw_env_steps_per_s"])),
    ("acting", lambda r: fmt_rate(r["acting_only"])),
    ("learning", lambda r: fmt_rate(r["learning_only"])),
    ("combined", lambda r: fmt_rate(r["combined"])),
    ("% comb", lambda r: f"{r['pct_of_combined']:.0f}%"),
    ("compile s", lambda r: f"{r['compile_s']:.1f}"),
]


def markdown_table(results: list[dict], columns: list[tuple[str, Any]] = BASE_COLUMNS) -> str:
    """One row per result; ``columns`` are ``(header, row -> cell text)``."""
    lines = ["| " + " | ".join(h for h, _ in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r) for _, cell in columns) + " |" for r in results]
    return "\n".join(lines)
