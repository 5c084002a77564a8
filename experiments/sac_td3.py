"""SAC and TD3 on Pendulum-v1 at rejax's tuned configs, and SAC on a Brax env (issue 27).

    python experiments/sac_td3.py --out runs/sac_td3

Runs (each a ``jaxrl-policy train`` command; all seeds of a run in one program):

1. SAC, Pendulum-v1, 4 seeds × 2·10⁴ env steps — target: final greedy-evaluation IQM ≥ −200;
2. TD3, Pendulum-v1, 4 seeds × 3·10⁴ env steps — target: ≥ −250;
3. SAC, brax:inverted_pendulum@generalized, 2 seeds × 2·10⁴ env steps — a learning curve (CPU budget).

Pendulum-v1 runs use the algorithms' Pendulum defaults, which are rejax's tuned configs
(keraJLi/rejax configs/gymnax/pendulum.yaml; ``SAC_PENDULUM``, ``TD3_PENDULUM``), changing only the budget.
The Brax run uses a CPU-sized SAC: (64, 64) swish, lr 1e-3, observation normalisation, learning from 10³ steps,
10⁵ transitions kept (otherwise SAC's general defaults, CleanRL's: batch 256, τ 0.005, γ 0.99). It uses Brax's
``generalized`` physics: on the default ``spring`` backend inverted_pendulum jitters so that hand-tuned PD
controllers fall within 20–160 steps (they balance for the full 1000 on ``generalized``), and SAC plateaus near
60 steps there. Evaluation every 10³ env steps (16 greedy episodes from fixed keys; Brax: 8 episodes of up to
10³ steps) so each curve shows when the run reaches its threshold. Then ``jaxrl-policy report`` over the
Pendulum runs, and one for the Brax run.

Printed and saved (``results.json``, ``commands.txt``): per run the final evaluation return IQM [95%
stratified-bootstrap CI] over seeds, each seed's, the first env step at which the evaluation IQM over
seeds reached the threshold, and each seed's first such step. A finished run (its ``summary.json``) is
skipped when the script is run again.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

EVAL = ["--eval-every", "1000", "--eval-episodes", "16"]
RUNS = {  # name: (threshold, train flags)
    "sac-Pendulum-v1": (-200.0, ["--algo", "sac", "--env", "Pendulum-v1", "--seeds", "4", "--total-timesteps",
                                 "20000", *EVAL]),
    "td3-Pendulum-v1": (-250.0, ["--algo", "td3", "--env", "Pendulum-v1", "--seeds", "4", "--total-timesteps",
                                 "30000", *EVAL]),
    "sac-brax-inverted_pendulum": (900.0, ["--algo", "sac", "--env", "brax:inverted_pendulum@generalized", "--seeds",
                                           "2", "--total-timesteps", "20000", "--learning-starts", "1000",
                                           "--buffer-size", "100000", "--hidden-sizes", "64", "64", "--activation",
                                           "silu", "--learning-rate", "1e-3", "--normalize-observations",
                                           "--eval-every", "1000", "--eval-episodes", "8"]),
}


def cli(args: list[str], log: Path) -> float:
    """Run one ``jaxrl-policy`` command (a subprocess), logged; returns its wall time in seconds."""
    line = "jaxrl-policy " + " ".join(shlex.quote(a) for a in args)
    with log.open("a") as f:
        f.write(line + "\n")
    print(f"$ {line}", flush=True)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "jaxrl_policy.cli", *args], check=True)
    wall = time.perf_counter() - t
    print(f"  ({wall:.0f}s)", flush=True)
    return wall


def iqm(x: np.ndarray) -> float:
    """Interquartile mean (the mean of the middle 50%; with 4 values, the mean of the middle two)."""
    x = np.sort(np.asarray(x, np.float64))
    n = len(x)
    lo, hi = int(np.floor(n / 4)), int(np.ceil(3 * n / 4))
    return float(x[lo:hi].mean()) if hi > lo else float(x.mean())


def first_reach(run_dir: Path, threshold: float, eval_every: int) -> dict:
    """The first env step at which the evaluation IQM over seeds, and each seed's evaluation, reached ``threshold``.

    A log row of ``metrics.jsonl`` covers a window of iterations (1/200 of the run, shorter than ``eval_every``)
    and reports its evaluation at the window's end; the evaluation ran at the last multiple of ``eval_every``."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    evals: dict[int, dict[int, float]] = {}
    for r in rows:
        if r.get("eval_return") is not None:
            at = r["env_steps"] // eval_every * eval_every
            evals.setdefault(at, {})[r["seed"]] = r["eval_return"]
    steps = sorted(evals)
    seeds = sorted({s for e in evals.values() for s in e})
    curve = [(t, iqm(np.array(list(evals[t].values())))) for t in steps]
    reach = next((t for t, v in curve if v >= threshold), None)
    per_seed = {s: next((t for t in steps if evals[t].get(s, -np.inf) >= threshold), None) for s in seeds}
    return {"threshold": threshold, "eval_iqm_curve": curve, "first_env_step_iqm": reach,
            "first_env_step_per_seed": per_seed}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("runs/sac_td3"))
    p.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    a = p.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    log = a.out / "commands.txt"
    results = json.loads((a.out / "results.json").read_text()) if (a.out / "results.json").exists() else {}
    for name in a.runs:
        threshold, flags = RUNS[name]
        d = a.out / name
        wall = None
        if not (d / "summary.json").exists():
            wall = cli(["train", *flags, "--checkpoint-every", "0", "--quiet", "--overwrite", "--out", str(d)], log)
        s = json.loads((d / "summary.json").read_text())
        res = {"command": "jaxrl-policy train " + " ".join(flags), "wall_s_command": wall or results.get(
            name, {}).get("wall_s_command"), "wall_s": s["wall_s"], "compile_s": s["compile_s"],
            "env_steps_per_s": s["env_steps_per_s"], "final_eval_return_iqm": s["final_eval_return_iqm"],
            "final_eval_return_ci": s["final_eval_return_ci"], "final_eval_return": s["final_eval_return"],
            "final_return_iqm": s["final_return_iqm"],
            **first_reach(d, threshold, int(flags[flags.index("--eval-every") + 1]))}
        results[name] = res
        print(f"{name}: final eval IQM {res['final_eval_return_iqm']:.1f} "
              f"[{res['final_eval_return_ci'][0]:.1f}, {res['final_eval_return_ci'][1]:.1f}], per seed "
              f"{[round(x, 1) for x in res['final_eval_return']]}; eval IQM ≥ {threshold:g} from env step "
              f"{res['first_env_step_iqm']} (per seed {res['first_env_step_per_seed']}); {res['wall_s']:.0f}s",
              flush=True)
        (a.out / "results.json").write_text(json.dumps(results, indent=1))
    pendulum = [str(a.out / n) for n in a.runs if n.endswith("Pendulum-v1")]
    if pendulum:
        cli(["report", *pendulum, "--threshold", "Pendulum-v1=-200", "--out", str(a.out / "report")], log)
    for n in a.runs:
        if "brax" in n:
            cli(["report", str(a.out / n), "--threshold", f"{RUNS[n][1][RUNS[n][1].index('--env') + 1]}={RUNS[n][0]:g}",
                 "--out", str(a.out / f"report-{n}")], log)
    print(f"wrote {a.out}/results.json, commands.txt, report*/")


if __name__ == "__main__":
    main()
