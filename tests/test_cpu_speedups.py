"""Process-wide CPU settings applied at ``import jaxrl_policy``: they must not change any number."""
import os
import subprocess
import sys

import jax
import numpy as np

import jaxrl_policy
from jaxrl_policy import _threefry

DRAW = ("import jaxrl_policy, jax, numpy as np; k = jax.random.PRNGKey(3); "
        "print(int(np.asarray(jax.jit(lambda k: jax.random.bits(jax.random.split(k, 5)[2], (257,)))(k)).sum()))")


def test_threefry_is_unrolled_and_bit_identical():
    assert _threefry.APPLIED
    hlo = jax.jit(lambda k: jax.random.bits(k, (8,))).lower(jax.random.PRNGKey(0)).as_text()
    assert "while" not in hlo  # jax's CPU default lowers threefry as a rolled fori_loop
    here = subprocess.run([sys.executable, "-c", DRAW], capture_output=True, text=True, check=True).stdout
    env = {**os.environ, "JAXRL_POLICY_ROLLED_THREEFRY": "1"}
    rolled = subprocess.run([sys.executable, "-c", DRAW], capture_output=True, text=True, check=True, env=env).stdout
    assert here == rolled and here.strip()


def test_scheduler_flag_is_set_unless_the_user_chose():
    assert "--xla_cpu_enable_concurrency_optimized_scheduler" in os.environ["XLA_FLAGS"]
    code = "import os, jaxrl_policy; print(os.environ['XLA_FLAGS'])"
    env = {**os.environ, "XLA_FLAGS": "--xla_cpu_enable_concurrency_optimized_scheduler=true"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.strip() == "--xla_cpu_enable_concurrency_optimized_scheduler=true"
    assert jaxrl_policy.__version__
