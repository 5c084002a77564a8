"""``jaxrl-policy report``: tables and figures from run, compare and sweep folders."""
from __future__ import annotations

import argparse
from pathlib import Path

from jaxrl_policy.cli.common import fail, folder_arg
from jaxrl_policy.io.runfolder import find_run_dirs
from jaxrl_policy.results.analysis import parse_thresholds
from jaxrl_policy.results.report import report_runs
from jaxrl_policy.results.sweep_report import report_sweep


def cmd_report(argv: list[str]) -> None:
    p = argparse.ArgumentParser(
        prog="jaxrl-policy report", allow_abbrev=False,
        description="Tables and figures from run folders (summary.json, metrics.jsonl), compare folders (their "
                    "runs), sweep folders (their points) and runs of several envs. One sweep folder alone gets "
                    "the sweep report (return and diagnostics against each swept field).",
        epilog="writes into --out: summary.md, table.tex (booktabs), summary.json, report.json and PNG + PDF "
               "figures: returns (training and evaluation return vs --x, IQM and 95%% CI bands), final_scores "
               "(IQM with 95%% CI per task, and the normalised aggregate over tasks), poi (probability of "
               "improvement X vs Y with CIs), profiles (performance profiles)")
    p.add_argument("runs", nargs="+", help="run, compare or sweep folders")
    p.add_argument("--out", default=None, type=folder_arg,
                   help="output folder (default: the folder that holds the runs, e.g. the compare folder; a "
                        "sweep's own)")
    p.add_argument("--x", default="env_steps", choices=["env_steps", "grad_steps", "wall_s"],
                   help="x axis of the learning curves (default env_steps; scores are always compared at a "
                        "matched env-step budget)")
    p.add_argument("--threshold", nargs="+", default=None, metavar="X|ENV=X",
                   help="return to reach for 'env steps to threshold': one number (one env) or ENV=X per env "
                        "(default per env: half-way from random to the reference score of jaxrl_policy.results.scores)")
    p.add_argument("--no-aggregate", action="store_true",
                   help="report each env on its own (no normalised aggregate over tasks; needed to mix envs "
                        "without normalisation scores)")
    p.add_argument("--score", default="eval", choices=["eval", "train"],
                   help="final score of the POI matrix and performance profiles: the final evaluation return "
                        "(default) or the final training return")
    p.add_argument("--bins", type=int, default=50, help="points of a training-return curve (default 50)")
    a = p.parse_args(argv)
    given = [Path(d) for d in a.runs]
    if len(given) == 1 and (given[0] / "sweep.json").exists():
        print(report_sweep(given[0], a.out)["markdown"])
        return
    if a.bins < 2:
        fail(f"--bins = {a.bins}: must be an integer >= 2")
    try:
        dirs = find_run_dirs(given)
        parents = {d.parent.resolve() for d in dirs}
        if a.out is None and len(parents) > 1:
            fail(f"the runs are in {len(parents)} different folders ({', '.join(sorted(map(str, parents)))}): "
                  "say where the report goes with --out DIR")
        out = Path(a.out) if a.out is not None else dirs[0].parent
        res = report_runs(dirs, out, bins=a.bins, x=a.x, threshold=parse_thresholds(a.threshold or []),
                          aggregate=not a.no_aggregate, score=a.score)
    except ValueError as e:
        fail(str(e))
    print(res["markdown"])
    print(f"wrote {out}/summary.md, table.tex, summary.json, report.json"
          + (", " + ", ".join(Path(f).name for f in res["figures"]) if res["figures"] else ""))
