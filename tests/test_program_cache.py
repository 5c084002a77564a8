"""The CLI's cache of compiled programs (run/programs.py): a second identical command loads instead of
compiling, computes the same bits, and a broken cache file or --no-compile-cache compiles afresh."""
import json
import os
import subprocess
import sys

ARGS = ["train", "--algo", "ppo", "--seeds", "2", "--total-timesteps", "4096", "--num-chunks", "2",
        "--hidden-sizes", "16", "16", "--eval-episodes", "2", "--quiet", "--checkpoint-every", "0"]


def train(tmp_path, name, cache, *extra):
    env = {**os.environ, "JAXRL_POLICY_CACHE": str(cache)}
    out = tmp_path / name
    r = subprocess.run([sys.executable, "-m", "jaxrl_policy.cli", *ARGS, *extra, "--out", str(out)], env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads((out / "summary.json").read_text())


def test_second_identical_command_loads_the_programs_and_computes_the_same_bits(tmp_path):
    cache = tmp_path / "cache"
    first = train(tmp_path, "a", cache)
    files = list((cache / "programs").glob("*.pkl"))
    assert len(files) == 1 and list((cache / "xla").iterdir())
    second = train(tmp_path, "b", cache)
    assert second["agent_sha256"] == first["agent_sha256"] and second["final_eval_return"] == first["final_eval_return"]
    # loading skips tracing, lowering and compiling: well under a fifth of the first compile (~0.1 s vs seconds)
    assert second["compile_s"] < first["compile_s"] / 5, (first["compile_s"], second["compile_s"])
    files[0].write_bytes(files[0].read_bytes()[:1000])  # a torn cache file: compiled afresh, same bits
    third = train(tmp_path, "c", cache)
    assert third["agent_sha256"] == first["agent_sha256"] and files[0].stat().st_size > 1000
    other = train(tmp_path, "d", cache, "--learning-rate", "1e-3")  # another config: another program
    assert len(list((cache / "programs").glob("*.pkl"))) == 2 and other["agent_sha256"] != first["agent_sha256"]


def test_no_compile_cache_writes_nothing(tmp_path):
    cache = tmp_path / "cache"
    train(tmp_path, "a", cache, "--no-compile-cache")
    assert not cache.exists()
    train(tmp_path, "b", "off")
    assert not (tmp_path / "off").exists()
