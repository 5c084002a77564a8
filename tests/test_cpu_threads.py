"""--cpu-threads / set_cpu_threads: XLA:CPU's thread pool (PJRT_NPROC), set before the backend starts."""
import json
import os
import subprocess
import sys

import pytest

from jaxrl_policy import set_cpu_threads
from jaxrl_policy._xla_flags import THREADS_ENV, cpu_threads
from jaxrl_policy.cli import common as cli_common
from jaxrl_policy.cli import train as cli_train
from jaxrl_policy.cli.main import main
from jaxrl_policy.io.runfolder import recorded_cpu_threads

ENV = {k: v for k, v in os.environ.items() if k != THREADS_ENV}


def _python(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env=env or ENV)


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "2"])
def test_bad_thread_counts_name_value_and_rule(bad):
    with pytest.raises(ValueError, match=r"cpu_threads = .*must be an integer >= 1"):
        set_cpu_threads(bad)


def test_setting_after_the_backend_started_is_refused():
    import jax.numpy as jnp
    jnp.zeros(1).block_until_ready()  # this test process's backend has started
    other = (cpu_threads() or 0) + 1
    with pytest.raises(RuntimeError, match="already started"):
        set_cpu_threads(other)
    assert cpu_threads() != other


def test_import_leaves_the_backend_unstarted_so_the_setting_precedes_it():
    # gymnax builds arrays at import; the package imports it lazily so that this order works.
    r = _python(
        "import os, jaxrl_policy\n"
        "from jax._src import xla_bridge as xb\n"
        "assert not xb.backends_are_initialized(), 'import started the backend'\n"
        "jaxrl_policy.set_cpu_threads(1)\n"
        "import jax, jax.numpy as jnp\n"
        "cfg = jaxrl_policy.default_config('dqn', 'CartPole-v1', total_timesteps=2000, learning_starts=500)\n"
        "s, m = jax.jit(jaxrl_policy.make_train(cfg))(jax.random.PRNGKey(0))\n"
        "print(os.environ['PJRT_NPROC'], int(m['grad_steps'][-1]))\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1", "151"]  # learning from iteration 50 of 200


def test_cli_records_the_setting_and_rejects_bad_values(tmp_path):
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "jaxrl_policy.cli", "train", "--algo", "dqn", "--cpu-threads", "1",
                        "--total-timesteps", "2000", "--learning-starts", "500", "--out", str(out), "--quiet"],
                       capture_output=True, text=True, timeout=300, env=ENV)
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "config.json").read_text())["run"]["cpu_threads"] == 1

    r = subprocess.run([sys.executable, "-m", "jaxrl_policy.cli", "train", "--cpu-threads", "0"],
                       capture_output=True, text=True, timeout=300, env=ENV)
    assert r.returncode == 2 and "--cpu-threads = 0" in r.stderr and ">= 1" in r.stderr


def test_resume_reuses_the_recorded_setting(tmp_path, monkeypatch):
    from jaxrl_policy import default_config
    cfg = default_config("ppo").to_dict()
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "seeds": [0], "run": {"cpu_threads": 1}}))
    applied, resumed = [], []
    monkeypatch.setattr(cli_common, "cpu_threads_flag", applied.append)
    monkeypatch.setattr(cli_train, "resume_run", lambda out, **kw: resumed.append(out) or {
        k: None for k in ("algo", "env", "final_return", "final_return_iqm", "final_return_ci", "env_steps_per_s",
                          "compile_s", "wall_s")})
    main(["train", "--resume", str(tmp_path), "--quiet"])
    assert applied == [1] and resumed == [str(tmp_path)]
    main(["train", "--resume", str(tmp_path), "--quiet", "--cpu-threads", "2"])  # explicit flag wins
    assert applied == [1, 2]
    assert recorded_cpu_threads(str(tmp_path / "missing")) is None


def test_bench_applies_and_records_the_setting(tmp_path):
    out = tmp_path / "b.json"
    r = subprocess.run([sys.executable, "-m", "jaxrl_policy.cli", "bench", "--quick", "--algos", "ppo",
                        "--num-envs", "4", "--total-timesteps", "2048", "--cpu-threads", "1",
                        "--out", str(out)], capture_output=True, text=True, timeout=600, env=ENV)
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text())["machine"]["cpu_threads"] == 1
    assert "XLA:CPU threads: 1" in r.stdout
