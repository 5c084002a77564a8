"""The staleness study: where does off-policy correction stop paying off?

    python experiments/staleness.py --out runs/staleness              # CPU-sized default (minutes)
    python experiments/staleness.py --full --out runs/staleness-full  # accelerator budget

Two ways to learn from older data, on one env (CartPole-v1 by default), same seeds and budget:

- **V-trace with policy lag L** ∈ {0, 1, 4, 16, 64} gradient steps (the actor's parameters are L
  learner updates old), **with** the truncated importance weights ρ̄ = c̄ = 1 (Espeholt et al.
  2018) and **without** them (``off_policy_correction = false``: ρ = c = 1, the stale data is
  treated as on-policy, a λ-return actor-critic). All 2 × 5 points × S seeds are one program
  (``policy_lag`` and ``off_policy_correction`` are traced hyperparameters; the ring of past
  parameters holds 64).
- **PPO with 1, 4 and 16 epochs** over each batch (Schulman et al. 2017): later epochs learn from
  data that the current parameters did not collect, corrected by ratio clipping. One program per
  epoch count (the epoch count shapes the program).

For every run: the final greedy evaluation return (16 fixed episodes, as every run), and the
learning-time diagnostics averaged over the second half of training: ``data_age`` (learner
gradient steps minus the acting parameters'), ``ess`` (Kish's effective sample size of the
importance weights, a fraction), ``ratio_clip_frac`` (share of weights the truncation or clip
touched) and ``policy_kl`` (KL(acting ‖ learning), k3 estimator). Statistics over seeds: IQM with
a 95% stratified-bootstrap CI; corrected vs uncorrected at each L as the probability of
improvement with its CI (``jaxrl_policy.stats``). Writes ``results.json``, ``staleness.png`` and
``findings.md`` into ``--out``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from jaxrl_policy.results.stats import iqm, iqm_estimate

LAGS = (0, 1, 4, 16, 64)
EPOCHS = (1, 4, 16)
DIAG = ("data_age", "ess", "ratio_clip_frac", "policy_kl")


def second_half_means(m: dict) -> dict:
    """Per run, the mean of each diagnostic over the second half of the iterations that learned."""
    out = {}
    for k in DIAG:
        x = np.asarray(m[k], np.float64)
        half = x[..., x.shape[-1] // 2:]
        with np.errstate(all="ignore"):
            out[k] = np.nanmean(half, axis=-1)
    return out


def run_points(cfg, seeds: int, points: dict[str, np.ndarray]):
    """S seeds × P points of ``cfg`` in one program; metrics as numpy ``[P, S, I]``."""
    import jax

    from jaxrl_policy import make_train, seed_keys
    train = make_train(cfg)
    fn = jax.jit(jax.vmap(jax.vmap(train, (0, None)), (None, 0)))
    _, m = fn(seed_keys(cfg.seed, seeds), points)
    return jax.tree.map(np.asarray, m)


def summarise(m: dict, p: int) -> dict:
    """Final eval return and diagnostics of point ``p`` (metrics ``[P, S, I]``)."""
    diag = second_half_means({k: m[k][p] for k in DIAG})
    ev = m["eval_return"][p]  # [S, I]
    done = np.flatnonzero(~np.isnan(ev[0]))  # the evaluation iterations (the same for every seed)
    # the curve needs only the IQM at each evaluation, not a bootstrap CI (NaN seeds dropped, as there)
    return {"final_eval": iqm_estimate(ev[:, -1]),
            **{k: iqm_estimate(v) for k, v in diag.items()},
            "curve": {"env_steps": [int(x) for x in m["env_steps"][p, 0, done]],
                      "eval_iqm": [iqm(ev[:, i][~np.isnan(ev[:, i])]) for i in done]}}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default="CartPole-v1")
    p.add_argument("--seeds", type=int, default=None, help="seeds per point (default 8; --full 16)")
    p.add_argument("--total-timesteps", type=int, default=None, help="env steps per run (default 3e5; --full 2e6)")
    p.add_argument("--lags", type=int, nargs="+", default=list(LAGS))
    p.add_argument("--epochs", type=int, nargs="+", default=list(EPOCHS))
    p.add_argument("--full", action="store_true", help="accelerator budget: 16 seeds × 2e6 env steps")
    p.add_argument("--out", type=Path, default=Path("runs/staleness"))
    p.add_argument("--replot", action="store_true", help="redraw the figure and findings from --out/results.json")
    a = p.parse_args(argv)
    if a.replot:
        res = json.loads((a.out / "results.json").read_text())
        plot(res, a.out / "staleness.png")
        (a.out / "findings.md").write_text(findings(res))
        return
    seeds = a.seeds or (16 if a.full else 8)
    steps = a.total_timesteps or (2_000_000 if a.full else 300_000)
    from jaxrl_policy import default_config, hparams, use_cpu_speedups
    use_cpu_speedups()
    a.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    res: dict = {"env": a.env, "seeds": seeds, "total_timesteps": steps,
                 "command": "python experiments/staleness.py" + (" --full" if a.full else "")
                 + "".join(f" --{k.replace('_', '-')} {v}" for k, v in (("seeds", a.seeds), ("total_timesteps",
                                                                                              a.total_timesteps))
                           if v is not None) + f" --out {a.out}"}

    # V-trace: lags × correction in one program (paired: every point starts from the same seeds).
    vcfg = default_config("vtrace", a.env, total_timesteps=steps, max_policy_lag=max(a.lags))
    base = hparams(vcfg)
    grid = [(lag, corr) for corr in (1, 0) for lag in a.lags]
    points = {"policy_lag": np.array([g[0] for g in grid], base["policy_lag"].dtype),
              "off_policy_correction": np.array([g[1] for g in grid], base["off_policy_correction"].dtype)}
    t = time.perf_counter()
    m = run_points(vcfg, seeds, points)
    print(f"V-trace: {len(grid)} points × {seeds} seeds × {steps:,} steps in {time.perf_counter() - t:.0f}s",
          flush=True)
    res["vtrace"] = {"corrected" if corr else "uncorrected": {} for corr in (1, 0)}
    for i, (lag, corr) in enumerate(grid):
        res["vtrace"]["corrected" if corr else "uncorrected"][str(lag)] = summarise(m, i)
    from jaxrl_policy.results import matrices
    res["poi_corrected_over_uncorrected"] = {}
    for lag in a.lags:
        x = m["eval_return"][grid.index((lag, 1)), :, -1].astype(np.float64)[:, None]
        y = m["eval_return"][grid.index((lag, 0)), :, -1].astype(np.float64)[:, None]
        e = matrices.probability_of_improvement_estimate(x, y)
        res["poi_corrected_over_uncorrected"][str(lag)] = {"poi": float(e.point), "ci": [float(e.low), float(e.high)]}

    # PPO: one program per epoch count.
    res["ppo"] = {}
    for ep in a.epochs:
        pcfg = default_config("ppo", a.env, total_timesteps=steps, num_epochs=ep)
        t = time.perf_counter()
        pm = run_points(pcfg, seeds, {"learning_rate": np.array([hparams(pcfg)["learning_rate"]])})
        res["ppo"][str(ep)] = summarise(pm, 0)
        print(f"PPO {ep} epochs: eval {res['ppo'][str(ep)]['final_eval']['iqm']:.1f} "
              f"({time.perf_counter() - t:.0f}s)", flush=True)

    res["wall_s"] = round(time.perf_counter() - t0, 1)
    (a.out / "results.json").write_text(json.dumps(res, indent=2))
    plot(res, a.out / "staleness.png")
    (a.out / "findings.md").write_text(findings(res))
    print(findings(res))
    print(f"wrote {a.out}/results.json, staleness.png, findings.md ({res['wall_s']:.0f}s)")


def plot(res: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    series = [("V-trace, ρ̄ = c̄ = 1 (lag L)", res["vtrace"]["corrected"], "o-"),
              ("V-trace, no correction (lag L)", res["vtrace"]["uncorrected"], "s--"),
              ("PPO (epochs)", res["ppo"], "^-")]
    panels = [("final_eval", "final greedy eval return (IQM, 95% CI)"), ("ess", "ESS of the weights (fraction)"),
              ("ratio_clip_frac", "share of ratios clipped / truncated"), ("policy_kl", "KL(acting ‖ learning)")]
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    for ax, (key, label) in zip(axes.flat, panels, strict=True):
        for name, runs, style in series:
            labels = list(runs)
            age = np.array([runs[k]["data_age"]["iqm"] for k in labels])
            y = np.array([runs[k][key]["iqm"] for k in labels])
            lo, hi = np.array([runs[k][key]["ci"] for k in labels]).T
            ax.errorbar(age + 1, y, yerr=[y - lo, hi - y], fmt=style, capsize=3, label=name)
            for xa, ya, lab in zip(age + 1, y, labels, strict=True):
                ax.annotate(lab, (xa, ya), textcoords="offset points", xytext=(3, 3), fontsize=7)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator([1, 2, 4, 8, 16, 32, 64, 128]))
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel("data age + 1 (learner gradient steps since acting; mean)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(f"{res['env']}: staleness ({res['seeds']} seeds × {res['total_timesteps']:,} env steps; "
                 "numbers at points: L or epochs)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    fig.savefig(path.with_suffix(".pdf"))


def findings(res: dict) -> str:
    f = lambda r: f"{r['iqm']:.1f} [{r['ci'][0]:.1f}, {r['ci'][1]:.1f}]"  # noqa: E731
    g = lambda r: f"{r['iqm']:.3g}"  # noqa: E731
    lines = [f"# Staleness study on {res['env']} — {res['seeds']} seeds × {res['total_timesteps']:,} env steps",
             "", f"Command: `{res['command']}` ({res['wall_s']:.0f} s).", "",
             "| run | data age | final eval return (IQM [95% CI]) | ESS | clipped | KL(acting‖learning) | "
             "P(corrected > uncorrected) [95% CI] |", "|---|--:|--:|--:|--:|--:|--:|"]
    for kind in ("corrected", "uncorrected"):
        for lag, r in res["vtrace"][kind].items():
            poi = res["poi_corrected_over_uncorrected"][lag] if kind == "corrected" else None
            lines.append(f"| V-trace {kind}, L = {lag} | {g(r['data_age'])} | {f(r['final_eval'])} | "
                         f"{r['ess']['iqm']:.3f} | {g(r['ratio_clip_frac'])} | {g(r['policy_kl'])} | "
                         + (f"{poi['poi']:.2f} [{poi['ci'][0]:.2f}, {poi['ci'][1]:.2f}]" if poi else "") + " |")
    for ep, r in res["ppo"].items():
        lines.append(f"| PPO, {ep} epochs | {g(r['data_age'])} | {f(r['final_eval'])} | {r['ess']['iqm']:.3f} | "
                     f"{g(r['ratio_clip_frac'])} | {g(r['policy_kl'])} | |")
    lines += ["", "Diagnostics: means over the second half of training, IQM over seeds. A POI CI that contains "
              "0.5 means the difference is not significant at this number of seeds."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
