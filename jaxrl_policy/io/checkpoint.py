"""Checkpoints of a chunked run: the whole ``LoopState`` (all seeds) plus the runner's host history.

Layout inside a run folder::

    checkpoints/chunk_000012/state/     orbax StandardCheckpointer: {"state": LoopState [S, ...], "hist": {...}}
    checkpoints/chunk_000012/meta.json  chunks done, run seconds, history lengths, diagnostics sums
    checkpoints/LATEST                  name of the newest complete checkpoint (written last, atomically)

A checkpoint is complete once its ``meta.json`` exists (written after every shard) and ``LATEST``
names it, so a crash while saving leaves the previous ones usable. The two newest complete
checkpoints are kept: ``restore_latest`` verifies a checkpoint by restoring it (and, on one
process, by the sha256 of the restored state recorded in ``meta.json``) and falls back to the
previous one, with a message, when the latest is corrupt or half-written. Resuming restores the
state into the same compiled chunk program, so a resumed run is bit-identical to an
uninterrupted one (tested).
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any, Callable

import jax
import numpy as np

from jaxrl_policy.io.rundir import atomic_write_text, fault_pause

DIR = "checkpoints"
KEEP = 2  # complete checkpoints kept: the latest and the one to fall back to


class CheckpointError(ValueError):
    """No checkpoint of a run folder could be restored."""


def _ocp():
    import orbax.checkpoint as ocp  # imported lazily: only runs that checkpoint pay for it
    return ocp


def _sync(tag: str) -> None:
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices(tag)


def save(run_dir: Path, chunks_done: int, state, hist: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    """Write checkpoint ``chunk_{chunks_done}`` and make it the latest; returns its folder.

    ``state`` may be sharded over a mesh (and over processes): orbax writes every shard where it
    lives, and every process must call this. Process 0 alone writes ``meta.json`` and ``LATEST``, after
    all shards are written.
    """
    root = Path(run_dir) / DIR
    name = f"chunk_{chunks_done:06d}"
    path = root / name
    writer = jax.process_index() == 0
    if writer:
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
    _sync(f"jaxrl_policy checkpoint {name} dir")
    ckptr = _ocp().StandardCheckpointer()
    ckptr.save((path / "state").absolute(), {"state": state, "hist": hist})
    fault_pause("checkpoint", chunks_done)  # crash tests: a kill lands while orbax writes
    ckptr.wait_until_finished()
    _sync(f"jaxrl_policy checkpoint {name} written")
    if writer:
        atomic_write_text(path / "meta.json", json.dumps({
            **meta, "chunks_done": chunks_done, "hist_shapes": {k: list(v.shape) for k, v in hist.items()},
            "state_sha256": state_digest(state)}))
        atomic_write_text(root / "LATEST", name)  # LATEST always names a complete checkpoint
        for old in complete(run_dir)[KEEP:]:
            shutil.rmtree(old, ignore_errors=True)
        for part in root.glob("chunk_*"):  # half-written ones older than the newest complete one
            if not (part / "meta.json").exists() and part.name < name:
                shutil.rmtree(part, ignore_errors=True)
    _sync(f"jaxrl_policy checkpoint {name} done")
    return path


def state_digest(state) -> str | None:
    """sha256 of every leaf's bytes (one process only: elsewhere the shards are not all here)."""
    if jax.process_count() > 1:
        return None
    h = hashlib.sha256()
    for x in jax.tree.leaves(state):
        h.update(np.ascontiguousarray(np.asarray(x)).tobytes())
    return h.hexdigest()


def complete(run_dir: Path) -> list[Path]:
    """Complete checkpoints (``meta.json`` written), newest first; the one ``LATEST`` names leads."""
    root = Path(run_dir) / DIR
    found = sorted((p for p in root.glob("chunk_*") if (p / "meta.json").exists()), key=lambda p: p.name,
                   reverse=True)
    head = latest(run_dir)
    return [head, *[p for p in found if p != head]] if head is not None else found


def latest(run_dir: Path) -> Path | None:
    """The checkpoint ``LATEST`` names, or the newest complete one where ``LATEST`` is missing or stale."""
    marker = Path(run_dir) / DIR / "LATEST"
    try:
        path = marker.parent / marker.read_text().strip()
        if marker.read_text().strip() and (path / "meta.json").exists():
            return path
    except OSError:
        pass
    found = sorted((p for p in marker.parent.glob("chunk_*") if (p / "meta.json").exists()), key=lambda p: p.name)
    return found[-1] if found else None


def restore(path: Path, state_like, hist_dtypes: dict[str, Any]) -> tuple[Any, dict[str, np.ndarray], dict]:
    """Restore ``(state, hist, meta)``; ``state_like`` gives the pytree structure, shapes, dtypes and the
    shardings to restore onto (any mesh: a checkpoint from 8 devices restores onto 1, and back)."""
    meta = json.loads((path / "meta.json").read_text())
    target = {
        "state": jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None)),
                              state_like),
        "hist": {k: jax.ShapeDtypeStruct(tuple(s), hist_dtypes[k]) for k, s in meta["hist_shapes"].items()},
    }
    out = _ocp().StandardCheckpointer().restore((path / "state").absolute(), target)
    return out["state"], {k: np.asarray(v) for k, v in out["hist"].items()}, meta


def restore_latest(run_dir: Path, state_like, hist_dtypes: dict[str, Any],
                   note: Callable[[str], None] | None = print) -> tuple[Any, dict[str, np.ndarray], dict, Path]:
    """``restore`` the newest checkpoint that restores and verifies; ``(state, hist, meta, path)``.

    A checkpoint that fails (a truncated or missing file, unreadable ``meta.json``, a state whose
    sha256 differs from the recorded one) is skipped with a message through ``note``.
    """
    tried = []
    for path in complete(run_dir):
        try:
            state, hist, meta = restore(path, state_like, hist_dtypes)
            want = meta.get("state_sha256")
            if want is not None and jax.process_count() == 1 and state_digest(state) != want:
                raise CheckpointError("the restored state's sha256 differs from the one recorded when it was saved")
        except Exception as e:  # orbax and tensorstore raise many kinds: any of them means unusable
            msg = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
            tried.append(f"{path.name} ({type(e).__name__}: {msg})")
            if note is not None:
                note(f"checkpoint {path} is unusable ({type(e).__name__}: {msg}); trying the previous one")
            continue
        if tried and note is not None:
            note(f"resuming from the older checkpoint {path.name} instead of {tried[0].split(' ')[0]}")
        return state, hist, meta, path
    raise CheckpointError(f"{run_dir}: no usable checkpoint" + (f" (tried {'; '.join(tried)})" if tried else ""))
