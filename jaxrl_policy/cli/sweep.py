"""``jaxrl-policy sweep``: points of traced hyperparameters × seeds as one program per static combination."""
from __future__ import annotations

from pathlib import Path

import jax

from jaxrl_policy.cli.common import (
    check_seeds,
    checkpoint_every,
    config_from_args,
    exit_if_diverged,
    fail,
    guard_of,
    mesh_args,
    report_atomically,
    run_help,
    run_parser,
    setup_process,
    sinks_of,
)
from jaxrl_policy.io.runfolder import recorded_cpu_threads
from jaxrl_policy.results.sweep_report import report_sweep
from jaxrl_policy.running import sweep as sw
from jaxrl_policy.running.mesh import MeshError
from jaxrl_policy.running.sweep import SweepError, resume_sweep

SWEEP_HELP = """sweep flags (besides the run-level flags of train; every config field is a flag and sets the base):
  --grid FIELD=V1,V2,…  values of one field; several --grid make the product of them. Tuples as 64x64,
                        booleans true/false, optional values none
  --points FILE.json    an explicit list of points: [{"learning_rate": 1e-3, "ent_coef": 0.0}, …]
  --random N            N random points from the --range specs, drawn with --random-seed (default 0)
  --range FIELD=KIND:…  log:LOW:HIGH | lin:LOW:HIGH | int:LOW:HIGH | choice:A,B,…
  --max-parallel N      points per compiled program (default: what fits in half the free device memory)
  --resume DIR          continue the sweep in DIR (finished points are kept, the batch in progress resumes)
Traced fields (the [traced] ones in --help) share one compile; each combination of static fields in the
grid is compiled and run separately. Every point runs with the same --seeds keys (paired comparison)."""


def cmd_sweep(argv: list[str]) -> None:
    p = run_parser("jaxrl-policy sweep", multi=False)
    p.add_argument("--grid", action="append", default=[])
    p.add_argument("--points", default=None)
    p.add_argument("--random", type=int, default=None)
    p.add_argument("--range", action="append", default=[], dest="ranges")
    p.add_argument("--random-seed", type=int, default=0)
    p.add_argument("--max-parallel", type=int, default=None)
    a, rest = p.parse_known_args(argv)
    guard = guard_of(a)
    if "-h" in argv or "--help" in argv:
        print(SWEEP_HELP)
        print(run_help(s="", extra="; one sub-folder per point, plus summary.json, summary.md, sweep.png",
                              resume="",
                              fields="every config field is a flag too: `jaxrl-policy sweep --algo ppo --help` "
                                     "lists them."))
    every = checkpoint_every(a.checkpoint_every)
    progress = None if a.quiet else print
    if a.resume is not None:
        if rest or a.grid or a.points or a.random:
            fail("--resume continues a sweep with its own points and config; drop the other flags")
        setup_process(a, recorded_sweep_threads(a.resume))
        try:
            res = resume_sweep(a.resume, progress=progress, checkpoint_every_s=every, guard=guard,
                               **mesh_args(a, []))
        except (SweepError, ValueError) as e:
            fail(str(e))
        out = Path(a.resume)
    else:
        setup_process(a)
        check_seeds(a.seeds)
        if a.max_parallel is not None and a.max_parallel < 1:
            fail(f"--max-parallel = {a.max_parallel}: must be an integer >= 1")
        sources = [n for n, v in (("--grid", a.grid), ("--points", a.points), ("--random", a.random)) if v]
        if len(sources) != 1:
            fail("sweep needs exactly one of --grid (repeatable), --points FILE or --random N with --range"
                  + (f"; got {', '.join(sources)}" if sources else ""))
        if a.random is not None and (a.random < 1 or not a.ranges):
            fail(f"--random = {a.random}: needs N >= 1 and at least one --range FIELD=KIND:…")
        base = config_from_args(a.algo, a.env, rest, f"jaxrl-policy sweep --algo {a.algo}")
        log_fields: set[str] = set()
        try:
            if a.grid:
                points = sw.grid_points(sw.parse_grid(type(base), a.grid))
            elif a.points:
                points = sw.load_points(a.points)
            else:
                ranges = [sw.parse_range(type(base), r) for r in a.ranges]
                log_fields = {name for name, kind, _ in ranges if kind == "log"}
                points = sw.random_points(type(base), ranges, a.random, a.random_seed)
            out = Path(a.out or f"runs/sweep-{base.algo}-{base.env_id}")
            mesh = mesh_args(a, [(base, a.seeds)])
            res = sw.run_sweep(base, points, a.seeds, out, max_parallel=a.max_parallel, progress=progress,
                               checkpoint_every_s=every, log_fields=log_fields,
                               command=" ".join(["jaxrl-policy", "sweep", *argv]), overwrite=a.overwrite,
                               guard=guard, sinks=sinks_of(a, base), **mesh)
        except (SweepError, MeshError, ValueError) as e:
            fail(str(e))
    if jax.process_index() != 0:
        return
    rep = report_atomically(lambda f: report_sweep(out, f), out)
    print(rep["markdown"])
    print(f"wrote {out}/sweep.json, summary.json, summary.md, p*/" + (f", {Path(rep['plot']).name}" if rep["plot"]
                                                                       else ""))
    exit_if_diverged(res["runs"])


def recorded_sweep_threads(sweep_dir: str) -> int | None:
    """The --cpu-threads a sweep's first point ran with (its config.json)."""
    return recorded_cpu_threads(str(Path(sweep_dir) / "p000"))
