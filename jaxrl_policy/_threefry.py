"""Lower threefry unrolled on CPU, as jax already does on GPU and TPU.

jax lowers its threefry2x32 PRNG hash on CPU as a rolled ``fori_loop`` of 5 rounds (smaller
programs, faster compiles). Inside a training loop that draws random numbers a few times per
env step, each draw then becomes an XLA ``while`` loop, and on XLA:CPU every loop iteration
costs a few thunk launches: measured here (2-core AMD EPYC, CartPole, 1 seed) that is 7% of
DQN's and 10% of PPO's training time. The unrolled lowering is the one jax uses everywhere
else; it computes the same bits (tested: bit-identical metrics), only compiles a little longer.

Applied process-wide at ``import jaxrl_policy`` (like the XLA flag in ``_xla_flags``); set
``JAXRL_POLICY_ROLLED_THREEFRY=1`` to keep jax's CPU default. It touches a private jax module,
so it is skipped (with jax's default kept) if that module's names ever change.
"""
import os


def apply() -> bool:
    """Register the unrolled lowering for CPU; returns whether it was applied."""
    if os.environ.get("JAXRL_POLICY_ROLLED_THREEFRY") == "1":
        return False
    try:
        from jax._src.interpreters import mlir
        from jax._src.random import threefry2x32 as tf
        mlir.register_lowering(tf.threefry2x32_p, tf._threefry2x32_lowering_rule, platform="cpu")
    except (ImportError, AttributeError):  # pragma: no cover - a jax release that moved the names
        return False
    return True


APPLIED = apply()
