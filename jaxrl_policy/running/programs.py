"""The compiled programs of a batch (``init`` and ``run_chunk``), and the caches that spare recompiling them.

Shape legend: ``B`` runs of a program (seeds × points).

Three levels, fastest first:

1. **In this process** (``_PROGRAMS``): a sweep's batches, a resume after a crash inside the same process and
   repeated ``run`` calls reuse the compiled programs (the 8 most recent).
2. **On disk, the lowered programs** (``cache_dir/programs``; when ``set_cache_dir`` gave a folder — the CLI
   does): the two programs as ``jax.export`` artefacts (StableHLO, with the loop state's tree structure),
   so a second identical command skips tracing and lowering — most of a compile that JAX's own cache
   (level 3) cannot skip — and its XLA compile is a hit in level 3. A cached run computes what an
   uncached one does: both compile the same lowered program (checked bit for bit).
   The key hashes everything that shapes the program: the resolved config, the runs and swept fields,
   the mesh and devices, jax/jaxlib and the env libraries' versions, ``XLA_FLAGS``, the CPU thread
   count, the process-wide speed-ups, and the source of this package (and of a plugin's algorithm).
   A miss, or a file that does not load, compiles afresh and rewrites it.
3. **JAX's persistent compilation cache** (``cache_dir/xla``, also switched on by ``set_cache_dir``): XLA
   executables keyed by the lowered program, for every other program a command compiles.

Runs on several devices or processes use levels 1 and 3 only. (Whole executables through
``jax.experimental.serialize_executable`` would skip XLA's compile too, but they crashed XLA:CPU on
loading in jax 0.10; exported StableHLO is the portable form.)
"""
from __future__ import annotations

import hashlib
import inspect
import json
import os
import pickle
import sys
from collections import OrderedDict
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax import export
from jax.sharding import NamedSharding, PartitionSpec

from jaxrl_policy import _xla_flags
from jaxrl_policy.core.config import BaseConfig
from jaxrl_policy.io.rundir import atomic_write_bytes
from jaxrl_policy.running.build import build_loop, registration
from jaxrl_policy.running.mesh import loop_state_specs
from jaxrl_policy.running.mesh import shardings as mesh_shardings

_PROGRAMS: OrderedDict[Any, tuple] = OrderedDict()  # (cfg, shapes, mesh) -> (loop, init, chunk): in-process cache
_CACHE: dict[str, Path | None] = {"dir": None}
VERSION = 1  # of the on-disk format

# the libraries whose code is traced into a training program (an env's step, a network, an optimizer)
TRACED_LIBRARIES = ("jax", "jaxlib", "flax", "optax", "chex", "gymnax", "numpy", "brax", "mujoco", "craftax",
                    "xminigrid", "navix", "jumanji")


def set_cache_dir(folder: str | os.PathLike | None) -> None:
    """Cache compiled programs under ``folder`` (``programs/`` and JAX's ``xla/``), or nowhere (None).

    Must run before the first compile. The CLI calls it (``JAXRL_POLICY_CACHE``, default
    ``~/.cache/jaxrl_policy``; ``off`` or ``--no-compile-cache`` disables it); library users opt in.
    """
    if folder is None:
        _CACHE["dir"] = None
        return
    path = Path(folder).expanduser()
    (path / "xla").mkdir(parents=True, exist_ok=True)
    (path / "programs").mkdir(parents=True, exist_ok=True)
    _CACHE["dir"] = path
    jax.config.update("jax_compilation_cache_dir", str(path / "xla"))
    # cache every program, also the small ones: the init program compiles in well under JAX's default 1 s
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def cache_dir() -> Path | None:
    return _CACHE["dir"]


_SOURCE: dict[str, str] = {}


def _source_digest(paths: list[Path]) -> str:
    key = "|".join(sorted(map(str, paths)))
    if key not in _SOURCE:
        h = hashlib.sha256()
        for p in sorted(paths):
            h.update(str(p).encode())
            h.update(p.read_bytes())
        _SOURCE[key] = h.hexdigest()
    return _SOURCE[key]


def _version(dist: str) -> str | None:
    try:
        return importlib_metadata.version(dist)
    except importlib_metadata.PackageNotFoundError:
        return None


def program_key(cfg: BaseConfig, mesh, keys, hp) -> str | None:
    """The on-disk key of a batch's programs, or None where they are not cached on disk (several processes,
    jax_debug_nans, an algorithm whose source cannot be found)."""
    if jax.process_count() > 1 or jax.config.jax_debug_nans:  # type: ignore[attr-defined]
        return None
    package = Path(__file__).resolve().parents[1]
    files = list(package.rglob("*.py"))
    reg = registration(cfg.algo)
    for obj in (reg.config_class, reg.factory):
        try:
            src = Path(inspect.getsourcefile(obj) or "")
        except TypeError:
            return None
        if not src.is_file():
            return None
        if package not in src.resolve().parents:
            files.append(src.resolve())
    doc = {
        "format": VERSION,
        "config": cfg.to_dict(),
        "keys": list(keys.shape), "swept": sorted(hp),
        "mesh": list(mesh.shape_tuple), "devices": [(d.platform, d.device_kind, d.id) for d in mesh.devices.flat],
        "libraries": {name: _version(name) for name in TRACED_LIBRARIES},
        "python": sys.version.split()[0],
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "cpu_threads": _xla_flags.cpu_threads(),
        "speedups": _xla_flags.speedups(),
        "x64": bool(jax.config.jax_enable_x64),  # type: ignore[attr-defined]
        "source": _source_digest(files),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _flat(fn: Callable, tree_in, out: dict) -> Callable:
    """``fn`` as a function of the leaves of its arguments, returning the leaves of its result (``jax.export``
    serialises arrays, not our NamedTuples); the result's tree structure lands in ``out["tree"]`` when traced."""
    def flat(*xs):
        leaves, out["tree"] = jax.tree.flatten(fn(*jax.tree.unflatten(tree_in, xs)))
        return leaves

    return flat


class _Exported(NamedTuple):
    init: Any  # jax.export.Exported of init's flat form
    chunk: Any  # of run_chunk's flat form
    state_tree: Any  # the loop state's PyTreeDef
    metrics_tree: Any  # run_chunk's output (state, metrics) PyTreeDef


def _export(loop, keys, hp) -> _Exported:
    """Trace and lower ``init`` and ``run_chunk`` once each, as exported flat programs."""
    init_out: dict = {}
    args, tree = jax.tree.flatten((keys, hp))
    init = export.export(jax.jit(_flat(jax.vmap(loop.init), tree, init_out)))(*args)
    shapes = jax.tree.unflatten(init_out["tree"], [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in init.out_avals])
    chunk_out: dict = {}
    cargs, ctree = jax.tree.flatten((shapes, jax.ShapeDtypeStruct((), jnp.int32)))
    chunk = export.export(jax.jit(_flat(jax.vmap(loop.run_chunk, in_axes=(0, None)), ctree, chunk_out)))(*cargs)
    return _Exported(init, chunk, init_out["tree"], chunk_out["tree"])


def _load(path: Path) -> _Exported | None:
    """The exported programs of a cache file, or None if it does not load (then it is rewritten)."""
    try:
        blob = pickle.loads(path.read_bytes())
        return _Exported(export.deserialize(blob["init"]), export.deserialize(blob["chunk"]), blob["state_tree"],
                         blob["metrics_tree"])
    except Exception:  # a truncated file, another jax: lower afresh
        return None


def _save(path: Path, e: _Exported) -> None:
    blob = {"init": e.init.serialize(), "chunk": e.chunk.serialize(), "state_tree": e.state_tree,
            "metrics_tree": e.metrics_tree}
    try:
        atomic_write_bytes(path, pickle.dumps(blob))
    except OSError:  # a full or read-only cache folder: the run goes on uncached
        pass


def _compile_exported(e: _Exported, keys, hp) -> tuple[Callable, Callable]:
    """``init(keys, hp)`` and ``chunk(state, c)`` compiled from the exported programs (one device)."""
    n_state = e.state_tree.num_leaves
    init_c = jax.jit(e.init.call).lower(*jax.tree.leaves((keys, hp))).compile()
    chunk_c = jax.jit(e.chunk.call, donate_argnums=tuple(range(n_state))).lower(*e.chunk.in_avals).compile()

    def init(keys, hp):
        return jax.tree.unflatten(e.state_tree, init_c(*jax.tree.leaves((keys, hp))))

    def chunk(state, c):
        return jax.tree.unflatten(e.metrics_tree, chunk_c(*jax.tree.leaves(state), c))

    return init, chunk


def _compile(loop, mesh, keys, hp) -> tuple[Callable, Callable]:
    """``init`` and ``chunk`` compiled directly, laid out over ``mesh``."""
    runs = NamedSharding(mesh, PartitionSpec("batch"))
    shapes = jax.eval_shape(jax.vmap(loop.init), keys, hp)
    state_sh = mesh_shardings(mesh, loop_state_specs(shapes))
    init = jax.jit(jax.vmap(loop.init), out_shardings=state_sh).lower(keys, hp).compile()
    chunk = jax.jit(jax.vmap(loop.run_chunk, in_axes=(0, None)), donate_argnums=0,
                    in_shardings=(state_sh, NamedSharding(mesh, PartitionSpec())), out_shardings=(state_sh, runs))
    abstract = jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh), shapes, state_sh)
    return init, chunk.lower(abstract, jnp.int32(0)).compile()


def programs(cfg: BaseConfig, mesh, keys, hp) -> tuple:
    """The loop and its compiled ``init`` / ``run_chunk`` programs for these inputs on this mesh.

    Compiled once per process for a (config, runs, swept fields, mesh): the batches of a sweep group,
    a crashed run's resume and repeated calls reuse them (most recent 8 kept). With a cache folder and one
    device, the programs go through ``jax.export`` and are kept on disk, so an identical command later
    loads them instead of tracing them.
    """
    key = (cfg, keys.shape, tuple(sorted(hp)), mesh.shape_tuple, tuple(d.id for d in mesh.devices.flat))
    if key in _PROGRAMS:
        _PROGRAMS.move_to_end(key)
        return _PROGRAMS[key]
    loop = build_loop(cfg)
    folder = cache_dir()
    disk = program_key(cfg, mesh, keys, hp) if folder is not None and mesh.devices.size == 1 else None
    if disk is None:
        init, chunk = _compile(loop, mesh, keys, hp)
    else:
        assert folder is not None
        path = folder / "programs" / f"{disk}.pkl"
        exported = _load(path) if path.exists() else None
        if exported is None:
            exported = _export(loop, keys, hp)
            _save(path, exported)
        init, chunk = _compile_exported(exported, keys, hp)
    _PROGRAMS[key] = (loop, init, chunk)
    while len(_PROGRAMS) > 8:
        _PROGRAMS.popitem(last=False)
    return _PROGRAMS[key]
