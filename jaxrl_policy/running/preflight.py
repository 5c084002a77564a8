"""The files a config names, checked before anything compiles: teacher run folders and datasets.

Config validation (``core/config.py`` and each algorithm's ``_problems``) checks fields and env facts
only; this module reads what the fields point at — a teacher's ``config.json`` and checkpoint marker, a
dataset's header — without restoring or loading anything, and raises the same ``ConfigError`` (field,
value, rule), so the CLI exits 2 with one message before compiling.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from jaxrl_policy.core.config import BaseConfig, ConfigError, is_int
from jaxrl_policy.core.envs import env_spec, unknown_env_message
from jaxrl_policy.io import checkpoint
from jaxrl_policy.io.dataset import dataset_problems
from jaxrl_policy.io.runfolder import read_config_json


def teacher_problems(run_dir: str, seed_index: int, env_id: str) -> list[str]:
    """Why ``run_dir`` cannot teach on ``env_id`` (empty if it can): one sentence per problem."""
    try:
        d = read_config_json(run_dir)
    except ValueError as err:
        return [str(err)]
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


def file_problems(cfg: BaseConfig) -> list[tuple[str, Any, str]]:
    """``(field, value, rule)`` for every problem of the files ``cfg`` names (empty if none)."""
    out: list[tuple[str, Any, str]] = []
    if cfg.dataset is not None and type(cfg).OFFLINE:
        out += [("dataset", cfg.dataset, p)
                for p in dataset_problems(str(cfg.dataset), cfg.env_id, cfg.steps_per_iteration)]
    if type(cfg).TEACHERS and is_int(getattr(cfg, "teacher_seed", None)):
        for t in getattr(cfg, "teachers", ()):
            out += [("teachers", t, p) for p in teacher_problems(t, cfg.teacher_seed, cfg.env_id)]  # type: ignore
    return out


def preflight(cfg: BaseConfig) -> None:
    """Raise one ``ConfigError`` naming every problem of the files ``cfg`` (a validated config) names."""
    problems = file_problems(cfg)
    if problems:
        raise ConfigError(problems, cfg.algo)


def validate_all(cfg: BaseConfig) -> None:
    """Fields and files at once (a config built with ``deferred_validation``, as the CLI does): one
    ``ConfigError`` naming every bad field and every bad file, field problems first."""
    try:
        cfg.validate()
        problems = []
    except ConfigError as e:
        problems = list(e.problems)
    try:
        problems += file_problems(cfg)
    except (TypeError, ValueError):  # fields too malformed to find the files: their problems say why
        pass
    if problems:
        raise ConfigError(problems, cfg.algo)
