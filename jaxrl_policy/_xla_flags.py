"""Set XLA flags before the jax backend starts.

jax 0.10.x on some x86 CPUs (seen on 2-core AMD EPYC with AVX-512) deadlocks inside vmapped
training programs: every XLA:CPU thread parks and ``block_until_ready`` never returns. Turning
off XLA:CPU's concurrency-optimised scheduler avoids it at no measurable cost
(``--xla_cpu_multi_thread_eigen=false`` does not help). We append the flag to ``XLA_FLAGS``
unless the user already chose a value for it. This must run before jax creates its backend,
which is why ``jaxrl_policy/__init__.py`` imports this module first.
"""
import os

SCHEDULER_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"


def apply() -> None:
    flags = os.environ.get("XLA_FLAGS", "")
    if SCHEDULER_FLAG not in flags:
        os.environ["XLA_FLAGS"] = (flags + f" {SCHEDULER_FLAG}=false").strip()


apply()
