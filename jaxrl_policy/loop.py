"""The one training loop: ``make_train(cfg) -> train(key)``, a ``lax.scan`` over iterations.

Shape legend: ``T`` unroll length, ``E`` envs, ``I`` iterations, ``C`` chunks, ``S`` seeds.

Every algorithm runs through this loop unchanged; it never looks at the algorithm's name::

    hp = config constants, overridden by the traced hyperparameters given to train(key, hparams)
    for each iteration i (scan):
        actor = algo.actor(agent, hp)                      # maybe lagged parameters
        collect T steps: algo.act(actor, obs, hp) → env.step → unroll [T, E]
        storage = storage.add(storage, unroll)
        if storage.ready(i + 1):                           # unbatched → real lax.cond under vmap
            agent = algo.learn(agent, storage.sample(key), hp)
        if evaluation is due (every eval_every env steps, and at the end):
            eval_return = mean return of M greedy episodes from the fixed evaluation keys
        metrics[i] = episode stats + learn metrics + eval metrics (NaN where none)
                     + learned: 1 where learn ran, else 0
    after each chunk (scan): nonfinite_params = 1 if a float leaf of the agent state is NaN/inf,
                             else 0, on the chunk's last iteration (NaN on the others: not checked)

Evaluation (Agarwal et al. 2021's protocol: a deterministic policy on fixed episodes) runs the
learner's greedy policy on ``eval_episodes`` envs in parallel, one episode each, from keys fixed by
``eval_seed`` — the same episodes for every algorithm, seed and evaluation — inside the same
program, after learning. Its env steps are not part of the training budget (``env_steps``).

``make_loop`` exposes the same iteration as ``init`` + ``run_chunk(state, chunk)`` so the CLI can
run host-visible chunks (progress, logs) while ``make_train`` scans ``run_chunk`` over all chunks
in one XLA program. Both run the identical chunk function, so they agree up to float rounding (XLA
fuses the two programs differently: ~1 ulp, which training can amplify over many updates).
Bit-identical reruns are promised for the same program: same config (``num_chunks`` included),
seeds and device count. When the chunk length does not divide
the iteration count, the last chunk's surplus iterations are skipped by an unbatched
``lax.cond`` and their metrics dropped by the host.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxrl_policy.algorithms import make_algorithm
from jaxrl_policy.algorithms.common import nan_like
from jaxrl_policy.config import BaseConfig, hparams
from jaxrl_policy.envs.adapter import make_vec_env
from jaxrl_policy.types import DIAGNOSTICS, Algorithm, HParams, LoopState, Transition


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

    env: Any  # envs.adapter.EnvState, leaves [E, ...]
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


def make_loop(cfg: BaseConfig) -> Loop:
    if cfg.dataset is not None:  # learning from a fixed dataset: no acting (offline.py)
        from jaxrl_policy.offline import make_offline_loop
        return make_offline_loop(cfg)
    venv = make_vec_env(cfg.env_id, cfg.num_envs)
    algo = make_algorithm(cfg, venv.spec)
    T, E = cfg.num_steps, cfg.num_envs
    steps_per_iter = T * E
    constants = hparams(cfg)  # the config's own values: compile-time constants of the program
    evaluate = make_evaluation(cfg, algo, venv.spec.max_episode_steps)
    init_carry = algo.init_carry(E) if algo.init_carry is not None else None

    def hp_of(state: LoopState) -> HParams:
        return {**constants, **state.hparams}

    def init(key, hparams: dict[str, Any] | None = None) -> LoopState:
        given = check_hparams(cfg, hparams)
        hp = {**constants, **given}
        key, k_agent, k_env, k_ex = jax.random.split(key, 4)
        agent = algo.init(k_agent)
        acting = RolloutState(env=venv.reset(k_env), carry=init_carry, first=jnp.ones((E,), bool))
        unroll_example = jax.eval_shape(lambda: _rollout(agent, acting, k_ex, jnp.int32(0), hp)[1])
        storage = algo.storage.init(jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), unroll_example))
        return LoopState(agent=agent, env=acting.env, storage=storage, key=key, iteration=jnp.zeros((), jnp.int32),
                         hparams=given, carry=acting.carry, first=acting.first)

    def _rollout(agent, acting: RolloutState, key, env_step0, hp: HParams):
        """T steps of acting: ``(RolloutState, Transition [T, E], (return, length, done) [T, E])``."""
        actor = algo.actor(agent, hp)
        # All of the unroll's keys in one draw: one PRNG call instead of one per step.
        step_keys = jax.random.split(key, 2 * T).reshape(T, 2, *key.shape)

        def step(acting: RolloutState, xs):
            t, (k_act, k_env) = xs
            env_step = env_step0 + t * E
            carry = None if acting.carry is None else reset_carry(init_carry, acting.carry, acting.first)
            action, extras, new_carry = algo.act(actor, acting.env.obs, carry, k_act, env_step, hp)
            if carry is not None:  # what learning replays a recurrent policy from
                extras = {**extras, "carry": carry, "first": acting.first}
            new_env, out = venv.step(k_env, acting.env, action)
            tr = Transition(obs=acting.env.obs, action=action, reward=out.reward, terminated=out.terminated,
                            truncated=out.truncated, next_obs=out.next_obs, extras=extras)
            done = out.terminated | out.truncated
            ep = (out.episode_return, out.episode_length, done)
            return RolloutState(env=new_env, carry=new_carry, first=done), (tr, ep)

        acting, (unroll, ep) = jax.lax.scan(
            step, acting, (jnp.arange(T, dtype=jnp.int32), (step_keys[:, 0], step_keys[:, 1])))
        return acting, unroll, ep

    def learn_metric_shapes(state: LoopState, hp: HParams):
        def f():
            batch = algo.storage.sample(state.storage, state.key)
            return algo.learn(state.agent, batch, state.key, jnp.int32(0), hp)[1]
        return jax.eval_shape(f)

    def iteration(state: LoopState, i):
        """``i`` is the global iteration index; it comes from the scan's xs, so it stays unbatched."""
        hp = hp_of(state)
        key, k_roll, k_sample, k_learn = jax.random.split(state.key, 4)
        env_step0 = i * steps_per_iter
        acting, unroll, (ep_ret, ep_len, done) = _rollout(
            state.agent, RolloutState(env=state.env, carry=state.carry, first=state.first), k_roll, env_step0, hp)
        agent = state.agent if algo.observe is None else algo.observe(state.agent, unroll, hp)
        storage = algo.storage.add(state.storage, unroll)
        env_steps = env_step0 + steps_per_iter

        def do_learn(agent):  # hp is closed over (not an operand), so constants stay constants
            agent, metrics = algo.learn(agent, algo.storage.sample(storage, k_sample), k_learn, env_steps, hp)
            return agent, {**metrics, "learned": jnp.ones((), jnp.float32)}

        shapes = learn_metric_shapes(state, hp)

        def skip(agent):
            empty = nan_like(jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes))
            if "grad_steps" in empty:
                empty["grad_steps"] = jnp.zeros_like(empty["grad_steps"])
            return agent, {**empty, "learned": jnp.zeros((), jnp.float32)}

        agent, learn_metrics = jax.lax.cond(algo.storage.ready(i + 1), do_learn, skip, agent)
        eval_metrics = {}
        if evaluate is not None:  # `i` is unbatched: a real branch, evaluation costs nothing in between
            eval_metrics = jax.lax.cond(eval_due(i), lambda a: evaluate(a, hp),
                                        lambda a: nan_like(jax.eval_shape(lambda: evaluate(a, hp))), agent)
        n_done = done.sum()
        denom = jnp.maximum(n_done, 1)
        metrics = {
            "env_steps": env_steps,
            "episode_return": jnp.where(n_done > 0, (ep_ret * done).sum() / denom, jnp.nan),
            "episode_length": jnp.where(n_done > 0, (ep_len * done).sum() / denom, jnp.nan),
            "episodes": n_done,
            **{k: jnp.full((), jnp.nan) for k in DIAGNOSTICS},
            **learn_metrics,
            **eval_metrics,
        }
        new = LoopState(agent=agent, env=acting.env, storage=storage, key=key, iteration=state.iteration + 1,
                        hparams=state.hparams, carry=acting.carry, first=acting.first)
        return new, metrics

    n_iter = cfg.num_iterations
    ipc = cfg.iterations_per_chunk
    num_chunks = -(-n_iter // ipc)

    eval_due = make_eval_due(cfg, steps_per_iter)
    run_chunk = make_run_chunk(iteration, n_iter, ipc)

    return Loop(init=init, rollout=_rollout, run_chunk=run_chunk, iteration=iteration, num_chunks=num_chunks,
                iterations_per_chunk=ipc, algorithm=algo, hparams=constants,
                max_episode_steps=venv.spec.max_episode_steps)


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
        empty = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(iteration, state, i)[1])
        return jax.lax.cond(i < n_iter, iteration, lambda st, _: (st, nan_like(empty)), state, i)

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
    ``nonfinite_params``, one reduction per leaf; see ``check_nonfinite``)."""
    flags = [~jnp.isfinite(x).all() for x in jax.tree.leaves(tree) if jnp.issubdtype(jnp.result_type(x), jnp.inexact)]
    return jnp.any(jnp.stack(flags)).astype(jnp.float32) if flags else jnp.zeros((), jnp.float32)


def make_evaluation(cfg: BaseConfig, algo: Algorithm, time_limit: int | None) -> Callable | None:
    """``evaluate(agent, hp) -> {eval_return, eval_length, eval_complete}`` (scalars), or None when
    ``eval_episodes`` is 0.

    M = ``eval_episodes`` envs reset from the fixed evaluation key and step ``eval_max_steps`` (or the
    env's time limit) times; each env's first episode counts (gymnax resets it afterwards, and what
    follows is ignored). ``eval_complete`` is the share of the M episodes that ended in time.
    """
    M = cfg.eval_episodes
    if not M:
        return None
    env = make_vec_env(cfg.env_id, M)
    steps = cfg.eval_max_steps or time_limit
    assert steps, "config validation asks for eval_max_steps where the env has no time limit"
    k_reset, k_steps = jax.random.split(jax.random.PRNGKey(cfg.eval_seed))
    step_keys = jax.random.split(k_steps, steps)

    init_carry = algo.init_carry(M) if algo.init_carry is not None else None

    def evaluate(agent, hp: HParams):
        def policy(obs, carry, key):
            if algo.greedy is not None:
                return algo.greedy(agent, obs, carry, hp)
            action, _, carry = algo.act(algo.actor(agent, hp), obs, carry, key, jnp.int32(cfg.total_timesteps), hp)
            return action, carry

        def step(c, key):  # after its first episode an env's rewards are ignored (so is its carry's reset)
            env_state, policy_carry, ret, length, done = c
            k_act, k_env = jax.random.split(key)
            action, policy_carry = policy(env_state.obs, policy_carry, k_act)
            env_state, out = env.step(k_env, env_state, action)
            ret = ret + jnp.where(done, 0.0, out.reward)
            length = length + (~done).astype(jnp.int32)
            return (env_state, policy_carry, ret, length, done | out.terminated | out.truncated), None

        init = (env.reset(k_reset), init_carry, jnp.zeros(M, jnp.float32), jnp.zeros(M, jnp.int32),
                jnp.zeros(M, bool))
        (_, _, ret, length, done), _ = jax.lax.scan(step, init, step_keys)
        return {"eval_return": ret.mean(), "eval_length": length.astype(jnp.float32).mean(),
                "eval_complete": done.astype(jnp.float32).mean()}

    return evaluate


def make_train(cfg: BaseConfig) -> Callable[..., tuple[LoopState, dict]]:
    """Pure ``train(key, hparams=None) -> (final_state, metrics)``; metrics have leading axis = iterations.

    ``hparams`` maps traced config fields (``cfg.TRACED``; ``jaxrl_policy.hparams(cfg)`` lists them
    with the config's values) to scalars; fields left out keep the config's value as a constant of
    the program. ``jax.jit(jax.vmap(train))(keys)`` runs one seed per key;
    ``jax.jit(jax.vmap(jax.vmap(train, (0, None)), (None, 0)))(keys, points)`` runs S seeds × P
    points (``points``: the same dict with leaves stacked to ``[P]``) as one program, every point
    starting from the same keys (paired comparison).
    """
    loop = make_loop(cfg)

    def train(key, hparams: dict[str, Any] | None = None):
        # The chunks as a scan of run_chunk: the same iterations and the same end-of-chunk checks
        # (nonfinite_params) as the CLI's chunked run; a short last chunk's surplus rows are dropped.
        state, m = jax.lax.scan(loop.run_chunk, loop.init(key, hparams), jnp.arange(loop.num_chunks, dtype=jnp.int32))
        return state, jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:])[:cfg.num_iterations], m)

    return train
