"""Process-wide XLA:CPU settings that must be made before JAX starts its backend.

1. The scheduler flag. jax 0.10.x on some x86 CPUs (seen on 2-core AMD EPYC with AVX-512)
   deadlocks inside vmapped training programs: every XLA:CPU thread parks and
   ``block_until_ready`` never returns. Turning off XLA:CPU's concurrency-optimised scheduler
   avoids it at no measurable cost (``--xla_cpu_multi_thread_eigen=false`` does not help). We
   append the flag to ``XLA_FLAGS`` unless the user already chose a value for it, at import
   (``jaxrl_policy/__init__.py`` imports this module first).

2. ``set_cpu_threads(n)``: the size of XLA:CPU's worker pool, which PjRt reads once from the
   ``PJRT_NPROC`` environment variable when the CPU backend starts (default: all cores the
   process may use). XLA:CPU hands ready operations to that pool and continues a program on
   whichever thread finished last, so a program made of many tiny operations (DQN: one env
   step and one 128-sample gradient step per iteration) moves between cores every iteration.
   One thread keeps it on one core: +10–12% for DQN on a 2-core CPU, −20% for PPO at 1024
   envs, whose large matrix products XLA splits over the cores (README, "CPU threads").
   Results are bit-identical for the same thread count, not across thread counts.
"""
from __future__ import annotations

import os

SCHEDULER_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"
THREADS_ENV = "PJRT_NPROC"


def apply() -> None:
    flags = os.environ.get("XLA_FLAGS", "")
    if SCHEDULER_FLAG not in flags:
        os.environ["XLA_FLAGS"] = (flags + f" {SCHEDULER_FLAG}=false").strip()


def _backend_started() -> bool:
    try:
        from jax._src import xla_bridge
        return bool(xla_bridge.backends_are_initialized())
    except (ImportError, AttributeError):  # private API moved: assume it may have started
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


apply()
