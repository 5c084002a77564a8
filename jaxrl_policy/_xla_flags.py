"""Everything ``jaxrl_policy`` does to the process, in one place.

1. **The deadlock guard** (at ``import jaxrl_policy``; the only thing the import does besides
   defining names). jax 0.10.x on some x86 CPUs (seen on 2-core AMD EPYC) deadlocks inside
   vmapped training programs: every XLA:CPU thread parks and ``block_until_ready`` never
   returns. Turning off XLA:CPU's concurrency-optimised scheduler avoids it at no measurable
   cost. We append ``--xla_cpu_enable_concurrency_optimized_scheduler=false`` to ``XLA_FLAGS``
   unless the user already chose a value for that flag (so setting it to ``true`` yourself turns
   the guard off). XLA reads ``XLA_FLAGS`` once, when JAX's backend starts (the first
   computation, not ``import jax``), so the import order of jax and jaxrl_policy does not
   matter; if the backend already started before the import, we warn that the guard is inactive.

2. **CPU speed-ups that reach into jax's internals** are opt-in: ``use_cpu_speedups()`` (the
   ``jaxrl-policy`` command line and the benchmarks call it). Today that is one thing: jax lowers
   its threefry PRNG on CPU as a rolled loop and on GPU/TPU unrolled; we register the unrolled
   lowering for CPU too (same random bits, tested; ~10% faster training for small batches). It
   changes how *every* program of the process lowers ``jax.random``, which is why a library
   import must not do it.

3. ``set_cpu_threads(n)``: the size of XLA:CPU's worker pool (``PJRT_NPROC``, read once at
   backend start). XLA:CPU continues a program on whichever thread finished last, so a program
   of many tiny operations (DQN) moves between cores every iteration; one thread keeps it on one
   core. Only on request (``--cpu-threads``). Results are bit-identical for the same thread
   count, not across thread counts.

(``networks.cpu_dot_general`` is a speed-up too, but it lives inside our own network modules
and changes nothing for other programs.)
"""
from __future__ import annotations

import os
import sys
import warnings

SCHEDULER_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"
THREADS_ENV = "PJRT_NPROC"


def _backend_started() -> bool:
    try:
        from jax._src import xla_bridge
        return bool(xla_bridge.backends_are_initialized())
    except (ImportError, AttributeError):  # private API moved: assume it may have started
        return True


def apply_deadlock_guard() -> bool:
    """Append the scheduler flag to ``XLA_FLAGS`` unless the user chose a value; True if we added it."""
    flags = os.environ.get("XLA_FLAGS", "")
    if SCHEDULER_FLAG in flags:
        return False
    os.environ["XLA_FLAGS"] = (flags + f" {SCHEDULER_FLAG}=false").strip()
    if "jax" in sys.modules and _backend_started():
        warnings.warn(
            "jaxrl_policy was imported after JAX's backend started, so its XLA:CPU deadlock guard "
            f"({SCHEDULER_FLAG}=false) is not active in this process; import jaxrl_policy before the first "
            "JAX computation, or start Python with that flag in XLA_FLAGS.", RuntimeWarning, stacklevel=3)
    return True


_SPEEDUPS: dict[str, bool] = {}


def use_cpu_speedups() -> dict[str, bool]:
    """Opt in to the process-wide CPU speed-ups (see the module docstring); returns what was applied.

    Idempotent. ``JAXRL_POLICY_ROLLED_THREEFRY=1`` keeps jax's rolled threefry even here.
    """
    if "unrolled_threefry" not in _SPEEDUPS:
        _SPEEDUPS["unrolled_threefry"] = _unrolled_threefry()
    return dict(_SPEEDUPS)


def speedups() -> dict[str, bool]:
    """The speed-ups applied in this process so far (``use_cpu_speedups``)."""
    return dict(_SPEEDUPS)


def _unrolled_threefry() -> bool:
    if os.environ.get("JAXRL_POLICY_ROLLED_THREEFRY") == "1":
        return False
    try:  # a private jax module: skipped (jax's default kept) if its names ever move
        from jax._src.interpreters import mlir
        from jax._src.random import threefry2x32 as tf
        mlir.register_lowering(tf.threefry2x32_p, tf._threefry2x32_lowering_rule, platform="cpu")
    except (ImportError, AttributeError):  # pragma: no cover - a jax release that moved the names
        return False
    return True


def cpu_threads() -> int | None:
    """XLA:CPU threads set for this process (``PJRT_NPROC``), or None for XLA's default (all cores)."""
    v = os.environ.get(THREADS_ENV, "").strip()
    return int(v) if v.isdigit() else None


def set_cpu_threads(n: int) -> None:
    """Run XLA:CPU programs of this process on ``n`` threads (``PJRT_NPROC=n``).

    Must be called before JAX's first computation (``import jaxrl_policy`` does not start the
    backend; ``jax.devices()`` or any jnp operation does). Raises ``ValueError`` for a bad ``n``
    and ``RuntimeError`` if the backend already started with a different setting.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"cpu_threads = {n!r}: must be an integer >= 1 (threads for XLA:CPU)")
    if cpu_threads() == n:
        return
    if _backend_started():
        now = cpu_threads()
        raise RuntimeError(
            f"cpu_threads = {n}: JAX's CPU backend has already started with "
            f"{'PJRT_NPROC=' + str(now) if now else 'its default thread pool'}; the setting is read once. "
            f"Call set_cpu_threads before the first JAX computation, or start Python with {THREADS_ENV}={n}.")
    os.environ[THREADS_ENV] = str(n)
