"""Export a run's greedy policy (``jaxrl-policy export RUN_DIR --out DIR``) and check an export.

Shape legend: ``M`` evaluation episodes (one per env, in parallel).

The run's latest checkpoint is restored (``build.restore_agent``), its algorithm turns the chosen seed's
agent into a ``PolicyExport`` (the network class and fields, parameters, observation statistics and how
the output becomes an action), and ``io/policy.write_policy`` writes it with a manifest. ``verify``
runs an exported policy through the evaluation protocol of the run (``loop/evaluate.py``: the same
fixed episodes), so an export can be checked against the run's own final evaluation.
"""
from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jax
import jax.numpy as jnp

from jaxrl_policy._version import __version__
from jaxrl_policy.core.envs import env_spec, make_vec_env
from jaxrl_policy.core.types import Algorithm
from jaxrl_policy.io import checkpoint
from jaxrl_policy.io.metadata import config_hash
from jaxrl_policy.io.policy import Policy, load_policy, to_jsonable, write_policy
from jaxrl_policy.loop.evaluate import make_evaluation
from jaxrl_policy.running.build import restore_agent


def export_policy(run_dir: str | os.PathLike, out: str | os.PathLike, seed_index: int = 0) -> Path:
    """Write the greedy policy of seed ``seed_index`` of ``run_dir`` into ``out``; returns ``out``."""
    cfg, seeds, loop, agent = restore_agent(run_dir, seed_index)
    if loop.algorithm.export is None:
        raise ValueError(f"{run_dir}: algorithm {cfg.algo} has no export (its factory sets no Algorithm.export)")
    e = loop.algorithm.export(agent)
    obs_env = getattr(cfg, "student_obs", None) or cfg.env_id  # a distilled student sees its view of the env
    spec = env_spec(obs_env)
    kwargs = {k: to_jsonable(v) for k, v in e.kwargs.items()}
    manifest: dict[str, Any] = {
        "package_version": __version__,
        "env_id": obs_env,
        "obs_shape": list(spec.obs_shape),
        "num_actions": spec.num_actions,
        "action_shape": list(spec.action_shape),
        "action_low": None if spec.action_low is None else list(spec.action_low),
        "action_high": None if spec.action_high is None else list(spec.action_high),
        "action_squash": getattr(cfg, "action_squash", "clip"),
        "network": e.network, "kwargs": kwargs, "head": e.head,
        "recurrent": bool(kwargs.get("rnn_size")),
        "source": {"run": str(Path(run_dir).resolve()), "algo": cfg.algo, "seed": int(seeds[seed_index]),
                   "seed_index": seed_index, "checkpoint": str(checkpoint.latest(Path(run_dir)))},
        "config_hash": config_hash(cfg.to_dict()),
        # the run's evaluation protocol, so `verify` replays the same episodes
        "evaluation": {"episodes": cfg.eval_episodes, "seed": cfg.eval_seed, "max_steps": cfg.eval_max_steps},
    }
    return write_policy(out, manifest, e.params, e.obs_stats)


def policy_algorithm(policy: Policy) -> Algorithm:
    """A stand-in ``Algorithm`` whose greedy action is the loaded policy's (only ``greedy`` and ``init_carry``
    are used: it is for ``make_evaluation``)."""
    def unused(*args):
        raise NotImplementedError("an exported policy only acts greedily")

    def greedy(agent, obs, carry, hp):
        return policy(obs, carry) if policy.initial_carry is not None else (policy(obs), carry)

    return Algorithm(init=unused, actor=unused, act=unused, learn=unused, storage=None,  # type: ignore[arg-type]
                     greedy=greedy, init_carry=policy.initial_carry)


def verify(folder: str | os.PathLike, episodes: int | None = None) -> dict[str, float]:
    """The evaluation protocol of the run an export came from (its env, episodes and evaluation seed, in the
    manifest) with the exported policy: ``{eval_return, eval_length, eval_complete}`` — the same episodes
    as the run's own evaluations, so the final one is reproduced."""
    policy = load_policy(folder)
    m = policy.manifest
    ev = m["evaluation"]
    n = episodes or ev["episodes"] or 16
    protocol = SimpleNamespace(eval_episodes=n, eval_seed=ev["seed"], eval_max_steps=ev["max_steps"],
                               total_timesteps=0)
    evaluate = make_evaluation(protocol, policy_algorithm(policy), make_vec_env(m["env_id"], n))  # type: ignore[arg-type]
    assert evaluate is not None
    out = jax.jit(lambda: evaluate(None, {}))()
    return {k: float(jnp.asarray(v)) for k, v in out.items()}
