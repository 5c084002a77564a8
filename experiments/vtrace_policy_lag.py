"""V-trace's staleness knob end to end: policy lag L = 0, 4, 16 on CartPole-v1.

Each run acts with parameters L gradient steps older than the learner's and corrects with
V-trace's truncated importance weights. The table shows what the lag does to the data (age,
importance ratios, effective sample size, KL between acting and learning policy) and to the
final return. Regenerates the "staleness knob" table of docs/results.md:

    python experiments/vtrace_policy_lag.py --seeds 8 --out runs/vtrace-lag

Every extra flag is passed to the config (e.g. ``--replay-capacity 4``).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from jaxrl_policy import run
from jaxrl_policy.cli.common import config_from_args
from jaxrl_policy.results.report import report_runs

COLUMNS = ("data_age", "data_age_max", "ratio_mean", "ratio_max", "ratio_clip_frac", "ess", "policy_kl")


def table(rows: list[dict]) -> str:
    head = "| policy lag L | final return IQM [95% CI] | per-seed | " + " | ".join(COLUMNS) + " |"
    lines = [head, "|" + "---|" * (3 + len(COLUMNS))]
    for r in rows:
        s, d = r["summary"], r["summary"]["diagnostics"]
        lo, hi = s["final_return_ci"]
        cells = [str(r["lag"]), f"{s['final_return_iqm']:.1f} [{lo:.1f}, {hi:.1f}]",
                 " ".join(f"{x:.0f}" for x in s["final_return"])]
        cells += ["—" if d[k] is None else f"{d[k]:.4g}" for k in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lags", type=int, nargs="+", default=[0, 4, 16])
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--total-timesteps", type=int, default=500_000)
    p.add_argument("--env", default="CartPole-v1")
    p.add_argument("--out", type=Path, default=Path("runs/vtrace-lag"))
    a, rest = p.parse_known_args()
    # the remaining flags are config fields, parsed (and validated) as `jaxrl-policy train` parses them
    base = config_from_args("vtrace", a.env, rest, "vtrace_policy_lag.py", {"total_timesteps": a.total_timesteps})
    rows = []
    for lag in a.lags:
        cfg = base.replace(policy_lag=lag)
        s = run(cfg, a.seeds, a.out / f"lag-{lag}")
        rows.append({"lag": lag, "summary": s})
    md = table(rows)
    report_runs([a.out / f"lag-{lag}" for lag in a.lags], a.out,
                title=f"V-trace, {a.env}: policy lag L (IQM, 95% CI, {a.seeds} seeds)")
    (a.out / "lag.md").write_text(md + "\n")
    (a.out / "lag.json").write_text(json.dumps(rows, indent=2))
    print(md)
    print(f"wrote {a.out}/lag.md, lag.json, summary.md, returns.png")


if __name__ == "__main__":
    main()
