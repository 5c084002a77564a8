"""Try bad inputs on every surface and write docs/bad-inputs.md: the input, the exit code (or the
exception) and the message each gets.

    PYTHONPATH=. python experiments/bad_inputs.py            # rewrite docs/bad-inputs.md
    PYTHONPATH=. python experiments/bad_inputs.py --check    # exit 1 if the doc is out of date

Every case runs for real, in this process (the CLI's ``main``), except the live lock, held by a
child process. ``tests/test_reliability.py`` re-runs the cases that need no compile and checks
them against the table, so it stays true.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "bad-inputs.md"
TINY = ["--total-timesteps", "512", "--num-envs", "4", "--num-steps", "32", "--num-chunks", "2",
        "--eval-episodes", "0", "--hidden-sizes", "16", "--num-epochs", "1", "--num-minibatches", "2", "--quiet"]


class Case(NamedTuple):
    surface: str
    shown: str  # the input as the table shows it (DIR = a scratch folder)
    run: Callable[[Path], Any]  # raises SystemExit (CLI) or an exception (API)
    compiles: bool = False
    needs: str | None = None  # an optional package (an env suite's extra) the case's message depends on


def cli(*argv: str) -> Callable[[Path], Any]:
    def go(tmp: Path):
        from jaxrl_policy.cli.main import main
        return main([a.replace("DIR", str(tmp)) for a in argv])
    return go


def _finished_run(d: Path) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text('{"algo": "ppo"}')
    (d / "summary.json").write_text('{"algo": "ppo"}')


def _with(setup: Callable[[Path], Any], then: Callable[[Path], Any]) -> Callable[[Path], Any]:
    def go(tmp: Path):
        setup(tmp)
        return then(tmp)
    return go


def _resumable(tmp: Path) -> None:
    from jaxrl_policy import default_config
    from jaxrl_policy.running.runner import run_metadata_for
    (tmp / "run").mkdir()
    (tmp / "run" / "config.json").write_text(json.dumps(run_metadata_for(default_config("ppo"), 1)))


HOLDER = """
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("rundir", sys.argv[1])
m = sys.modules["rundir"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(m)
m.acquire_lock(sys.argv[2])
print("locked", flush=True)
time.sleep(60)
"""


def _locked(tmp: Path):
    from jaxrl_policy.cli.main import main
    from jaxrl_policy.io import rundir
    (tmp / "run").mkdir()
    p = subprocess.Popen([sys.executable, "-c", HOLDER, rundir.__file__, str(tmp / "run")], stdout=subprocess.PIPE,
                         text=True)
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "locked"
        return main(["train", "--out", str(tmp / "run"), *TINY])
    finally:
        p.kill()
        p.wait()


def api(code: str) -> Callable[[Path], Any]:
    def go(tmp: Path):
        import jax

        import jaxrl_policy as jp
        from jaxrl_policy.running.runner import resume_run, run
        ns = {"jp": jp, "jax": jax, "run": run, "resume_run": resume_run, "DIR": tmp}
        if "existing" in code:
            _finished_run(tmp / "existing")
        exec(code, ns)
    return go


CASES = [
    Case("train", "train --algo ppq", cli("train", "--algo", "ppq")),
    Case("train", "train --env CartPole-v9", cli("train", "--env", "CartPole-v9")),
    Case("train", "train --algo dqn --env Pendulum-v1", cli("train", "--algo", "dqn", "--env", "Pendulum-v1")),
    Case("train", "train --algo dqn --torso gru", cli("train", "--algo", "dqn", "--torso", "gru")),
    Case("train", "train --torso gru --num-envs 4 --num-minibatches 8",
         cli("train", "--torso", "gru", "--num-envs", "4", "--num-minibatches", "8")),
    Case("train", "train --env Pendulum-v1 --action-squash sigmoid",
         cli("train", "--env", "Pendulum-v1", "--action-squash", "sigmoid")),
    Case("train", "train --plugin no/such/file.py", cli("train", "--plugin", "no/such/file.py")),
    Case("train", "train --seeds 0", cli("train", "--seeds", "0")),
    Case("train", "train --gamma 1.5 --learning-rate -1", cli("train", "--gamma", "1.5", "--learning-rate", "-1")),
    Case("train", "train --num-minibatches 3", cli("train", "--num-minibatches", "3")),
    Case("train", "train --total-timesteps 10", cli("train", "--total-timesteps", "10")),
    Case("train", "train --algo dqn --learning-starts 600000", cli("train", "--algo", "dqn", "--learning-starts",
                                                                   "600000")),
    Case("train", "train --checkpoint-every -1", cli("train", "--checkpoint-every", "-1")),
    Case("train", "train --divergence-loss -1", cli("train", "--divergence-loss", "-1")),
    Case("train", "train --cpu-threads 0", cli("train", "--cpu-threads", "0")),
    Case("train", "train --out DIR/done (a finished run)",
         _with(lambda t: _finished_run(t / "done"), cli("train", "--out", "DIR/done", *TINY))),
    Case("train", "train --out DIR/file/run (a file where a folder should be)",
         _with(lambda t: (t / "file").write_text("x"), cli("train", "--out", "DIR/file/run", *TINY))),
    Case("train", "train --out /proc/run (unwritable)", cli("train", "--out", "/proc/run", *TINY)),
    Case("train", "train --out DIR/run (locked by a live process)", _locked),
    Case("train", "train --resume DIR/nothing", cli("train", "--resume", "DIR/nothing")),
    Case("train", "train --resume DIR/run --learning-rate 1e-3 --seeds 2",
         _with(_resumable, cli("train", "--resume", "DIR/run", "--learning-rate", "1e-3", "--seeds", "2"))),
    Case("train", "train --resume DIR/run (no checkpoint yet)", _with(_resumable, cli("train", "--resume", "DIR/run"))),
    Case("train", "train --resume DIR/run --overwrite", cli("train", "--resume", "DIR/run", "--overwrite")),
    Case("train", "train --learning-rate 1e9 (tiny PPO)",
         cli("train", "--learning-rate", "1e9", "--out", "DIR/lr", *TINY), compiles=True),
    Case("compare", "compare --algos ppo ppo", cli("compare", "--algos", "ppo", "ppo")),
    Case("compare", "compare --algos ppo dqn --clip-eps 0.1",
         cli("compare", "--algos", "ppo", "dqn", "--clip-eps", "0.1")),
    Case("compare", "compare --total-timesteps 100", cli("compare", "--total-timesteps", "100")),
    Case("compare", "compare --tuned DIR/nothing", cli("compare", "--tuned", "DIR/nothing")),
    Case("compare", "compare --out DIR/cmp (its ppo run finished)",
         _with(lambda t: _finished_run(t / "cmp" / "ppo"), cli("compare", "--out", "DIR/cmp", "--total-timesteps",
                                                                "20000", "--quiet"))),
    Case("sweep", "sweep (no points)", cli("sweep")),
    Case("sweep", "sweep --grid learning_rate=abc", cli("sweep", "--grid", "learning_rate=abc")),
    Case("sweep", "sweep --grid lerning_rate=1e-3", cli("sweep", "--grid", "lerning_rate=1e-3")),
    Case("sweep", "sweep --grid learning_rate=-1,1e-3", cli("sweep", "--grid", "learning_rate=-1,1e-3")),
    Case("sweep", "sweep --random 0 --range learning_rate=log:1e-5:1e-2",
         cli("sweep", "--random", "0", "--range", "learning_rate=log:1e-5:1e-2")),
    Case("sweep", "sweep --random 4 --range learning_rate=log:0:1",
         cli("sweep", "--random", "4", "--range", "learning_rate=log:0:1")),
    Case("sweep", "sweep --grid learning_rate=1e-3,1e-4 --out DIR/sw (holds a sweep)",
         _with(lambda t: (t / "sw").mkdir() or (t / "sw" / "sweep.json").write_text("{}"),
               cli("sweep", "--grid", "learning_rate=1e-3,1e-4", "--out", "DIR/sw", *TINY))),
    Case("sweep", "sweep --resume DIR/nothing", cli("sweep", "--resume", "DIR/nothing")),
    Case("report", "report DIR/nothing", cli("report", "DIR/nothing")),
    Case("report", "report (no folder)", cli("report")),
    Case("cli", "fly", cli("fly")),
    # env parameters in an id, checked before compiling (core/envs/gymnax.py)
    Case("train", "train --env CartPole-v1?length=-1", cli("train", "--env", "CartPole-v1?length=-1")),
    Case("train", "train --env CartPole-v1?length=nan", cli("train", "--env", "CartPole-v1?length=nan")),
    Case("train", "train --env CartPole-v1?length=inf", cli("train", "--env", "CartPole-v1?length=inf")),
    Case("train", "train --env CartPole-v1?max_steps_in_episode=2.5",
         cli("train", "--env", "CartPole-v1?max_steps_in_episode=2.5")),
    Case("train", "train --env FourRooms-misc?fail_prob=1.5", cli("train", "--env", "FourRooms-misc?fail_prob=1.5")),
    # no abbreviated flags: argparse's (allow_abbrev=False) and tyro's
    Case("collect", "collect --from DIR/run --teacher DIR/run --episodes 10 --out DIR/d.npz",
         cli("collect", "--from", "DIR/run", "--teacher", "DIR/run", "--episodes", "10", "--out", "DIR/d.npz")),
    Case("train", "train --learning-r 1e-3", cli("train", "--learning-r", "1e-3")),
    Case("train", "train --ou DIR/run", cli("train", "--ou", "DIR/run")),
    # a blank --out names no folder
    Case("train", 'train --out ""', cli("train", "--out", "")),
    Case("train", 'train --out "  "', cli("train", "--out", "  ")),
    Case("compare", 'compare --out ""', cli("compare", "--out", "")),
    Case("sweep", 'sweep --grid learning_rate=1e-3 --out ""',
         cli("sweep", "--grid", "learning_rate=1e-3", "--out", "")),
    Case("report", 'report DIR --out ""', cli("report", "DIR", "--out", "")),
    Case("bench", 'bench --out ""', cli("bench", "--out", "")),
    Case("collect", 'collect --from DIR/run --episodes 1 --out ""',
         cli("collect", "--from", "DIR/run", "--episodes", "1", "--out", "")),
    # the optional env suites (core/envs/craftax.py, xminigrid.py, navix.py, jumanji.py)
    Case("train", "train --env mujoco:Ant", cli("train", "--env", "mujoco:Ant")),
    Case("train", "train --env navix:Navix-Empty-5x5-v0?max_steps=10",
         cli("train", "--env", "navix:Navix-Empty-5x5-v0?max_steps=10")),
    Case("train", "train --env craftax:Craftax-Classic-Symbolic",
         cli("train", "--env", "craftax:Craftax-Classic-Symbolic"), needs="craftax"),
    Case("train", "train --env xminigrid:XLand-MiniGrid-R1-9x9",
         cli("train", "--env", "xminigrid:XLand-MiniGrid-R1-9x9"), needs="xminigrid"),
    Case("train", "train --env xminigrid:MiniGrid-Empty-5x5 --torso gru",
         cli("train", "--env", "xminigrid:MiniGrid-Empty-5x5", "--torso", "gru"), needs="xminigrid"),
    Case("train", "train --env navix:Empty-5x5", cli("train", "--env", "navix:Empty-5x5"), needs="navix"),
    Case("train", "train --algo sac --env navix:Navix-Empty-5x5-v0",
         cli("train", "--algo", "sac", "--env", "navix:Navix-Empty-5x5-v0"), needs="navix"),
    Case("train", "train --env jumanji:MultiCVRP-v0", cli("train", "--env", "jumanji:MultiCVRP-v0"), needs="jumanji"),
    Case("train", "train --env jumanji:LevelBasedForaging-v0", cli("train", "--env", "jumanji:LevelBasedForaging-v0"),
         needs="jumanji"),
    # the spectrum's new learners (algorithms/pqn.py, sac.py, td3.py) and presets (algorithms/presets.py)
    Case("train", "train --algo pqn --env Pendulum-v1", cli("train", "--algo", "pqn", "--env", "Pendulum-v1")),
    Case("train", "train --algo td3 --env CartPole-v1", cli("train", "--algo", "td3", "--env", "CartPole-v1")),
    Case("train", "train --algo sac --env CartPole-v1", cli("train", "--algo", "sac", "--env", "CartPole-v1")),
    Case("train", "train --algo pqn --torso gru", cli("train", "--algo", "pqn", "--torso", "gru")),
    Case("train", "train --algo pqn --td-lambda 1.5", cli("train", "--algo", "pqn", "--td-lambda", "1.5")),
    Case("train", "train --algo sac --env Pendulum-v1 --replay-ratio 0.3",
         cli("train", "--algo", "sac", "--env", "Pendulum-v1", "--replay-ratio", "0.3")),
    Case("train", "train --algo td3 --env Pendulum-v1 --policy-delay 0",
         cli("train", "--algo", "td3", "--env", "Pendulum-v1", "--policy-delay", "0")),
    Case("train", "train --preset gymnax-blines (CartPole-v1)", cli("train", "--preset", "gymnax-blines")),
    Case("train", "train --preset clean-rl", cli("train", "--preset", "clean-rl")),
    # export (running/export.py, io/policy.py)
    Case("export", "export DIR/nothing --out DIR/p", cli("export", "DIR/nothing", "--out", "DIR/p")),
    Case("export", "export DIR/run --out DIR/p (no checkpoint yet)",
         _with(_resumable, cli("export", "DIR/run", "--out", "DIR/p"))),
    Case("export", 'export DIR/run --out ""', _with(_resumable, cli("export", "DIR/run", "--out", ""))),
    Case("export", "export --verify DIR/run (not an export)",
         _with(_resumable, cli("export", "--verify", "DIR/run"))),
    Case("Python", 'default_config("ppq")', api('jp.default_config("ppq")')),
    Case("Python", 'default_config("ppo", gamma=2, num_envs=0)', api('jp.default_config("ppo", gamma=2, num_envs=0)')),
    Case("Python", 'default_config("ppo", lerning_rate=1e-3)', api('jp.default_config("ppo", lerning_rate=1e-3)')),
    Case("Python", 'default_config("ppo").replace(clip_eps=0)', api('jp.default_config("ppo").replace(clip_eps=0)')),
    Case("Python", 'make_train(cfg)(key, {"num_envs": 8})',
         api('jp.make_train(jp.default_config("ppo"))(jax.random.PRNGKey(0), {"num_envs": 8})')),
    Case("Python", "run(cfg, 1, DIR/existing) (a finished run)",
         api('run(jp.default_config("ppo"), 1, DIR / "existing", progress=None)')),
    Case("Python", "resume_run(DIR/nothing)", api('resume_run(DIR / "nothing")')),
]


def outcome(case: Case, tmp: Path) -> tuple[str, str]:
    """``(exit code or exception name, message)`` of one case, scratch paths shown as DIR."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            case.run(tmp)
            code = "0"
        except SystemExit as e:
            code = str(e.code if e.code is not None else 0)
        except Exception as e:  # the Python API's errors
            code = type(e).__name__
            print(str(e), file=sys.stderr)
    text = err.getvalue().replace(str(tmp), "DIR")
    lines = [x.strip() for x in text.splitlines() if x.strip() and not x.startswith("usage:")]
    msg = " ⏎ ".join(lines)
    msg = msg.replace("pid " + msg.split("pid ", 1)[1].split(" ", 1)[0], "pid PID") if "in use by pid" in msg else msg
    msg = _scrub(msg)
    return code, (msg[:400] + " …") if len(msg) > 400 else msg


def _scrub(msg: str) -> str:
    import re
    msg = re.sub(r"on [\w.-]+ \(since [^)]*\)", "on HOST (since TIME: COMMAND)", msg)
    msg = re.sub(r"(\(since [^:]*: )[^)]*\)", r"\1COMMAND)", msg)
    return msg


def table(only_cheap: bool = False) -> list[tuple[str, str, str, str]]:
    rows = []
    for case in CASES:
        if only_cheap and (case.compiles or (case.needs and importlib.util.find_spec(case.needs) is None)):
            continue
        with tempfile.TemporaryDirectory() as t:
            code, msg = outcome(case, Path(t))
        rows.append((case.surface, case.shown, code, msg))
    return rows


def markdown(rows) -> str:
    # "|" would end the table cell; "[" is escaped so that argparse's "[--a] [--b]" usage lines are not read as
    # Markdown reference links (mkdocs build --strict fails on an unresolved one)
    esc = lambda s: s.replace("|", "\\|").replace("[", "\\[")  # noqa: E731
    head = ("# Bad inputs: what each gets\n\n"
            "Generated by `experiments/bad_inputs.py` (every case run for real; `tests/test_reliability.py` re-runs\n"
            "the ones that need no compile against this table). `DIR` is a scratch folder; ⏎ joins message lines.\n\n"
            "Exit codes: **0** done; **2** bad input or an unusable run folder, always before compiling; **3** a run\n"
            "diverged (the others' results are written; `summary.json` has `status` per seed). The Python API raises\n"
            "`ValueError` subclasses (`ConfigError`, `RunFolderError`, `SweepError`, `MeshError`) that name the\n"
            "field, value and rule, or the folder.\n\n"
            "| # | surface | input | exit code / exception | message |\n|---|---|---|---|---|\n")
    return head + "".join(f"| {i} | {s} | `{esc(inp)}` | {c} | {esc(m)} |\n" for i, (s, inp, c, m) in
                          enumerate(rows, 1))


def parse(md: str) -> list[tuple[str, str, str, str]]:
    out = []
    for line in md.splitlines():
        if line.startswith("| ") and not line.startswith("| #"):
            cells = [c.strip().replace("\\|", "|").replace("\\[", "[") for c in line.strip("|").split(" | ")]
            out.append((cells[1], cells[2].strip("`"), cells[3], cells[4]))
    return out


if __name__ == "__main__":
    rows = table()
    text = markdown(rows)
    if "--check" in sys.argv:
        sys.exit(0 if DOC.exists() and DOC.read_text() == text else 1)
    DOC.write_text(text)
    print(f"wrote {DOC} ({len(rows)} cases)")
