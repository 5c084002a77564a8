"""Per-task score normalisation, so that results on different envs can be aggregated.

``normalized = (score - random) / (reference - random)``: 0 is a uniform-random
policy, 1 the reference score. Aggregating raw returns across tasks lets the task
with the largest return scale dominate (Pendulum-v1 returns are ~-1000s, MinAtar
Breakout's ~10s); Agarwal et al. 2021 ("Deep RL at the Edge of the Statistical
Precipice", NeurIPS) aggregate normalised scores only, and so does
:func:`aggregate_tasks`.

Shape legend
------------
S : number of seeds / independent runs (may differ between tasks)
T : number of tasks (environments)

Sources of :data:`NORMALIZATION`
--------------------------------
random: measured here, on the env definitions the framework trains on (gymnax
  1.0.1, default params, episodes cut at ``max_steps_in_episode``):
  ``python experiments/random_scores.py --episodes 1000 --seed 0`` -- uniform
  random actions (``action_space(params).sample``), mean undiscounted return
  over 1000 episodes. Output (mean, standard error, min, max)::

    CartPole-v1             22.718    0.374     8.0    76.0
    Acrobot-v1            -498.625    0.422  -500.0  -278.0
    MountainCar-v0        -200.000    0.000  -200.0  -200.0
    Pendulum-v1          -1230.950    8.982 -1873.6  -635.1
    Breakout-MinAtar         0.413    0.020     0.0     4.0
    SpaceInvaders-MinAtar    4.091    0.097     0.0    20.0
    Freeway-MinAtar          0.392    0.019     0.0     3.0
    Asterix-MinAtar          0.479    0.025     0.0     5.0

  The one published random score we found is consistent: the MinAtar README
  (github.com/kenjyoung/MinAtar, "Quick Start") reports ``Avg Return:
  0.5+/-0.023`` for ``random_play.py -g breakout`` over 1000 episodes on the
  original MinAtar (6-action set; gymnax's port has the 3 meaningful actions,
  and we measure 0.413). We use our own numbers for all eight so that every
  entry is on the gymnax definitions.
reference: the return of the trained PPO checkpoint that gymnax itself
  publishes for each env: gymnax 1.0.1 README (the PyPI long description,
  also github.com/RobertTLange/gymnax README.md), table "Implemented
  Accelerated Environments", column "Ckpt (Return)" (checkpoints from
  github.com/RobertTLange/gymnax-blines): CartPole-v1 500 (also the maximum
  possible return, 500 steps x +1), Acrobot-v1 -80, MountainCar-v0 -118,
  Pendulum-v1 -130, Asterix-MinAtar 15, Breakout-MinAtar 28, Freeway-MinAtar
  58, SpaceInvaders-MinAtar 131. These are "a reasonably tuned PPO" levels,
  not maxima: normalised scores above 1 are possible and meaningful.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from jaxrl_policy.results import stats

__all__ = ["TaskScores", "NORMALIZATION", "normalize", "normalize_tasks", "aggregate_tasks"]


class TaskScores(NamedTuple):
    """Random and reference score of one env, with where each number comes from."""

    random: float
    reference: float
    random_source: str
    reference_source: str


_RANDOM_SRC = (
    "experiments/random_scores.py --episodes 1000 --seed 0 (uniform-random policy, gymnax 1.0.1 "
    "default params): mean return over 1000 episodes"
)
_GYMNAX_SRC = (
    "gymnax 1.0.1 README (PyPI long description; github.com/RobertTLange/gymnax README.md), table "
    "'Implemented Accelerated Environments', column 'Ckpt (Return)': gymnax-blines PPO checkpoint"
)

NORMALIZATION: dict[str, TaskScores] = {
    "CartPole-v1": TaskScores(22.718, 500.0, _RANDOM_SRC + " (s.e. 0.374)",
                              _GYMNAX_SRC + " (R: 500; also the maximum return, 500 steps x +1)"),
    "Acrobot-v1": TaskScores(-498.625, -80.0, _RANDOM_SRC + " (s.e. 0.422)", _GYMNAX_SRC + " (R: -80)"),
    "MountainCar-v0": TaskScores(-200.0, -118.0, _RANDOM_SRC + " (all 1000 episodes time out at -200)",
                                 _GYMNAX_SRC + " (R: -118)"),
    "Pendulum-v1": TaskScores(-1230.950, -130.0, _RANDOM_SRC + " (s.e. 8.98)", _GYMNAX_SRC + " (R: -130)"),
    "Breakout-MinAtar": TaskScores(0.413, 28.0, _RANDOM_SRC + " (s.e. 0.020; MinAtar README reports "
                                   "0.5 +/- 0.023 for its 6-action original)", _GYMNAX_SRC + " (R: 28)"),
    "SpaceInvaders-MinAtar": TaskScores(4.091, 131.0, _RANDOM_SRC + " (s.e. 0.097)", _GYMNAX_SRC + " (R: 131)"),
    "Freeway-MinAtar": TaskScores(0.392, 58.0, _RANDOM_SRC + " (s.e. 0.019)", _GYMNAX_SRC + " (R: 58)"),
    "Asterix-MinAtar": TaskScores(0.479, 15.0, _RANDOM_SRC + " (s.e. 0.025)", _GYMNAX_SRC + " (R: 15)"),
}


def _entry(env_id: Any) -> TaskScores:
    if not isinstance(env_id, str) or env_id not in NORMALIZATION:
        raise ValueError(
            f"env_id {env_id!r} has no normalisation scores; known: {', '.join(sorted(NORMALIZATION))} "
            "(add it to jaxrl_policy.results.scores.NORMALIZATION with cited sources)"
        )
    return NORMALIZATION[env_id]


def normalize(scores: Any, env_id: str) -> Any:
    """Normalise raw returns of one env: ``(score - random) / (reference - random)``.

    Args:
      scores: raw returns, any shape (e.g. ``[S]`` per-run scores). NaN stays NaN.
      env_id: a key of :data:`NORMALIZATION`.

    Returns:
      Same shape as ``scores`` (a float for a scalar): 0 = random policy,
      1 = reference score.

    Raises:
      ValueError: unknown ``env_id``, or non-numeric ``scores``.
    """
    e = _entry(env_id)
    try:
        a = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"scores must be numeric array-like, got {type(scores).__name__}: {err}") from None
    out = (a - e.random) / (e.reference - e.random)
    return float(out) if out.ndim == 0 else out


def normalize_tasks(score_dict_by_env: Mapping[str, Any]) -> tuple[np.ndarray, list[str]]:
    """Normalise per-run scores of several envs into one ``[S, T]`` matrix.

    Args:
      score_dict_by_env: ``{env_id: raw per-run scores [S_env]}``. Every env id
        must be in :data:`NORMALIZATION`; the number of runs may differ between
        envs (shorter columns are padded with NaN, which :func:`stats.aggregate`
        drops per task).

    Returns:
      ``(matrix [max S_env, T], env_ids)``, columns in the dict's order.

    Raises:
      ValueError: naming every env id without normalisation scores (raw returns
        of different tasks are not comparable, so they are never mixed), or a
        non-1-D / empty score array.
    """
    if not isinstance(score_dict_by_env, Mapping) or not score_dict_by_env:
        raise ValueError(
            "score_dict_by_env must be a non-empty mapping {env_id: per-run scores [S]}, "
            f"got {type(score_dict_by_env).__name__}"
        )
    unknown = [k for k in score_dict_by_env if not isinstance(k, str) or k not in NORMALIZATION]
    if unknown:
        raise ValueError(
            f"refusing to aggregate tasks without normalisation scores: {unknown!r} "
            f"(known: {', '.join(sorted(NORMALIZATION))}); raw returns of different envs are on "
            "different scales. Add random/reference scores with sources to "
            "jaxrl_policy.results.scores.NORMALIZATION, or aggregate each env separately with stats.aggregate"
        )
    cols = []
    for env_id, v in score_dict_by_env.items():
        try:
            a = np.asarray(v, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"scores for {env_id!r} must be numeric, got {type(v).__name__}: {err}") from None
        if a.ndim != 1 or a.size == 0:
            raise ValueError(f"scores for {env_id!r} must be a non-empty 1-D array [S] of per-run scores, "
                             f"got shape {a.shape}")
        cols.append(normalize(a, env_id))
    s = max(c.size for c in cols)
    mat = np.full((s, len(cols)), np.nan)
    for j, c in enumerate(cols):
        mat[: c.size, j] = c
    return mat, list(score_dict_by_env)


def aggregate_tasks(
    score_dict_by_env: Mapping[str, Any],
    reps: int = 2000,
    level: float = 0.95,
    seed: int | None = 0,
) -> dict[str, Any]:
    """Aggregate normalised per-run scores over several envs.

    :func:`normalize_tasks`, then :func:`jaxrl_policy.results.stats.aggregate` on the
    ``[S, T]`` matrix: mean / median / IQM of all normalised run scores and the
    IQM's stratified bootstrap CI (runs resampled within each env). For
    rliable's mean / median-of-task-means / optimality gap use
    ``matrices.interval_estimates({"algo": normalize_tasks(d)[0]})`` (complete
    matrices only).

    Args:
      score_dict_by_env: ``{env_id: raw per-run scores [S_env]}``.
      reps, level, seed: as in :func:`jaxrl_policy.results.stats.bootstrap_ci`.

    Returns:
      :func:`stats.aggregate`'s dict plus ``env_ids`` (the column order).

    Raises:
      ValueError: for env ids without normalisation scores (named), see
        :func:`normalize_tasks`.
    """
    mat, env_ids = normalize_tasks(score_dict_by_env)
    out = stats.aggregate(mat, reps=reps, level=level, seed=seed)
    out["env_ids"] = env_ids
    return out
