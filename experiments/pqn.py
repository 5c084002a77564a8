"""PQN's learning checks (issue 27): CartPole-v1 at rejax's published config, and PQN vs DQN on Breakout-MinAtar.

    python experiments/pqn.py --out runs/pqn                      # both parts, CPU-sized
    python experiments/pqn.py --out runs/pqn --parts cartpole     # one part
    python experiments/pqn.py --out runs/pqn --parts minatar-fresh  # the confirmation on fresh seeds

1. ``cartpole``: ``jaxrl-policy train --algo pqn`` on CartPole-v1 with PQN's defaults (= rejax's published
   CartPole PQN config, 524,288 env steps), 4 seeds; target: final greedy evaluation return IQM ≥ 475.
2. ``minatar``: ``jaxrl-policy compare --algos pqn dqn ppo vtrace`` on Breakout-MinAtar at the same env-step
   budget (default 10⁶ per seed, 4 seeds; each algorithm with its MinAtar defaults: PQN purejaxql's, DQN the
   MinAtar paper's sizes); target: PQN no worse than DQN. PPO and V-trace make it the discrete spectrum.

3. ``minatar-fresh``: the confirmation of part 2, decided before it ran: ``compare --algos pqn dqn`` on
   Breakout-MinAtar with 5 fresh seeds (``--seed 100``: seeds 100–104; parts 1–2 use 0–3), the same defaults.
   Criterion, stated before the run: PQN's *late evaluation* — per seed, the mean greedy evaluation return over
   the evaluations in the last 20% of the budget (4–5 evaluations of 16 episodes), IQM over seeds — is no lower
   than DQN's. (Why this and not the one final evaluation: in part 2, the IQM of DQN's final evaluations, 28.2,
   is above that of every earlier evaluation of its runs — 17.5, 22.5, 17.8 and 22.8 at 0.8, 0.85, 0.9 and
   0.95·10⁶ steps — so one evaluation of 16 episodes per seed is too noisy to rank two learners; Machado et
   al. 2018, "Revisiting the Arcade Learning Environment", average over the last episodes for that reason.)
   Beside them, on the same fresh seeds, PQN with the configuration chosen on two other tuning seeds (1000–1001,
   ``runs/pqn-tune``: 4 points of a sweep, the best final greedy evaluation): ``TUNED`` — 32 envs × 32 steps,
   4 epochs × 16 minibatches of 64, i.e. a gradient step per 16 env steps where purejaxql's 10⁷-step
   configuration takes one per 64 (DQN's MinAtar default: one per 10).

Then ``jaxrl-policy report`` over the CartPole run (``compare`` writes its own report into its folder: summary.md,
report.json, learning-curve figures), and this
script's own ``results.json`` / ``results.md``: per part and algorithm the final greedy evaluation return
(IQM and 95% stratified-bootstrap CI over seeds, from the report), the final training return, env steps/s
and wall time. Every step is a command-line call, printed and saved in ``commands.txt``; a finished step
(its ``summary.json``) is skipped when the script runs again.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from jaxrl_policy.io.runfolder import read_metrics
from jaxrl_policy.results.stats import iqm_estimate

PARTS = ("cartpole", "minatar", "minatar-fresh")
LATE = 0.2  # the late evaluation: evaluations in the last 20% of the budget
# PQN on Breakout-MinAtar at 10⁶ steps, chosen on tuning seeds 1000–1001 (runs/pqn-tune; docs/spectrum.md)
TUNED = ("--num-envs", "32", "--num-minibatches", "16", "--num-epochs", "4")


def cli(args: list[str], log: Path) -> float:
    """Run one ``jaxrl-policy`` command (a subprocess), logged; its wall time in seconds."""
    line = "jaxrl-policy " + " ".join(shlex.quote(a) for a in args)
    with log.open("a") as f:
        f.write(line + "\n")
    print(f"$ {line}", flush=True)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "jaxrl_policy.cli", *args], check=True)
    wall = time.perf_counter() - t
    print(f"  ({wall:.0f}s)", flush=True)
    return wall


def rows(report: Path) -> list[dict]:
    """Per env × algorithm: final evaluation IQM and CI from a folder's report.json (``report``'s output, or a
    compare folder)."""
    doc = json.loads((report / "report.json").read_text())
    out = []
    for c in doc["cells"]:
        ev, tr = c.get("final_eval_return") or {}, c.get("final_return") or {}
        out.append({"env": c["task"], "algo": c["algo"], "seeds": c["seeds"], "budget_env_steps": c["budget_env_steps"],
                    "eval_iqm": ev.get("iqm"), "eval_ci": ev.get("ci"), "train_iqm": tr.get("iqm"),
                    "train_ci": tr.get("ci")})
    return out


def late_eval(run: Path, budget: int) -> dict:
    """Per seed the mean greedy evaluation return over evaluations at env steps ≥ (1 − LATE)·budget, and their IQM
    with its 95% stratified-bootstrap CI (``results.stats.iqm_estimate``)."""
    by_seed: dict[int, list[float]] = {}
    for r in read_metrics(run / "metrics.jsonl")[0]:
        if r.get("eval_return") is not None and r["env_steps"] >= (1 - LATE) * budget:
            by_seed.setdefault(r["seed"], []).append(float(r["eval_return"]))
    est = iqm_estimate([sum(v) / len(v) for _, v in sorted(by_seed.items())])
    est["evaluations_per_seed"] = sorted({len(v) for v in by_seed.values()})
    return est


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("runs/pqn"))
    p.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS)
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--fresh-seed", type=int, default=100, help="minatar-fresh: its first seed")
    p.add_argument("--fresh-seeds", type=int, default=5, help="minatar-fresh: its number of seeds")
    p.add_argument("--minatar-steps", type=int, default=1_000_000, help="env steps per seed on Breakout-MinAtar")
    p.add_argument("--minatar-env", default="Breakout-MinAtar")
    p.add_argument("--minatar-algos", nargs="+", default=["pqn", "dqn", "ppo", "vtrace"],
                   help="the compare's algorithms (PQN and DQN are the check; PPO and V-trace complete the spectrum)")
    a = p.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    log = a.out / "commands.txt"
    results = json.loads((a.out / "results.json").read_text()) if (a.out / "results.json").exists() else {}
    common = ["--seeds", str(a.seeds), "--checkpoint-every", "0", "--quiet", "--overwrite"]
    if "cartpole" in a.parts:
        d = a.out / "cartpole"
        wall = None
        if not (d / "summary.json").exists():
            wall = cli(["train", "--algo", "pqn", "--env", "CartPole-v1", *common, "--out", str(d)], log)
        cli(["report", str(d), "--no-aggregate", "--out", str(d / "report")], log)
        s = json.loads((d / "summary.json").read_text())
        results["cartpole"] = {"command_wall_s": wall, "runs": rows(d / "report"), "target": "eval IQM >= 475",
                               "env_steps_per_s": s.get("env_steps_per_s"), "wall_s": s.get("wall_s"),
                               "compile_s": s.get("compile_s"), "total_timesteps": s.get("total_timesteps")}
    for part in ("minatar", "minatar-fresh"):
        if part not in a.parts:
            continue
        d = a.out / part
        wall = None
        algos, seeds = (a.minatar_algos, common) if part == "minatar" else \
            (["pqn", "dqn"], ["--seed", str(a.fresh_seed), "--seeds", str(a.fresh_seeds), *common[2:]])
        if not (d / "summary.json").exists():
            wall = cli(["compare", "--algos", *algos, "--env", a.minatar_env, "--total-timesteps",
                        str(a.minatar_steps), *seeds, "--out", str(d)], log)
        runs = json.loads((d / "summary.json").read_text())["runs"]
        table = rows(d)  # compare writes its own report (report.json, summary.md, figures) into d
        for r in table:
            r["late_eval"] = late_eval(d / r["algo"], a.minatar_steps)
        if part == "minatar-fresh":  # + PQN at the tuned point, same seeds
            t = a.out / "minatar-fresh-pqn-tuned"
            if not (t / "summary.json").exists():
                cli(["train", "--algo", "pqn", "--env", a.minatar_env, "--total-timesteps", str(a.minatar_steps),
                     *TUNED, *seeds, "--out", str(t)], log)
            st = json.loads((t / "summary.json").read_text())
            ev, tr = iqm_estimate(st["final_eval_return"]), iqm_estimate(st["final_return"])
            table.append({"env": a.minatar_env, "algo": "pqn (tuned: " + " ".join(TUNED) + ")", "seeds": len(st[
                "final_return"]), "budget_env_steps": a.minatar_steps, "eval_iqm": ev["iqm"], "eval_ci": ev["ci"],
                "train_iqm": tr["iqm"], "train_ci": tr["ci"], "late_eval": late_eval(t, a.minatar_steps),
                "env_steps_per_s": st.get("env_steps_per_s"), "wall_s": st.get("wall_s")})
        target = "PQN no worse than DQN" if part == "minatar" else \
            f"PQN's late evaluation IQM (last {LATE:.0%} of the budget) no lower than DQN's"
        results[part] = {"command_wall_s": wall, "runs": table, "target": target,
                         "per_algo": {r["algo"]: {k: r.get(k) for k in ("env_steps_per_s", "wall_s", "compile_s",
                                                                         "total_timesteps")} for r in runs}}
    (a.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = ["| part | env | algo | seeds | final eval IQM [95% CI] | late eval IQM [95% CI] | "
             "final train IQM [95% CI] |", "|---|---|---|---|---|---|---|"]
    for part, res in results.items():
        for r in res["runs"]:
            def fmt(x, ci):
                return "n/a" if x is None else f"{x:.1f} [{ci[0]:.1f}, {ci[1]:.1f}]"
            late = r.get("late_eval") or {}
            lines.append(f"| {part} | {r['env']} | {r['algo']} | {r['seeds']} | {fmt(r['eval_iqm'], r['eval_ci'])} | "
                         f"{fmt(late.get('iqm'), late.get('ci'))} | {fmt(r['train_iqm'], r['train_ci'])} |")
    (a.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
