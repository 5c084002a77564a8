"""The pieces every loop shares: the chunked scan, the evaluation schedule, the divergence flag, seeds.

Shape legend: ``I`` iterations of a chunk, ``E`` envs, ``S`` seeds.

A loop (``online.make_loop``, ``offline.make_offline_loop``) is a ``Loop`` of pure functions: ``init(key,
hparams)`` and ``run_chunk(state, chunk)``, one ``lax.scan`` over a chunk's iterations. The CLI runs the
chunks from the host (progress, logs, checkpoints in between); ``make_train`` scans ``run_chunk`` over
all chunks in one XLA program. Both run the identical chunk function, so they agree up to float
rounding (XLA fuses the two programs differently: ~1 ulp, which training can amplify over many
updates). Bit-identical reruns are promised for the same program: same config (``num_chunks``
included), seeds and device count. When the chunk length does not divide the iteration count, the
last chunk's surplus iterations are skipped by an unbatched ``lax.cond`` and their metrics dropped
by the host.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxrl_policy.core.config import BaseConfig, hparams
from jaxrl_policy.core.types import Algorithm, HParams, LoopState, nan_like


def train_fn(loop: Loop, num_iterations: int) -> Callable[..., tuple[LoopState, dict]]:
    """``train(key, hparams=None) -> (final_state, metrics [I, ...])``: the chunks of ``loop`` as one scan of
    ``run_chunk`` — the same iterations and end-of-chunk checks (``nonfinite_params``) as the CLI's chunked run;
    a short last chunk's surplus rows are dropped. ``run/build.make_train`` is this for a config's loop."""
    def train(key, hparams: dict[str, Any] | None = None):
        state, m = jax.lax.scan(loop.run_chunk, loop.init(key, hparams), jnp.arange(loop.num_chunks, dtype=jnp.int32))
        return state, jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:])[:num_iterations], m)

    return train


def seed_keys(seed: int, num_seeds: int) -> jax.Array:
    """Seed i uses PRNGKey(seed + i), so seed i of a multi-seed run equals a 1-seed run with seed + i."""
    return jax.vmap(jax.random.PRNGKey)(jnp.arange(seed, seed + num_seeds, dtype=jnp.uint32))


def check_hparams(cfg: BaseConfig, given: dict[str, Any] | None) -> HParams:
    """The traced hyperparameters given to ``train``/``init`` as arrays of the program's dtypes.

    Names must be traced fields of ``cfg`` (a static field would need another compile: change the
    config instead). Values are not range-checked here (they may be tracers): build them with
    ``sweep.grid_points`` / ``sweep.load_points`` or validate a config per point first.
    """
    if not given:
        return {}
    unknown = sorted(set(given) - cfg.TRACED)
    if unknown:
        static = [k for k in unknown if k in cfg.static_fields()]
        raise ValueError(f"hparams: {', '.join(unknown)}: not traced {cfg.algo} fields"
                         + (f" ({', '.join(static)} shape the program: change the config instead)" if static else "")
                         + f"; traced fields: {', '.join(sorted(cfg.TRACED))}")
    defaults = hparams(cfg)
    return {k: jnp.asarray(v).astype(defaults[k].dtype) for k, v in given.items()}


class RolloutState(NamedTuple):
    """What acting carries from step to step: the envs, the policy's recurrent state, episode starts."""

    env: Any  # core.envs.EnvState, leaves [E, ...]
    carry: Any  # the policy's recurrent state, leaves [E, ...]; None for feed-forward policies
    first: jax.Array  # [E] bool: the next step starts an episode


def reset_carry(init, carry, first):
    """``init`` where an episode starts (``first`` [E]), ``carry`` elsewhere (leaves ``[E, ...]``)."""
    return jax.tree.map(lambda i, c: jnp.where(first.reshape(-1, *([1] * (c.ndim - 1))), i, c), init, carry)


class Loop(NamedTuple):
    """Host-visible pieces of one training run (pure functions)."""

    init: Callable[..., LoopState]  # (key, hparams=None) -> LoopState
    rollout: Callable  # (agent, RolloutState, key, env_step0, hp) -> (RolloutState, Transition [T, E], episode stats)
    run_chunk: Callable[[LoopState, jax.Array], tuple[LoopState, dict]]  # (state, chunk index)
    iteration: Callable[[LoopState, jax.Array], tuple[LoopState, dict]]  # (state, iteration index)
    num_chunks: int
    iterations_per_chunk: int
    algorithm: Algorithm
    hparams: HParams  # the config's own traced values (numpy constants), before any override
    max_episode_steps: int | None  # the env's time limit


def evaluate_if_due(evaluate: Callable | None, due: jax.Array, agent: Any, hp: HParams) -> dict:
    """``evaluate(agent, hp)`` where ``due`` (unbatched: a real branch, evaluation costs nothing in between), NaN
    metrics elsewhere; ``{}`` without an evaluation."""
    if evaluate is None:
        return {}
    seen: dict[str, Any] = {}

    def run(a):
        seen["metrics"] = evaluate(a, hp)
        return seen["metrics"]

    # lax.cond traces its true branch first, so the NaN branch reuses that trace's shapes instead of tracing the
    # evaluation again (as within_budget does for the iteration: tracing is most of a warm compile's time)
    return jax.lax.cond(due, run, lambda a: nan_like(seen["metrics"]), agent)


def make_eval_due(cfg: BaseConfig, steps_per_iter: int) -> Callable[[jax.Array], jax.Array]:
    """``eval_due(i)``: evaluate after iteration ``i`` (global index) — at the end, and after every
    chunk or every ``eval_every`` steps of ``steps_per_iter`` per iteration."""
    n_iter, ipc = cfg.num_iterations, cfg.iterations_per_chunk

    def eval_due(i):
        last = i == n_iter - 1
        if cfg.eval_every is None:
            return last | ((i + 1) % ipc == 0)
        if cfg.eval_every == 0:
            return last
        return last | ((i + 1) * steps_per_iter // cfg.eval_every != i * steps_per_iter // cfg.eval_every)

    return eval_due


def make_run_chunk(iteration: Callable, n_iter: int,
                   ipc: int) -> Callable[[LoopState, jax.Array], tuple[LoopState, dict]]:
    """``run_chunk(state, chunk)``: iterations ``chunk · ipc …`` as one scan (surplus iterations of a
    short last chunk skipped), then the end-of-chunk ``check_nonfinite`` on the last one that ran."""
    body = iteration if n_iter % ipc == 0 else within_budget(iteration, n_iter)

    def run_chunk(state: LoopState, chunk):
        idx = chunk * ipc + jnp.arange(ipc, dtype=jnp.int32)
        return check_nonfinite(*jax.lax.scan(body, state, idx), last_row=jnp.minimum(ipc, n_iter - chunk * ipc) - 1)

    return run_chunk


def within_budget(iteration: Callable, n_iter: int) -> Callable:
    """``iteration`` for ``i < n_iter``, else the state unchanged and NaN metrics. Only the last chunk
    can reach past the budget; ``i`` is unbatched, so this stays a real branch."""
    def guarded(state: LoopState, i):
        seen: dict[str, Any] = {}

        def run(st, i):
            out = iteration(st, i)
            seen["metrics"] = out[1]
            return out

        def skip(st, i):  # lax.cond traces its true branch first: the metrics' shapes are known here
            return st, nan_like(seen["metrics"])

        return jax.lax.cond(i < n_iter, run, skip, state, i)

    return guarded


def check_nonfinite(state: LoopState, metrics: dict, last_row) -> tuple[LoopState, dict]:
    """The scan's outputs with ``metrics["nonfinite_params"]`` [I]: ``nonfinite(agent)`` of the final
    state at row ``last_row`` (the last iteration that ran), NaN on the other rows (not checked).

    Why once per scan (chunk) and not every iteration: the check is one reduction per agent-state
    leaf (parameters, target, optimizer moments); for DQN's 10-env, one-gradient-step iterations
    that per-operation cost was 30% of XLA:CPU's training time. The host reads the metrics once
    per chunk anyway, and a non-finite parameter stays non-finite (every later update reads it),
    so checking the state that is about to be checkpointed catches the same runs; the
    per-iteration loss and gradient norm still name the first bad iteration.
    """
    flags = jnp.full(metrics["env_steps"].shape, jnp.nan, jnp.float32)
    return state, {**metrics, "nonfinite_params": flags.at[last_row].set(nonfinite(state.agent))}


def nonfinite(tree) -> jax.Array:
    """1.0 if any float leaf of ``tree`` holds a NaN or ±inf, else 0.0 (the divergence guard's
    ``nonfinite_params``; see ``check_nonfinite``)."""
    leaves = [jnp.ravel(x).astype(jnp.float32) for x in jax.tree.leaves(tree)
              if jnp.issubdtype(jnp.result_type(x), jnp.inexact)]
    if not leaves:
        return jnp.zeros((), jnp.float32)
    # one reduction over every leaf (a reduction per leaf was ~1 CPU-s of DQN's compile for 30+ small kernels)
    return (~jnp.isfinite(jnp.concatenate(leaves)).all()).astype(jnp.float32)
