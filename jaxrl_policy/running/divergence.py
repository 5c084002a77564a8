"""When a run counts as diverged: checked on the host after every chunk, from the chunk's metrics.

Shape legend: ``R`` runs of a batch (seeds × points), ``I`` iterations of a chunk.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np


class DivergenceGuard(NamedTuple):
    """When a run counts as diverged (checked on the host after every chunk, on iterations that learned).

    Always: a non-finite loss or gradient norm, or a non-finite agent-state leaf at a chunk's end
    (the loop's ``nonfinite_params``).
    ``loss`` / ``grad_norm``: bounds on the iteration's |loss| and pre-clipping gradient norm (means
    over its gradient steps); None or 0 disables one.
    """

    loss: float | None = 1e10
    grad_norm: float | None = 1e10


DEFAULT_GUARD = DivergenceGuard()


def find_divergence(m: dict[str, np.ndarray], first_iteration: int, guard: DivergenceGuard,
                    prev_grad_steps: np.ndarray | None = None) -> list[dict | None]:
    """Per run (``m``'s leading axis): None, or the first diverged iteration of this chunk (1-based, as
    ``metrics.jsonl``'s ``iteration``), its env steps, the quantity and its value.

    The loss and gradient-norm checks count only iterations that took a gradient step: ``learn``
    ran (the loop's ``learned`` is 1) and, where the algorithm logs ``grad_steps``, the count grew
    from the iteration before (``prev_grad_steps`` [runs]: the count before this chunk, NaN if
    unknown). DQN's ``learn`` runs before ``learning_starts`` too, but takes no step and logs NaN
    losses then. ``nonfinite_params`` (checked at the chunk's end, NaN elsewhere) counts wherever
    it was checked: a non-finite agent state is divergence whether or not that iteration learned.
    """
    runs, n = m["env_steps"].shape
    learned = np.asarray(m["learned"]) > 0 if "learned" in m else \
        ~np.isnan(m.get("loss", np.full((runs, n), np.nan)))
    if "grad_steps" in m:
        gs = np.asarray(m["grad_steps"], np.float64)
        prev = np.full((runs, 1), np.nan) if prev_grad_steps is None else np.asarray(prev_grad_steps,
                                                                                    np.float64).reshape(runs, 1)
        with np.errstate(invalid="ignore"):
            learned &= gs > np.concatenate([prev, gs[:, :-1]], 1)
    checks: list[tuple[str, np.ndarray, np.ndarray]] = []
    if "nonfinite_params" in m:
        checks.append(("parameters", m["nonfinite_params"], np.nan_to_num(m["nonfinite_params"]) > 0))
    for name, bound in (("loss", guard.loss), ("grad_norm", guard.grad_norm)):
        if name in m:
            x = np.asarray(m[name], np.float64)
            bad = ~np.isfinite(x)
            if bound:
                bad |= np.abs(np.nan_to_num(x, nan=0.0, posinf=np.inf, neginf=-np.inf)) > bound
            checks.append((name, x, bad & learned))  # loss and gradient norm: where a step was taken
    out: list[dict | None] = []
    for b in range(runs):
        first = None
        for name, x, bad in checks:
            hits = np.flatnonzero(bad[b])
            if hits.size and (first is None or hits[0] < first[0]):
                first = (int(hits[0]), name, x[b, hits[0]])
        if first is None:
            out.append(None)
            continue
        j, name, v = first
        value = "non-finite" if name == "parameters" else (float(v) if math.isfinite(v) else str(float(v)))
        out.append({"iteration": first_iteration + j + 1, "env_steps": int(m["env_steps"][b, j]),
                    "quantity": name, "value": value})
    return out
