"""One loop on a device mesh: runs (seeds × sweep points) over ``batch``, the envs of a run over ``data``.

Shape legend: ``B = P·S`` runs of a program, ``E`` envs of a run, ``K`` stored unrolls, ``T`` unroll
length, ``D`` devices (``D = D_batch · D_data``).

The training program is written once, for the whole global batch, and JAX's sharding does the
rest (``jax.sharding.Mesh`` + ``NamedSharding`` on the program's inputs and outputs, the GSPMD
partitioner inside; no ``pmap``, no hand-written collectives):

- ``batch``: every leaf of the loop state has the runs as its leading axis ``[B, ...]``; sharding
  it needs no communication (seeds and points are independent), so the mesh puts devices there
  first.
- ``data``: the env axis of a run — env states ``[B, E, ...]`` and the stored unrolls
  ``[B, K, T, E, ...]`` — is split over ``data``; parameters and optimizer state stay replicated,
  and the partitioner turns every mean over the batch of a gradient step into a local mean plus
  an all-reduce, so gradients are averaged over ``data``. Random numbers are
  ``jax_threefry_partitionable`` (jax's default), so they do not depend on the sharding: a run on
  8 devices computes what it computes on 1, up to the order of floating-point sums.

Several hosts: ``initialize_distributed`` (``jax.distributed.initialize``) before anything else;
the mesh then spans every process's devices, inputs are assembled with
``jax.make_array_from_callback``, outputs come back to every process with ``process_allgather``,
and only process 0 writes files.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxrl_policy.core.envs import SUITE_PREFIXES

AXES = ("batch", "data")


class MeshError(ValueError):
    """A mesh request that cannot be met (names the flag, the value and the rule)."""


@dataclass(frozen=True)
class MeshShape:
    batch: int
    data: int

    @property
    def devices(self) -> int:
        return self.batch * self.data

    def __str__(self) -> str:
        return f"batch={self.batch},data={self.data}"


def parse_mesh(text: str) -> MeshShape:
    """``"batch=4,data=2"`` (either part may be left out: it is then 1)."""
    sizes = {"batch": 1, "data": 1}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in sizes or not value.strip().isdigit() or int(value) < 1:
            raise MeshError(f"--mesh = {text!r}: must be batch=N,data=M with positive integers")
        sizes[name] = int(value)
    return MeshShape(**sizes)


# Env ids (prefixes) whose envs are not split over ``data`` on CPU: with jax 0.10.2 a program that shards the envs
# of these suites over two or more CPU devices never returns (XLA:CPU; seen for navix, xminigrid and jumanji ids,
# with and without the adapter's lax.cond, not for gymnax ids; batch=2 runs of the same envs finish). Their runs
# still spread over ``batch``; on GPU/TPU nothing is refused.
CPU_UNSHARDED_ENV_PREFIXES = SUITE_PREFIXES


def data_axis_problem(env_id: str | None) -> str | None:
    """Why ``env_id``'s envs cannot go over the ``data`` axis here (None: they can)."""
    if env_id is not None and str(env_id).startswith(CPU_UNSHARDED_ENV_PREFIXES) and jax.default_backend() == "cpu":
        return (f"the envs of {env_id} cannot be split over data on CPU (a program sharding them over several CPU "
                "devices hangs in jax 0.10.2's XLA:CPU): use --mesh batch=N,data=1, runs over devices")
    return None


def choose_mesh(num_devices: int, num_runs: int, num_envs: int, requested: MeshShape | None = None,
                exact: bool = True, env_id: str | None = None) -> MeshShape:
    """The mesh for ``num_runs`` runs of ``num_envs`` envs each on ``num_devices`` devices.

    Runs go over ``batch`` first (no communication): the largest divisor of ``num_devices`` that
    divides ``num_runs``; the remaining factor goes over ``data`` and must divide ``num_envs``.
    ``requested`` is checked instead of chosen. With ``exact=False`` (no device count asked for), the
    largest device count up to ``num_devices`` that divides is used. ``env_id``: ``data`` stays 1 where
    ``data_axis_problem`` says the envs cannot be split.
    """
    no_data = data_axis_problem(env_id)
    if not exact and requested is None:
        for n in range(num_devices, 0, -1):
            try:
                return choose_mesh(n, num_runs, num_envs, env_id=env_id)
            except MeshError:
                continue
    if requested is not None:
        problems = []
        if requested.devices != num_devices:
            problems.append(f"--mesh {requested}: uses {requested.devices} devices, but {num_devices} are in use "
                            f"(set --devices {requested.devices})")
        if num_runs % requested.batch:
            problems.append(f"--mesh {requested}: batch = {requested.batch} must divide the runs "
                            f"(seeds × points = {num_runs})")
        if num_envs % requested.data:
            problems.append(f"--mesh {requested}: data = {requested.data} must divide num_envs = {num_envs}")
        elif requested.data > 1 and no_data:
            problems.append(f"--mesh {requested}: data = {requested.data}: {no_data}")
        if problems:
            raise MeshError("; ".join(problems))
        return requested
    for batch in sorted((d for d in range(1, num_devices + 1) if num_devices % d == 0), reverse=True):
        data = num_devices // batch
        if num_runs % batch == 0 and num_envs % data == 0 and not (data > 1 and no_data):
            return MeshShape(batch=batch, data=data)
    raise MeshError(f"--devices {num_devices}: no split of {num_devices} devices into batch × data where batch divides "
                    f"the runs (seeds × points = {num_runs}) and data divides num_envs = {num_envs}; "
                    f"use a device count that divides them, or --devices 1")


def check_devices(requested: int | None) -> int:
    """Devices to use: ``requested`` (validated) or all of them (every process's, with several hosts)."""
    available = jax.device_count()
    if requested is None:
        return available
    if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
        raise MeshError(f"--devices = {requested!r}: must be an integer >= 1")
    if requested > available:
        raise MeshError(f"--devices = {requested}: only {available} device(s) exist "
                        f"({jax.devices()[0].platform}); on CPU, XLA_FLAGS=--xla_force_host_platform_device_count=N "
                        f"before JAX starts makes N")
    if jax.process_count() > 1 and requested != available:
        raise MeshError(f"--devices = {requested}: with {jax.process_count()} processes every device is used "
                        f"({available})")
    return requested


def make_mesh(shape: MeshShape) -> Mesh:
    """A ``(batch, data)`` mesh over the first ``shape.devices`` devices, process by process."""
    devices = np.asarray(jax.devices()[:shape.devices]).reshape(shape.batch, shape.data)
    return Mesh(devices, AXES)


def loop_state_specs(state) -> Any:
    """PartitionSpecs for a batched ``LoopState`` ``[B, ...]``: runs over ``batch`` everywhere, envs over
    ``data`` in the env state and the policy's recurrent state ``[B, E, ...]`` and the stored unrolls
    ``[B, K, T, E, ...]``."""
    runs = jax.tree.map(lambda _: P("batch"), state)
    env = jax.tree.map(lambda _: P("batch", "data"), state.env)
    carry = jax.tree.map(lambda _: P("batch", "data"), state.carry)
    storage = runs.storage._replace(data=jax.tree.map(lambda _: P("batch", None, None, "data"), state.storage.data))
    return runs._replace(env=env, storage=storage, carry=carry, first=P("batch", "data"))


def shardings(mesh: Mesh, specs) -> Any:
    return jax.tree.map(lambda s: NamedSharding(mesh, s), specs, is_leaf=lambda x: isinstance(x, P))


def put(x: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A host array (the same on every process) as a global array laid out by ``sharding``."""
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])


def fetch(tree) -> Any:
    """Global arrays as numpy on this process: every process gets the whole value."""
    if jax.process_count() == 1:
        return jax.device_get(tree)
    from jax.experimental import multihost_utils
    return jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))


def is_writer() -> bool:
    """Only process 0 writes logs, summaries and checkpoints' own files."""
    return jax.process_index() == 0


def initialize_distributed(coordinator: str | None, num_processes: int | None, process_id: int | None) -> bool:
    """``jax.distributed.initialize`` from the flags, or from the usual environment (cluster
    auto-detection, ``JAX_COORDINATOR_ADDRESS`` / ``JAX_NUM_PROCESSES`` / ``JAX_PROCESS_ID``).

    Returns whether this is a multi-process run. Must run before anything starts JAX's backend.
    """
    given = [coordinator, num_processes, process_id]
    env = {k: os.environ.get(k) for k in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")}
    if all(v is None for v in given) and not env["JAX_COORDINATOR_ADDRESS"]:
        return False
    if any(v is None for v in given) and not all(v is None for v in given):
        raise MeshError("--coordinator, --num-processes and --process-id go together (or use JAX_COORDINATOR_ADDRESS, "
                        "JAX_NUM_PROCESSES, JAX_PROCESS_ID)")
    if num_processes is not None and (num_processes < 1 or process_id is None or not 0 <= process_id < num_processes):
        raise MeshError(f"--process-id = {process_id}: must be in [0, --num-processes = {num_processes})")
    # CPU devices of different processes talk over gloo (only the CPU client reads this setting)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes, process_id=process_id)
    return True


def deterministic_gpu() -> None:
    """``--deterministic``: XLA's deterministic GPU ops (scatter, reductions in a fixed order).

    Without it seeds do not fix GPU results. Must run before JAX's backend starts.
    """
    flag = "--xla_gpu_deterministic_ops=true"
    flags = os.environ.get("XLA_FLAGS", "")
    if flag not in flags:
        os.environ["XLA_FLAGS"] = (flags + " " + flag).strip()


def describe(mesh: Mesh) -> dict[str, Any]:
    return {"mesh": dict(zip(mesh.axis_names, (int(n) for n in mesh.devices.shape), strict=True)),
            "devices": int(math.prod(mesh.devices.shape)), "processes": jax.process_count()}
