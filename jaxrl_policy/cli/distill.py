"""``jaxrl-policy distill`` and ``collect``: distillation from teacher run folders, and recording a dataset.

``distill`` is ``train --algo distill`` with ``--teacher RUN_DIR`` (repeatable) gathered into the
config's ``teachers`` field; every other flag is ``train``'s (run-level flags, ``--mode``,
``--student-obs``, ``--teacher-seed``, network fields, …), so the run folder, resume and checkpoints
are the usual ones.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from jaxrl_policy.cli.common import fail, folder_arg
from jaxrl_policy.cli.train import cmd_train
from jaxrl_policy.core.envs import unknown_env_message
from jaxrl_policy.io.dataset import save
from jaxrl_policy.io.runfolder import read_config_json
from jaxrl_policy.running.collect import collect
from jaxrl_policy.running.preflight import teacher_problems

DISTILL_HELP = """jaxrl-policy distill --teacher RUN_DIR [--teacher RUN_DIR2 …] [--mode on-policy|off-policy|mixed] …
  --teacher RUN_DIR     a finished run folder of this project (config.json + checkpoints/); repeat for several
                        teachers (env copy e is labelled by teacher e mod n). --teacher-seed I picks the
                        run's I-th seed (default 0); --teacher-temperature T divides its logits (DQN: softmax(Q/T))
  --mode M              who acts: off-policy (the teacher), on-policy (the student), mixed (the teacher with
                        probability β from --beta-start to --beta-end over --beta-decay-fraction of the budget)
  --student-obs ID      what the student sees of the env's observation (e.g. CartPole-v1-NoVelocity with
                        --env CartPole-v1: a privileged teacher)
  --divergence D        forward (KL(teacher‖student)), reverse, jsd (--jsd-beta); --rl-coef W adds the env reward
every train flag applies (`jaxrl-policy train --algo distill --help` lists the config fields)."""


def gather_teachers(argv: list[str]) -> tuple[list[str], list[str]]:
    """Split ``--teacher X`` / ``--teacher=X`` (repeatable) out of ``argv``: ``(teachers, the rest)``."""
    teachers, rest, i = [], [], 0
    while i < len(argv):
        a = argv[i]
        if a == "--teacher":
            if i + 1 >= len(argv):
                fail("--teacher needs a run folder")
            teachers.append(argv[i + 1])
            i += 2
            continue
        if a.startswith("--teacher="):
            teachers.append(a.split("=", 1)[1])
        else:
            rest.append(a)
        i += 1
    return teachers, rest


def cmd_distill(argv: list[str]) -> None:
    if "-h" in argv or "--help" in argv:
        print(DISTILL_HELP)
    if any(a == "--algo" or a.startswith("--algo=") for a in argv):
        fail("distill: --algo is distill; drop it")
    teachers, rest = gather_teachers(argv)
    if "--resume" in rest or any(a.startswith("--resume=") for a in rest):
        cmd_train(rest)  # the run's own config names its teachers
        return
    if not teachers and not ("-h" in argv or "--help" in argv):
        fail("distill: teachers = (): give at least one --teacher RUN_DIR")
    cmd_train(["--algo", "distill", *rest, *(["--teachers", *teachers] if teachers else [])])


COLLECT_HELP = """jaxrl-policy collect --from RUN_DIR --episodes N --out DATA.npz [--env ID] [--seed S]
                     [--teacher-seed I] [--temperature T]
  records N whole episodes of RUN_DIR's policy (seed index I of the run; actions sampled from its
  softmax at temperature T: a DQN run acts by softmax(Q / T)) with their behaviour log-probabilities,
  into a versioned .npz dataset (io/dataset.py). Learn from it with `train --algo dqn --dataset DATA.npz`
  or `distill --teacher RUN_DIR --mode off-policy --dataset DATA.npz`: no env steps."""


def cmd_collect(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="jaxrl-policy collect", description=COLLECT_HELP, allow_abbrev=False,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--from", dest="source", required=True)
    p.add_argument("--episodes", type=int, required=True)
    p.add_argument("--out", required=True, type=folder_arg)
    p.add_argument("--env", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--teacher-seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=1.0)
    a = p.parse_args(argv)
    if a.episodes < 1:
        fail(f"--episodes = {a.episodes}: must be an integer >= 1")
    if not (a.temperature > 0 and a.temperature < float("inf")):
        fail(f"--temperature = {a.temperature}: must be a finite number > 0")
    try:
        d = read_config_json(a.source)
    except ValueError as e:
        fail(f"--from {a.source}: {e}")
    env = str(a.env or d.get("student_obs") or d.get("env_id"))
    msg = unknown_env_message(env)
    if msg:
        fail(f"--env {env}: {msg}")
    problems = teacher_problems(a.source, a.teacher_seed, env)
    if problems:
        fail(f"--from {a.source}: " + "; ".join(problems))
    arrays, header = collect(a.source, a.episodes, seed=a.seed, seed_index=a.teacher_seed,
                             temperature=a.temperature, env_id=env)
    path = save(a.out, arrays, header)
    rets = header["episode_returns"]
    print(json.dumps({"dataset": str(path), "episodes": header["episodes"], "transitions": header["num_transitions"],
                      "mean_return": sum(rets) / max(1, len(rets))}))
    print(f"wrote {Path(path)}")
