"""Fixed datasets of transitions: ``collect`` them from any run folder's policy, save and load them.

Shape legend: ``M`` transitions, ``N`` episodes, ``O...`` observation shape.

A dataset is one ``.npz`` file: the arrays of ``FIELDS`` (each ``[M, ...]``, episode after episode)
and ``header``, a JSON string with ``format`` = ``"jaxrl_policy.dataset"``, ``version`` (``VERSION``),
the env id, the source run and policy, the episodes' returns and every field's shape and dtype.
``load`` checks all of it and raises ``DatasetError`` naming the file and the problem (missing,
truncated, not a dataset, another version, a field missing or of the wrong shape or dtype), so a bad
file fails before anything compiles.

``log_prob`` is the behaviour policy's log-probability of the recorded action (its softmax at the
collection temperature), so off-policy learners can weigh or diagnose the data.
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from jaxrl_policy.core.envs import env_spec, unknown_env_message

FORMAT = "jaxrl_policy.dataset"
VERSION = 1
FIELDS = {  # name -> (dtype, trailing shape: "obs" = the observation shape)
    "obs": ("float32", "obs"),
    "action": ("int32", ()),
    "reward": ("float32", ()),
    "terminated": ("bool", ()),
    "truncated": ("bool", ()),
    "next_obs": ("float32", "obs"),
    "log_prob": ("float32", ()),
}


class DatasetError(ValueError):
    """A dataset file is missing, unreadable or does not match the schema."""


def save(path: str | os.PathLike, arrays: dict[str, np.ndarray], header: dict[str, Any]) -> Path:
    """Write ``arrays`` and ``header`` (with every field's shape and dtype added) to ``path`` atomically."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_suffix(path.suffix + ".npz") if path.suffix else path.with_suffix(".npz")
    header = {**header, "fields": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, header=np.array(json.dumps(header)), **arrays)  # type: ignore[arg-type]  # (numpy's stub)
    os.replace(tmp, path)
    return path


def read_header(path: str | os.PathLike) -> dict[str, Any]:
    """The header of a dataset file, checked against the format (arrays not read)."""
    return _open(path)[1]


def _open(path):
    p = Path(path)
    where = f"dataset {p}"
    if not p.exists():
        raise DatasetError(f"{where}: no such file")
    try:
        npz = np.load(p, allow_pickle=False)
        names = set(npz.files)
        raw = npz["header"] if "header" in names else None
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise DatasetError(f"{where}: not a readable .npz dataset (truncated or another format: {e})") from None
    if raw is None:
        raise DatasetError(f"{where}: no header (not a jaxrl_policy dataset)")
    try:
        header = json.loads(str(raw))
    except ValueError:
        raise DatasetError(f"{where}: header is not JSON") from None
    if header.get("format") != FORMAT:
        raise DatasetError(f"{where}: format = {header.get('format')!r}, expected {FORMAT!r}")
    if header.get("version") != VERSION:
        raise DatasetError(f"{where}: version = {header.get('version')!r}, this jaxrl_policy reads version {VERSION}")
    return npz, header


def load(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``(arrays, header)`` of a dataset file; raises ``DatasetError`` naming the file and the problem."""
    npz, header = _open(path)
    where = f"dataset {path}"
    m = header.get("num_transitions")
    arrays: dict[str, np.ndarray] = {}
    obs_shape = None
    for name, (dtype, tail) in FIELDS.items():
        if name not in npz.files:
            raise DatasetError(f"{where}: field {name!r} is missing")
        try:
            x = npz[name]
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
            raise DatasetError(f"{where}: field {name!r} is unreadable (truncated file? {e})") from None
        if str(x.dtype) != dtype:
            raise DatasetError(f"{where}: field {name!r} has dtype {x.dtype}, expected {dtype}")
        if x.ndim < 1 or x.shape[0] != m:
            raise DatasetError(f"{where}: field {name!r} has {x.shape[0] if x.ndim else 0} rows, header says "
                               f"num_transitions = {m}")
        if tail == "obs":
            obs_shape = x.shape[1:] if obs_shape is None else obs_shape
            if x.shape[1:] != obs_shape:
                raise DatasetError(f"{where}: field {name!r} has shape {x.shape}, expected [M, {obs_shape}]")
        elif x.shape[1:] != tail:
            raise DatasetError(f"{where}: field {name!r} has shape {x.shape}, expected [{m}]")
        arrays[name] = x
    return arrays, header


def dataset_problems(path: str, env_id: str, min_transitions: int) -> list[str]:
    """Why ``path`` cannot feed a run on ``env_id`` that samples unrolls of ``min_transitions`` (empty if it can)."""
    try:
        header = read_header(path)
    except DatasetError as e:
        return [str(e).split(": ", 1)[1]]
    out = []
    fields = header.get("fields", {})
    if unknown_env_message(env_id) is None and "obs" in fields:
        spec = env_spec(env_id)
        if tuple(fields["obs"]["shape"][1:]) != spec.obs_shape:
            out.append(f"observations {tuple(fields['obs']['shape'][1:])} (env {header.get('env_id')}) do not match "
                       f"{env_id}'s {spec.obs_shape}")
    if header.get("num_transitions", 0) < min_transitions:
        out.append(f"holds {header.get('num_transitions')} transitions, fewer than one iteration's "
                   f"num_envs × num_steps = {min_transitions}")
    return out


def to_storage(arrays: dict[str, np.ndarray], num_steps: int, num_envs: int) -> tuple[dict[str, np.ndarray], int]:
    """The dataset as ``K`` whole unrolls ``[K, T, E, ...]`` (the remainder of M / (T·E) is dropped)."""
    m = arrays["obs"].shape[0]
    k = m // (num_steps * num_envs)
    n = k * num_steps * num_envs
    return {name: x[:n].reshape(k, num_steps, num_envs, *x.shape[1:]) for name, x in arrays.items()}, k
