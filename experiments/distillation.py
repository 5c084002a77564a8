"""Policy distillation on CartPole-v1 and a MinAtar game: what each mode transfers, at what cost, and where it breaks.

    python experiments/distillation.py --out runs/distillation          # CPU-sized default (minutes)
    python experiments/distillation.py --seeds 10 --steps 50000         # larger
    python experiments/distillation.py --env Breakout-MinAtar --out runs/distillation-breakout  # parts 1-3

Writes ``results.json``, ``distillation.png`` and ``findings.md`` into ``--out``. Five parts:

``--env`` picks the env of parts 1-3 (default CartPole-v1; a MinAtar game gets a CNN teacher and
student, ``--steps`` 2e5 and ``--teacher-steps`` 1e6 by default); parts 4 and 5 are CartPole's.

1. **Modes.** A PPO teacher (trained here, or ``--teacher RUN_DIR``) is distilled into a student of
   the same shape by ``off-policy``, ``on-policy`` and ``mixed`` distillation, S seeds each (one
   vmapped program per mode). The greedy student's evaluation return (16 fixed episodes, IQM and
   95% stratified-bootstrap CI over seeds, ``jaxrl_policy.stats``) is recorded against env steps,
   teacher queries and gradient steps.
2. **Fixed dataset.** ``collect`` records teacher episodes; off-policy distillation learns from the
   dataset with no env steps (its cost is the dataset's teacher queries).
3. **State-distribution shift.** For each mode's final students: the states its acting policy visits
   (teacher, mixture at the final β, or student: the distribution it trains on) against the states
   the student meets acting alone, 500 steps × 8 envs from reset each: mean over observation
   dimensions of the 1-Wasserstein distance between the two empirical marginals, in units of the
   pooled standard deviation (on-policy: the same policy twice, the sampling-noise floor).
4. **Privileged teacher.** The teacher sees the full state, the student ``CartPole-v1-NoVelocity``
   (positions only). Plain distillation (MLP student, off- and on-policy) against two remedies: a
   recurrent (GRU) student distilled on-policy, and an MLP student fine-tuned with the env reward
   (``rl_coef``) beside the distillation term.
5. **Several teachers.** PPO specialists on two pole lengths are distilled into one student on the
   family ``CartPole-v1?length=…|length=…`` (env copy e: setting and teacher e mod 2), on- and
   off-policy; each specialist is also evaluated on the other's setting.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from jaxrl_policy.results.stats import iqm_estimate

LENGTHS = (0.25, 1.5)


def train_teacher(out: Path, env_id: str, steps: int) -> str:
    """A 1-seed PPO run folder with a checkpoint (reused when it is already there)."""
    from jaxrl_policy import default_config, run
    from jaxrl_policy.io import checkpoint
    if checkpoint.latest(out) is None:
        cfg = default_config("ppo", env_id, total_timesteps=steps, num_chunks=4)
        s = run(cfg, 1, out, progress=None, checkpoint_every_s=1e9)
        print(f"teacher {env_id}: eval return {s['final_eval_return_iqm']:.1f} ({s['wall_s']:.0f}s)", flush=True)
    return str(out)


def distill(seeds: int, **overrides):
    """Train ``seeds`` students in one program; returns (cfg, final state, metrics as numpy)."""
    import jax

    from jaxrl_policy import default_config, make_train, seed_keys
    cfg = default_config("distill", overrides.pop("env_id", "CartPole-v1"), num_chunks=10, **overrides)
    t = time.perf_counter()
    state, m = jax.jit(jax.vmap(make_train(cfg)))(seed_keys(cfg.seed, seeds))
    m = jax.tree.map(np.asarray, m)
    print(f"  {cfg.mode:10s} {cfg.student_obs or cfg.env_id:24s} torso={cfg.torso:4s} rl_coef={cfg.rl_coef}: "
          f"eval {iqm_estimate(m['eval_return'][:, -1])['iqm']:.1f} ({time.perf_counter() - t:.0f}s)", flush=True)
    return cfg, state, m


def curves(m) -> dict:
    """Evaluation IQM and CI per evaluation point, against each cost axis."""
    idx = np.where(~np.isnan(m["eval_return"][0]))[0]
    out: dict = {k: [float(x) for x in m[k][0, idx]] for k in ("env_steps", "teacher_queries", "student_env_steps",
                                                                "grad_steps") if k in m}
    estimates = [iqm_estimate(m["eval_return"][:, i]) for i in idx]
    out["eval_iqm"] = [e["iqm"] for e in estimates]
    out["eval_ci"] = [e["ci"] for e in estimates]
    return out


def state_shift(cfg, state, seeds: int, steps: int = 500) -> dict:
    """W1 between the states the mode's acting policy visits at the end of training and those the
    student visits acting alone: ``steps`` steps of ``num_envs`` envs from reset for each (whole
    episodes, auto-reset), per seed the mean over observation dimensions of the 1-Wasserstein distance
    between the two empirical marginals in pooled-std units. On-policy the two policies are the same,
    so its value is the sampling-noise floor."""
    import dataclasses

    import jax
    import jax.numpy as jnp

    from jaxrl_policy.core.config import hparams
    from jaxrl_policy.core.envs import make_vec_env
    from jaxrl_policy.loop.common import RolloutState
    from jaxrl_policy.running.build import build_loop

    def states(c, key_seed):
        loop, env, hp = build_loop(c), make_vec_env(c.env_id, c.num_envs), hparams(c)

        def one(agent, key):
            k_env, k_roll = jax.random.split(key)
            acting = RolloutState(env=env.reset(k_env), carry=None, first=jnp.ones((c.num_envs,), bool))
            return loop.rollout(agent, acting, k_roll, jnp.int32(c.total_timesteps), hp)[1].obs

        keys = jax.random.split(jax.random.PRNGKey(key_seed), seeds)
        return np.asarray(jax.jit(jax.vmap(one))(state.agent, keys))  # [S, steps, E, O]

    trained = states(dataclasses.replace(cfg, num_steps=steps), 98)
    met = states(dataclasses.replace(cfg, num_steps=steps, mode="on-policy"), 99)
    n = trained.shape[1] * trained.shape[2]  # observation dimensions flattened (MinAtar: 10 × 10 × C)
    out = []
    for s in range(seeds):
        a, b = trained[s].reshape(n, -1), met[s].reshape(n, -1)
        sd = np.concatenate([a, b]).std(0) + 1e-8
        out.append(float(np.mean([w1(a[:, d] / sd[d], b[:, d] / sd[d]) for d in range(a.shape[1])])))
    return iqm_estimate(out)


def w1(x: np.ndarray, y: np.ndarray) -> float:
    """1-Wasserstein distance between two 1-D empirical distributions (quantile functions on a grid)."""
    q = np.linspace(0, 1, 513)[1:-1]
    return float(np.mean(np.abs(np.quantile(x, q) - np.quantile(y, q))))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/distillation")
    p.add_argument("--env", default="CartPole-v1", help="env of parts 1-3 (parts 4-5 run on CartPole-v1 only)")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--steps", type=int, default=None, help="env steps per student (default 20480; MinAtar 2e5)")
    p.add_argument("--teacher-steps", type=int, default=None, help="default 150000; MinAtar 1e6")
    p.add_argument("--teacher", default=None, help="a PPO run folder on --env (default: train one)")
    p.add_argument("--episodes", type=int, default=None,
                   help="teacher episodes in the fixed dataset (default 20; MinAtar 100: its episodes are short)")
    p.add_argument("--skip", nargs="*", default=[], choices=["privileged", "several"])
    a = p.parse_args()
    from jaxrl_policy import use_cpu_speedups
    use_cpu_speedups()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    minatar = a.env.endswith("-MinAtar")
    S = a.seeds
    steps = a.steps or (200_000 if minatar else 20_480)
    teacher_steps = a.teacher_steps or (1_000_000 if minatar else 150_000)
    a.episodes = a.episodes or (100 if minatar else 20)
    if a.env != "CartPole-v1":
        a.skip = sorted(set(a.skip) | {"privileged", "several"})
    t0 = time.perf_counter()
    res: dict = {"env": a.env, "seeds": S, "steps": steps, "command": "python experiments/distillation.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(a).items() if v not in (None, [], False) and k != "skip")}
    teacher = a.teacher or train_teacher(out / "teacher", a.env, teacher_steps)
    from jaxrl_policy.io.dataset import save
    from jaxrl_policy.running.collect import collect
    arrays, header = collect(teacher, 16, seed=12345)  # the teacher's own sampled returns (16 episodes)
    greedy = json.loads((Path(teacher) / "summary.json").read_text()).get("final_eval_return_iqm")
    res["teacher"] = {"run": teacher, "sampled_return_mean": float(np.mean(header["episode_returns"])),
                      "greedy_eval_return": greedy}
    common = dict(teachers=[teacher], total_timesteps=steps, env_id=a.env)

    print("1. modes", flush=True)
    res["modes"] = {}
    for mode in ("off-policy", "on-policy", "mixed"):
        cfg, state, m = distill(S, mode=mode, **common)
        res["modes"][mode] = {"final_eval": iqm_estimate(m["eval_return"][:, -1]), "curve": curves(m),
                              "state_shift": state_shift(cfg, state, S),
                              "final_teacher_agreement": float(np.nanmean(m["teacher_agreement"][:, -1]))}

    print("2. fixed dataset", flush=True)
    arrays, header = collect(teacher, a.episodes, seed=1)
    data = save(out / "teacher_data.npz", arrays, header)
    _, _, m = distill(S, mode="off-policy", dataset=str(data), **common)
    res["dataset"] = {"file": str(data), "transitions": header["num_transitions"], "episodes": header["episodes"],
                      "final_eval": iqm_estimate(m["eval_return"][:, -1]), "grad_steps": float(m["grad_steps"][0, -1]),
                      "env_steps": 0}

    if "privileged" not in a.skip:
        print("4. privileged teacher (student sees CartPole-v1-NoVelocity)", flush=True)
        res["privileged"] = {}
        priv = dict(common, student_obs="CartPole-v1-NoVelocity")
        for name, kw in (("mlp off-policy", dict(mode="off-policy")), ("mlp on-policy", dict(mode="on-policy")),
                         ("gru on-policy", dict(mode="on-policy", torso="gru", rnn_size=64)),
                         ("mlp on-policy + reward", dict(mode="on-policy", rl_coef=1.0, ent_coef=0.0))):
            cfg, state, m = distill(S, **priv, **kw)
            res["privileged"][name] = {"final_eval": iqm_estimate(m["eval_return"][:, -1]), "curve": curves(m),
                                       "final_teacher_agreement": float(np.nanmean(m["teacher_agreement"][:, -1]))}

    if "several" not in a.skip:
        print("5. several teachers (pole lengths %s)" % (LENGTHS,), flush=True)
        envs = [f"CartPole-v1?length={x}" for x in LENGTHS]
        specialists = [train_teacher(out / f"teacher_length{x}", e, a.teacher_steps) for x, e in zip(LENGTHS, envs,
                                                                                                      strict=True)]
        cross = {}
        for i, t in enumerate(specialists):
            for j, e in enumerate(envs):
                _, h = collect(t, 16, seed=7, env_id=e, temperature=0.01)  # ≈ greedy, as the evaluation
                cross[f"teacher {LENGTHS[i]} on length {LENGTHS[j]}"] = float(np.mean(h["episode_returns"]))
        family = "CartPole-v1?" + "|".join(f"length={x}" for x in LENGTHS)
        res["several"] = {"env": family, "teacher_cross_returns (near-greedy)": cross}
        for mode in ("off-policy", "on-policy"):
            _, _, m = distill(S, env_id=family, teachers=specialists, mode=mode, total_timesteps=steps)
            res["several"][mode] = {"final_eval": iqm_estimate(m["eval_return"][:, -1]), "curve": curves(m)}

    res["wall_s"] = round(time.perf_counter() - t0, 1)
    (out / "results.json").write_text(json.dumps(res, indent=2))
    plot(res, out / "distillation.png")
    (out / "findings.md").write_text(findings(res))
    print(f"wrote {out}/results.json, distillation.png, findings.md ({res['wall_s']:.0f}s)")


def plot(res: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    panels = [("env_steps", "env steps", res["modes"]), ("teacher_queries", "teacher queries", res["modes"])]
    if "privileged" in res:
        panels.append(("env_steps", "env steps (student sees NoVelocity)", res["privileged"]))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6))
    for ax, (x, label, runs) in zip(axes, panels, strict=True):
        for name, r in runs.items():
            c = r["curve"]
            lo, hi = np.array(c["eval_ci"]).T
            ax.plot(c[x], c["eval_iqm"], label=name)
            ax.fill_between(c[x], lo, hi, alpha=0.2)
        if x == "teacher_queries" and "dataset" in res:
            d = res["dataset"]
            ax.errorbar([d["transitions"]], [d["final_eval"]["iqm"]], fmt="k*", ms=10,
                        yerr=[[d["final_eval"]["iqm"] - d["final_eval"]["ci"][0]],
                              [d["final_eval"]["ci"][1] - d["final_eval"]["iqm"]]],
                        label=f"dataset ({res['dataset']['episodes']} episodes, 0 env steps)")
        ax.set_xlabel(label)
        ax.set_ylabel("greedy student eval return (IQM, 95% CI)")
        ax.legend(fontsize=7)
    fig.suptitle(f"{res.get('env', 'CartPole-v1')}: {res['seeds']} seeds, {res['steps']:,} env steps per student",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def findings(res: dict) -> str:
    f = lambda r: f"{r['iqm']:.1f} [{r['ci'][0]:.1f}, {r['ci'][1]:.1f}]"  # noqa: E731
    lines = [f"# Distillation on {res.get('env', 'CartPole-v1')} — {res['seeds']} seeds, {res['steps']} env steps "
             "per student",
             "", f"Command: `{res['command']}` ({res['wall_s']:.0f} s).",
             f"Teacher: PPO, greedy evaluation return {res['teacher']['greedy_eval_return']}, sampled return "
             f"{res['teacher']['sampled_return_mean']:.1f} (16 episodes).", "",
             "| case | final greedy eval return (IQM [95% CI]) | state shift W1 (acting policy vs student alone) |",
             "|---|--:|--:|"]
    for mode, r in res["modes"].items():
        sh = r["state_shift"]
        lines.append(f"| {mode} | {f(r['final_eval'])} | {sh['iqm']:.3g} [{sh['ci'][0]:.3g}, {sh['ci'][1]:.3g}] |")
    d = res["dataset"]
    lines.append(f"| off-policy from a dataset ({d['episodes']} episodes, {d['transitions']} teacher queries, "
                 f"0 env steps) | {f(d['final_eval'])} | — |")
    for name, r in res.get("privileged", {}).items():
        lines.append(f"| privileged teacher, {name} | {f(r['final_eval'])} | — |")
    if "several" in res:
        for mode in ("off-policy", "on-policy"):
            lines.append(f"| several teachers ({res['several']['env']}), {mode} | "
                         f"{f(res['several'][mode]['final_eval'])} | — |")
        lines += ["", "Specialists' near-greedy returns (τ = 0.01, 16 episodes) across settings: " + ", ".join(
            f"{k}: {v:.1f}" for k, v in res["several"]["teacher_cross_returns (near-greedy)"].items())]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
