"""Frozen teachers: the policy of a finished run folder as a pure ``obs -> logits`` function.

Shape legend: ``B`` batch, ``O...`` observation shape, ``A`` actions, ``S`` seeds of the teacher run.

A run folder of this project (``config.json`` + ``checkpoints/``) holds the loop state of all its
seeds; ``load_teacher`` restores it, keeps the agent of one seed (``seed_index``: position in the
run's ``seeds`` list, default 0) and returns its action distribution as logits:

- actor-critic runs (PPO, V-trace, a distilled student): the policy head's logits / τ;
- DQN runs: a softmax over Q-values at temperature τ, logits = Q / τ (τ → 0: the greedy policy).

The logits are the teacher's distribution over actions at observation ``obs`` (normalised with the
teacher's own running statistics if it kept them). Recurrent teachers are refused (the teacher would
need its own memory carried beside the student's).

``teacher_problems`` checks a run folder without restoring it (only ``config.json`` and the
checkpoint marker are read), so bad teachers fail with config validation, before anything compiles.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Teacher(NamedTuple):
    run_dir: str
    algo: str
    env_id: str  # the env the teacher was trained on (its observation)
    seed: int  # the teacher run's seed that was kept
    logits: Callable[[jax.Array], jax.Array]  # obs [B, O...] -> logits [B, A] (temperature applied)
    params: Any  # the frozen parameters (for tests and students initialised from them)


def _read_config(run_dir: str) -> dict[str, Any]:
    path = Path(run_dir) / "config.json"
    if not Path(run_dir).is_dir():
        raise ValueError("no such folder")
    if not path.exists():
        raise ValueError("not a run folder (no config.json)")
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise ValueError(f"config.json is not valid JSON ({e})") from None


def teacher_problems(run_dir: str, seed_index: int, env_id: str) -> list[str]:
    """Why ``run_dir`` cannot teach on ``env_id`` (empty if it can): one sentence per problem."""
    try:
        d = _read_config(run_dir)
    except ValueError as err:
        return [str(err)]
    from jaxrl_policy import checkpoint
    from jaxrl_policy.envs.adapter import env_spec, unknown_env_message
    out = []
    seeds = d.get("seeds", [])
    if not (0 <= seed_index < len(seeds)):
        out.append(f"teacher_seed = {seed_index} is not a seed index of the run (it has {len(seeds)} seed(s))")
    if checkpoint.latest(Path(run_dir)) is None:
        out.append("has no complete checkpoint (train it with --checkpoint-every > 0)")
    if d.get("torso") == "gru":
        out.append("is recurrent (torso = gru); recurrent teachers are not supported")
    t_env = d.get("student_obs") or d.get("env_id", "?")
    if unknown_env_message(str(t_env)) is not None:
        return out + [f"its env {t_env} is unknown"]
    t, e = env_spec(t_env), env_spec(env_id)
    if t.num_actions is None:
        out.append(f"acts in a continuous action space ({t_env}); distillation needs discrete actions")
    elif t.num_actions != e.num_actions:
        out.append(f"has {t.num_actions} actions ({t_env}) but env_id {env_id} has {e.num_actions}")
    if t.obs_shape != e.obs_shape:
        out.append(f"observes {t.obs_shape} ({t_env}) but env_id {env_id} gives {e.obs_shape}: the teacher sees the "
                   "env's full observation (give the student a narrower view with student_obs)")
    return out


_CACHE: dict[Any, Teacher] = {}


def load_teacher(run_dir: str, seed_index: int = 0, temperature: float = 1.0) -> Teacher:
    """Restore seed ``seed_index`` of ``run_dir``'s latest checkpoint as a frozen ``Teacher``."""
    from jaxrl_policy import checkpoint
    ck = checkpoint.latest(Path(run_dir))
    if ck is None:
        raise ValueError(f"{run_dir}: has no complete checkpoint")
    key = (str(Path(run_dir).resolve()), ck.name, seed_index, float(temperature))
    if key in _CACHE:
        return _CACHE[key]
    from jaxrl_policy.config import config_from_dict
    from jaxrl_policy.loop import make_loop
    from jaxrl_policy.runner import seed_keys
    d = _read_config(run_dir)
    seeds = d.pop("seeds")
    d.pop("run", None)
    cfg = config_from_dict(d)
    loop = make_loop(cfg)
    shapes = jax.eval_shape(jax.vmap(loop.init), seed_keys(cfg.seed, len(seeds)))
    hist = {"env_steps": np.int32, "episode_return": np.float32, "episodes": np.int32, "eval_return": np.float32}
    state, _, _, _ = checkpoint.restore_latest(Path(run_dir), shapes, hist, note=None)
    agent = jax.tree.map(lambda x: jnp.asarray(x[seed_index]), state.agent)
    obs_env = getattr(cfg, "student_obs", None) or cfg.env_id
    from jaxrl_policy.envs.adapter import env_spec
    from jaxrl_policy.networks import make_actor_critic, make_q_network
    from jaxrl_policy.normalization import normalize
    spec = env_spec(obs_env)
    stats = getattr(agent, "obs_stats", None)
    tau = float(temperature)
    if hasattr(agent, "target_params"):  # a Q-learner: Boltzmann policy over its Q-values
        q_apply: Callable[..., Any] = make_q_network(cfg, spec).apply

        def logits(obs):
            return q_apply(agent.params, normalize(stats, obs)) / tau
    else:
        ac_apply: Callable[..., Any] = make_actor_critic(cfg, spec).apply

        def logits(obs):
            return ac_apply(agent.params, normalize(stats, obs))[0] / tau

    teacher = Teacher(run_dir=str(run_dir), algo=cfg.algo, env_id=obs_env, seed=int(seeds[seed_index]),
                      logits=logits, params=agent.params)
    _CACHE[key] = teacher
    return teacher
