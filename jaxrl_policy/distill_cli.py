"""``jaxrl-policy distill`` (and ``collect``): command implementations, registered in ``cli.py``.

``distill`` is ``train --algo distill`` with ``--teacher RUN_DIR`` (repeatable) gathered into the
config's ``teachers`` field; every other flag is ``train``'s (run-level flags, ``--mode``,
``--student-obs``, ``--teacher-seed``, network fields, …), so the run folder, resume and checkpoints
are the usual ones.
"""
from __future__ import annotations

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
                from jaxrl_policy.cli import _fail
                _fail("--teacher needs a run folder")
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
    from jaxrl_policy.cli import _fail, cmd_train
    if "-h" in argv or "--help" in argv:
        print(DISTILL_HELP)
    if any(a == "--algo" or a.startswith("--algo=") for a in argv):
        _fail("distill: --algo is distill; drop it")
    teachers, rest = gather_teachers(argv)
    if "--resume" in rest or any(a.startswith("--resume=") for a in rest):
        cmd_train(rest)  # the run's own config names its teachers
        return
    if not teachers and not ("-h" in argv or "--help" in argv):
        _fail("distill: teachers = (): give at least one --teacher RUN_DIR")
    cmd_train(["--algo", "distill", *rest, *(["--teachers", *teachers] if teachers else [])])
