"""``jaxrl-policy export``: a run's greedy policy as a folder that ``jaxrl_policy.load_policy`` loads without the
training code; ``--verify DIR`` replays the run's evaluation episodes with an exported policy."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from jaxrl_policy.cli.common import fail
from jaxrl_policy.io.policy import PolicyFormatError
from jaxrl_policy.io.runfolder import read_config_json
from jaxrl_policy.running.export import export_policy, verify

EXPORT_HELP = """jaxrl-policy export RUN_DIR --out DIR [--seed-index I]
  writes the greedy policy of the run's seed I (default 0, from its latest checkpoint) into DIR:
  manifest.json (env id, spaces, network, package version, config hash, the run's evaluation protocol)
  and params.msgpack. In Python: policy = jaxrl_policy.load_policy(DIR); action = policy(obs) (recurrent:
  action, carry = policy(obs, carry), carry = policy.initial_carry(B)) — a pure, jittable function that
  imports no training module.
jaxrl-policy export --verify DIR [--episodes N]
  the exported policy on the run's own evaluation episodes: prints eval_return (equal to the run's final
  evaluation of that seed)."""


def cmd_export(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="jaxrl-policy export", description=EXPORT_HELP, allow_abbrev=False,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", nargs="?", default=None)
    p.add_argument("--out", default=None)
    p.add_argument("--seed-index", type=int, default=0)
    p.add_argument("--verify", default=None, metavar="DIR")
    p.add_argument("--episodes", type=int, default=None)
    a = p.parse_args(argv)
    if a.verify is not None:
        if a.run is not None or a.out is not None:
            fail("export --verify DIR checks an exported folder; give it alone")
        if a.episodes is not None and a.episodes < 1:
            fail(f"--episodes = {a.episodes}: must be an integer >= 1")
        try:
            print(json.dumps(verify(a.verify, a.episodes)))
        except PolicyFormatError as e:
            fail(str(e))
        return
    if a.run is None or a.out is None or not a.out.strip():
        fail("export needs a run folder and --out DIR (a non-empty path)")
    try:
        read_config_json(a.run)
    except ValueError as e:
        fail(f"{a.run}: {e}")
    if a.seed_index < 0:
        fail(f"--seed-index = {a.seed_index}: must be an integer >= 0")
    out = Path(a.out)
    if (out / "manifest.json").exists() or (out.exists() and not out.is_dir()):
        fail(f"--out {out}: already holds an export (or is a file); choose another folder")
    try:
        export_policy(a.run, out, a.seed_index)
    except ValueError as e:
        fail(str(e))
    print(f"wrote {out}/manifest.json, params.msgpack")
