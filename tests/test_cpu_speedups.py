"""What the package does to the process: the deadlock guard at import, speed-ups only on request."""
import os
import subprocess
import sys

import pytest

# An unrelated jax.random program, lowered from abstract inputs (no backend needed), printed as StableHLO.
# f builds a new function each call: jax caches the lowering of a function it has seen.
LOWER = ("import jax, jax.numpy as jnp\n"
         "spec = jax.ShapeDtypeStruct((2,), jnp.uint32)\n"
         "def f():\n"
         "    draw = lambda k: jax.random.bits(jax.random.split(k, 5)[2], (257,))\n"
         "    print(jax.jit(draw).lower(spec).as_text())\n")


def run(code, **env):
    e = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=e).stdout


def test_import_leaves_other_programs_lowering_unchanged():
    before, after = run(LOWER + "f(); print('@@@'); import jaxrl_policy; f()").split("@@@")
    assert before.strip() and before.strip() == after.strip()
    # ... and the check can fail: opting in to the speed-ups changes exactly that lowering
    opted = run(LOWER + "f(); print('@@@'); import jaxrl_policy; jaxrl_policy.use_cpu_speedups(); f()").split("@@@")
    assert opted[0].strip() == before.strip() and opted[1].strip() != before.strip()
    assert "while" in before and "while" not in opted[1]  # jax's CPU default is a rolled loop; ours unrolled


DRAW = ("import jax, numpy as np, jaxrl_policy; {opt}k = jax.random.PRNGKey(3); "
        "print(int(np.asarray(jax.jit(lambda k: jax.random.bits(jax.random.split(k, 5)[2], (257,)))(k)).sum()))")


def test_speedups_give_the_same_random_bits():
    plain = run(DRAW.format(opt=""))
    fast = run(DRAW.format(opt="print(jaxrl_policy.use_cpu_speedups()); "))
    assert "'unrolled_threefry': True" in fast
    assert fast.splitlines()[-1] == plain.strip() and plain.strip()
    # the escape hatch keeps jax's lowering even when opted in
    kept = run(DRAW.format(opt="print(jaxrl_policy.use_cpu_speedups()); "), JAXRL_POLICY_ROLLED_THREEFRY="1")
    assert "'unrolled_threefry': False" in kept


def test_the_command_line_opts_in():
    code = ("import jaxrl_policy._xla_flags as x, jaxrl_policy.cli.main as c; "
            "import contextlib, io\nwith contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()): "
            "c.main(['--help'])\nprint(x._SPEEDUPS)")
    assert run(code).strip() == "{'unrolled_threefry': True}"
    assert run("import jaxrl_policy._xla_flags as x, jaxrl_policy; print(x._SPEEDUPS)").strip() == "{}"


@pytest.mark.parametrize("user_value", [None, "true", "false"])
def test_deadlock_guard_unless_the_user_chose(user_value):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    if user_value:
        env["XLA_FLAGS"] = f"--xla_cpu_enable_concurrency_optimized_scheduler={user_value}"
    out = subprocess.run([sys.executable, "-c", "import os, jaxrl_policy; print(os.environ['XLA_FLAGS'])"],
                         env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert out == f"--xla_cpu_enable_concurrency_optimized_scheduler={user_value or 'false'}"


def test_guard_warns_when_the_backend_already_started():
    code = "import jax; jax.devices(); import jaxrl_policy"
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    err = subprocess.run([sys.executable, "-W", "always", "-c", code], env=env, capture_output=True, text=True,
                         check=True).stderr
    assert "deadlock guard" in err and "not active" in err
    quiet = subprocess.run([sys.executable, "-W", "always", "-c", "import jax, jaxrl_policy; jax.devices()"],
                           env=env, capture_output=True, text=True, check=True).stderr
    assert "deadlock guard" not in quiet
