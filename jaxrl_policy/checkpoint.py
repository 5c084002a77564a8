"""Checkpoints of a chunked run: the whole ``LoopState`` (all seeds) plus the runner's host history.

Layout inside a run folder::

    checkpoints/chunk_000012/state/     orbax StandardCheckpointer: {"state": LoopState [S, ...], "hist": {...}}
    checkpoints/chunk_000012/meta.json  chunks done, run seconds, history lengths, diagnostics sums
    checkpoints/LATEST                  name of the newest complete checkpoint (written last, atomically)

A checkpoint is complete only once ``LATEST`` names it, so a crash while saving leaves the
previous one usable; older checkpoints are deleted after the new one is complete. Resuming
restores the state into the same compiled chunk program, so a resumed run is bit-identical to an
uninterrupted one (tested).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import jax
import numpy as np

DIR = "checkpoints"


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
    ckptr.wait_until_finished()
    _sync(f"jaxrl_policy checkpoint {name} written")
    if writer:
        (path / "meta.json").write_text(json.dumps({**meta, "chunks_done": chunks_done,
                                                    "hist_shapes": {k: list(v.shape) for k, v in hist.items()}}))
        tmp = root / "LATEST.tmp"
        tmp.write_text(name)
        os.replace(tmp, root / "LATEST")  # atomic: LATEST always names a complete checkpoint
        for old in root.glob("chunk_*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)
    _sync(f"jaxrl_policy checkpoint {name} done")
    return path


def latest(run_dir: Path) -> Path | None:
    marker = Path(run_dir) / DIR / "LATEST"
    if not marker.exists():
        return None
    path = marker.parent / marker.read_text().strip()
    return path if (path / "meta.json").exists() else None


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
