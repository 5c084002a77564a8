"""Our results beside published ones, at the published budgets: the reference table of docs/references.md.

    python experiments/references.py --out runs/references            # CPU-sized default (hours on 2 cores)
    python experiments/references.py --full --out runs/references-full  # the accelerator form (benchmarks/gpu.sh)
    python experiments/references.py --speed                           # MinAtar env-steps/s beside purejaxrl
    python experiments/references.py --docs-only --out runs/references # rewrite docs/references.md from results.json

Every row is one ``jaxrl-policy train`` command (``--preset NAME`` where a published configuration exists,
``algorithms/presets.py``) over ``--seeds`` seeds, scored by its final greedy evaluation and by its training-episode
return at the end (IQM and 95% stratified-bootstrap CI over seeds, from the run's summary.json), beside the
preset's published numbers at the same budget and the peers run here where a harness exists
(``../shared/peers``: purejaxrl's ppo.py and dqn.py, rejax 0.1.3), with the same seeds count and budget.

CPU-sized default (2 cores: hours, not days): MinAtar (Breakout, SpaceInvaders, Asterix, Freeway) at 10⁶ env steps
× 5 seeds for PPO (gymnax-blines), DQN (our MinAtar default) and PQN (purejaxql); purejaxrl's ppo.py at
gymnax-blines's configuration beside PPO; CartPole-v1 and Acrobot-v1 at 5·10⁵ × 10 seeds for PPO (cleanrl), DQN
(cleanrl, and purejaxrl's layout beside purejaxrl's dqn.py), V-trace (our default) and PQN (rejax, 524,288 steps),
with purejaxrl and rejax beside them; Pendulum-v1
for PPO (rejax's config, 10⁶), SAC and TD3 (rejax, 10⁴), with rejax beside them; last, V-trace (our default) on
the four MinAtar games at 10⁶ × 5 seeds, the spectrum's fourth learner there. ``--full``: MinAtar at 10⁷ and
Brax ant / halfcheetah at Brax's own scale (preset brax: 2048 envs, 9.8·10⁶ steps, the published budget).

After the rows, the five-task spectrum comparison (CartPole, Acrobot, Breakout, SpaceInvaders, Asterix × PPO,
V-trace, PQN, DQN: the README's headline, all at 10⁶ env steps × 5 seeds) is ``jaxrl-policy report`` over those of
its twenty runs that have finished, into OUT/five-tasks, with its section of docs/references.md and
docs/references-five-tasks.png: on MinAtar the table's own runs, on classic control eight more at 10⁶ × 5 (group
``five``, run last, the table's configurations at that budget; not in the table, which has them at 5·10⁵ × 10).

Rows run in order (the fast ones first) and each one is skipped when its run folder already has a summary.json,
so an interrupted run continues; results.json, commands.txt and docs/references.md are rewritten after every
row, so nothing finished is lost. This file imports only the standard library at the top: ``_peer-*`` modes run
it under the peers' own Python.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
PEERS = (ROOT / ".." / "shared" / "peers").resolve()
DOC = ROOT / "docs" / "references.md"
MINATAR = ("Breakout-MinAtar", "SpaceInvaders-MinAtar", "Asterix-MinAtar", "Freeway-MinAtar")
CLASSIC = ("CartPole-v1", "Acrobot-v1")
# The five-task spectrum comparison (the README's headline; the tasks of experiments/headline.py): the table's own
# runs, on-policy to off-policy, reported together by ``jaxrl-policy report`` (nothing is run for it)
FIVE_TASKS = ("CartPole-v1", "Acrobot-v1", "Breakout-MinAtar", "SpaceInvaders-MinAtar", "Asterix-MinAtar")
SPECTRUM = ("ppo", "vtrace", "pqn", "dqn")
NAMES = {"ppo": "PPO", "vtrace": "V-trace", "pqn": "PQN", "dqn": "DQN"}

# gymnax-blines's MinAtar PPO (presets.GYMNAX_BLINES_MINATAR_PPO) in purejaxrl's ppo.py config keys
PUREJAXRL_GB = dict(LR=5e-4, NUM_ENVS=64, NUM_STEPS=128, UPDATE_EPOCHS=4, NUM_MINIBATCHES=8, GAMMA=0.999,
                    GAE_LAMBDA=0.95, CLIP_EPS=0.2, ENT_COEF=0.01, VF_COEF=0.5, MAX_GRAD_NORM=0.5, ACTIVATION="relu",
                    ANNEAL_LR=False)
# rejax's configs/gymnax/*.yaml where ../shared/peers/run_rejax.py has no built-in entry
REJAX_PPO_PENDULUM = dict(agent_kwargs=dict(activation="swish"), num_envs=100, num_steps=100, num_epochs=10,
                          num_minibatches=10, learning_rate=0.001, max_grad_norm=10, gamma=0.995, gae_lambda=0.95,
                          clip_eps=0.2, ent_coef=0.0, vf_coef=0.5, normalize_observations=True)
REJAX_PQN_CLASSIC = dict(num_envs=16, num_steps=128, num_minibatches=16, max_grad_norm=10, learning_rate=0.0003,
                         num_epochs=5, eps_start=1, eps_end=0.05, exploration_fraction=0.5, gamma=0.99,
                         td_lambda=0.9, normalize_observations=False)


class Peer(NamedTuple):
    name: str  # purejaxrl | rejax
    args: tuple[str, ...]  # the harness's arguments (after the script)
    metric: str  # "train": training-episode return at the end; "eval": the harness's final evaluation


class Row(NamedTuple):
    group: str
    algo: str
    env: str
    preset: str | None
    steps: int
    seeds: int
    flags: tuple[str, ...] = ()
    peers: tuple[Peer, ...] = ()
    tag: str = ""  # tells apart two rows of one (algo, env, preset): the five-task comparison's 10⁶ runs

    @property
    def key(self) -> str:
        return (f"{self.algo}-{self.env}" + (f"-{self.preset}" if self.preset else "")
                + (f"-{self.tag}" if self.tag else ""))


def rows(full: bool) -> list[Row]:
    """The table's rows, fastest first."""
    out: list[Row] = []
    if full:  # the accelerator form: MinAtar at 10⁷ (each source's own budget), Brax at its own scale
        for algo, preset in (("ppo", "gymnax-blines"), ("pqn", "purejaxql"), ("dqn", None)):
            # (DQN: our MinAtar default, a gradient step per 10 env steps; the MinAtar paper's one per env step,
            # --preset minatar, is 10⁷ sequential updates: latency-bound on a GPU, hours)
            for env in MINATAR:
                out.append(Row("minatar", algo, env, preset, 10_000_000, 10))
        for env in ("brax:ant", "brax:halfcheetah"):
            out.append(Row("brax", "ppo", env, "brax", 9_830_400, 5))
        return out
    n = 10
    for env in CLASSIC:
        steps = 500_000
        pj = ("--env", env, "--seeds", str(n), "--total-timesteps", str(steps), "--repeats", "1")
        out.append(Row("classic", "ppo", env, "cleanrl", steps, n, peers=(Peer("purejaxrl", ("--algo", "ppo", *pj),
                                                                            "train"),)))
        out.append(Row("classic", "dqn", env, "cleanrl", steps, n))
        out.append(Row("classic", "dqn", env, "purejaxrl", steps, n, peers=(Peer("purejaxrl", ("--algo", "dqn", *pj),
                                                                              "train"),)))
        out.append(Row("classic", "vtrace", env, None, steps, n))
        rj: tuple[str, ...] = ("--algo", "pqn", "--env", env, "--seeds", str(n), "--total-timesteps", "524288",
                               "--repeats", "1")
        if env != "CartPole-v1":  # run_rejax.py has rejax's CartPole PQN config built in; Acrobot's is the same
            rj += ("--config", json.dumps(REJAX_PQN_CLASSIC))
        out.append(Row("classic", "pqn", env, "rejax", 524_288, n, peers=(Peer("rejax", rj, "eval"),)))
    pend = ("--env", "Pendulum-v1", "--seeds", str(n), "--repeats", "1")
    out.append(Row("pendulum", "sac", "Pendulum-v1", "rejax", 10_000, n,
                   peers=(Peer("rejax", ("--algo", "sac", *pend, "--total-timesteps", "10000"), "eval"),)))
    out.append(Row("pendulum", "td3", "Pendulum-v1", "rejax", 10_000, n,
                   peers=(Peer("rejax", ("--algo", "td3", *pend, "--total-timesteps", "10000"), "eval"),)))
    out.append(Row("pendulum", "ppo", "Pendulum-v1", "rejax", 1_000_000, n,
                   peers=(Peer("rejax", ("--algo", "ppo", *pend, "--total-timesteps", "1000000", "--config",
                                         json.dumps(REJAX_PPO_PENDULUM)), "eval"),)))
    m = 5
    for env in MINATAR:
        out.append(Row("minatar", "ppo", env, "gymnax-blines", 1_000_000, m,
                       peers=(Peer("purejaxrl-gb", ("--env", env, "--seeds", str(m), "--total-timesteps", "1e6",
                                                    "--repeats", "1"), "train"),)))
    # PQN and DQN on seeds 100–104: Breakout's two rows are then experiments/pqn.py's fresh-seed confirmation
    # (the same configurations and seeds, run there by `compare`), not a second run of them
    fresh = ("--seed", "100")
    for env in MINATAR:
        out.append(Row("minatar", "pqn", env, "purejaxql", 1_000_000, m, flags=fresh))
    for env in MINATAR:
        out.append(Row("minatar", "dqn", env, None, 1_000_000, m, flags=fresh))
    for env in MINATAR:  # the spectrum's fourth learner on the same games (no published reference: our default)
        out.append(Row("spectrum", "vtrace", env, None, 1_000_000, m))
    # the five-task comparison at 10⁶ × 5 on classic control too (the classic rows above are at the published
    # 5·10⁵ × 10): every task at one budget and seed count, so no task weighs more in its aggregate; not in the
    # reference table (no published number at 10⁶)
    for env in CLASSIC:
        for algo, preset in (("ppo", "cleanrl"), ("vtrace", None), ("pqn", "rejax"), ("dqn", "cleanrl")):
            out.append(Row("five", algo, env, preset, 1_000_000, m, tag="1e6"))
    return out


def five_task_rows(rs: list[Row]) -> list[Row]:
    """The comparison's runs: per task of FIVE_TASKS and learner of SPECTRUM, its own 10⁶ row (group "five") where
    there is one, else the table's first row for it (MinAtar: the published configuration where one exists)."""
    out = []
    ranked = [r for r in rs if r.group == "five"] + [r for r in rs if r.group != "five"]
    for env in FIVE_TASKS:
        for algo in SPECTRUM:
            r = next((r for r in ranked if r.env == env and r.algo == algo), None)
            if r is not None:
                out.append(r)
    return out


def five_tasks(out: Path, log: Path, rs: list[Row], figures_to: Path | None) -> str:
    """Report the five-task comparison over the table's finished runs (``jaxrl-policy report``, into
    OUT/five-tasks) and return its Markdown section; runs not finished yet are named and shown as "not run" (the
    normalised aggregate then leaves out a learner that misses a task, as ``report`` does)."""
    every = five_task_rows(rs)
    want = [r for r in every if (out / r.key / "summary.json").exists()]
    missing = [r.key for r in every if r not in want]
    if not want:
        return f"Not reported yet: none of its {len(every)} runs has finished.\n"
    dest = out / "five-tasks"
    run_cli(["report", *[str(out / r.key) for r in want], "--out", str(dest)], log, stdout=subprocess.DEVNULL)
    rep = json.loads((dest / "report.json").read_text())
    summaries = {r.key: json.loads((out / r.key / "summary.json").read_text()) for r in want}
    if figures_to is not None:
        if (dest / "final_scores.png").exists():  # (the learning curves, returns.png, stay in OUT/five-tasks: 0.5 MB)
            (figures_to / "references-five-tasks.png").write_bytes((dest / "final_scores.png").read_bytes())
    md = five_tasks_md(rep, every, summaries, dest)
    return md + (f"\nNot run yet ({len(missing)} of {len(every)}; the script runs them when resumed): "
                 f"{', '.join(missing)}.\n" if missing else "")


def five_tasks_md(rep: dict[str, Any], every: list[Row], summaries: dict[str, Any], out_dir: Path) -> str:
    """The comparison's tables from report.json: final greedy evaluation per task × learner, then env steps to the
    report's threshold, AUC and wall time (IQM [95% CI] over seeds; the normalised aggregate over the tasks)."""
    cells = {(c["task"], c["algo"]): c for c in rep["cells"]}
    agg = {a["label"]: a for a in rep["aggregate"]}
    by = {(r.env, r.algo): r for r in every}
    by_key = {r.key: r for r in every}
    head = "| task | " + " | ".join(NAMES[a] for a in SPECTRUM) + " |\n|---|" + "--:|" * len(SPECTRUM) + "\n"

    def cfg(r: Row) -> str:
        return f"{r.preset or 'our default'} at {fmt_steps(r.steps)}"

    lines = [f"| {env} | " + " | ".join(fmt_est(cells[(env, a)]["final_eval_return"]) if (env, a) in cells
                                        else "not run" for a in SPECTRUM) + " |"
             for env in FIVE_TASKS]
    lines.append("| aggregate, normalised (0 random, 1 gymnax's PPO) | "
                 + " | ".join(fmt_est(agg[a]["final_eval_return"], 2) if a in agg else "—" for a in SPECTRUM) + " |")
    score = head + "\n".join(lines) + "\n"

    def steps(c: dict[str, Any] | None) -> str:  # report.json: [point, low, high], "inf" = not reached in the budget
        if c is None or c["steps_to_threshold_iqm"] is None:
            return "—"
        point = c["steps_to_threshold_iqm"][0]
        reached = sum(1 for v in c["steps_to_threshold"] if isinstance(v, (int, float)))
        mid = f"> {c['budget_env_steps']:,.0f}" if point == "inf" else f"{point:,.0f}"
        return f"{mid} ({reached}/{c['seeds']})"

    eff_head = ("| task (threshold) | " + " | ".join(NAMES[a] for a in SPECTRUM) + " |\n|---|"
                + "--:|" * len(SPECTRUM) + "\n")
    eff = [f"| {env} (≥ {fmt(rep['thresholds'].get(env))}) | "
           + " | ".join(steps(cells.get((env, a))) for a in SPECTRUM) + " |" for env in FIVE_TASKS]
    wall = ["| wall s of the runs above (seeds vmapped in each) | "
            + " | ".join(f"{sum(s.get('wall_s') or 0 for k, s in summaries.items() if by_key[k].algo == a):,.0f}"
                         for a in SPECTRUM) + " |"]

    def family(a: str, envs: tuple[str, ...]) -> str:
        return ", ".join(dict.fromkeys(cfg(by[(e, a)]) for e in envs))

    configs = "; ".join(f"{NAMES[a]}: {family(a, FIVE_TASKS[:2])} on classic control, {family(a, FIVE_TASKS[2:])} on "
                        "MinAtar" for a in SPECTRUM)
    seeds = sorted({r.seeds for r in every})
    return (f"Final greedy evaluation (IQM [95% CI] over {' or '.join(map(str, seeds))} seeds), each learner "
            f"at the table's configuration for it ({configs}):\n\n" + score
            + "\nEnv steps to the report's threshold (half-way from a random policy to gymnax's PPO checkpoint; IQM "
            "over seeds, runs that reached it / seeds) and the wall time of the runs as they ran (the rows shared the "
            "machine with other jobs to different degrees: a cost, not a speed comparison; speed is in "
            "[throughput](throughput.md)):\n\n"
            + eff_head + "\n".join(eff + wall) + "\n\n"
            f"`jaxrl-policy report` over these {len(summaries)} run folders, `--out {out_dir}` (the command is in "
            "commands.txt; its summary.md adds AUC, probability of improvement and performance profiles).\n")


def smoke(r: Row) -> Row:
    """``r`` at a tiny budget with 2 seeds (``--smoke``: the plumbing, not a result)."""
    def small(args: tuple[str, ...]) -> tuple[str, ...]:
        out = list(args)
        for i, x in enumerate(out[:-1]):
            if x == "--seeds":
                out[i + 1] = "2"
            if x == "--total-timesteps":
                out[i + 1] = str(int(float(out[i + 1]) // 50))
        return tuple(out)
    flags: tuple[str, ...] = ("--learning-starts", "1000") if r.algo in ("dqn", "sac", "td3") else ()
    if r.algo in ("dqn", "sac", "td3"):
        flags += ("--buffer-size", "5000") if r.algo == "dqn" else ()
    return r._replace(steps=max(r.steps // 50, 8192 if r.algo != "sac" and r.algo != "td3" else 2000), seeds=2,
                      flags=r.flags + flags, peers=tuple(pe._replace(args=small(pe.args)) for pe in r.peers))


# ---- running -----------------------------------------------------------------------------------
def log_line(log: Path, line: str) -> None:
    with log.open("a") as f:
        f.write(line + "\n")
    print(f"$ {line}", flush=True)


def train_command(r: Row, out: Path) -> list[str]:
    args = ["train", "--algo", r.algo, "--env", r.env]
    if r.preset:
        args += ["--preset", r.preset]
    return args + ["--seeds", str(r.seeds), "--total-timesteps", str(r.steps), "--checkpoint-every", "0",
                   "--quiet", "--overwrite", "--out", str(out), *r.flags]


def run_cli(args: list[str], log: Path, **kw: Any) -> None:
    """One ``jaxrl-policy`` command in a subprocess (this checkout's package first), logged in commands.txt."""
    log_line(log, "jaxrl-policy " + " ".join(shlex.quote(a) for a in args))
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    subprocess.run([sys.executable, "-m", "jaxrl_policy.cli", *args], check=True, env=env, **kw)


def run_ours(r: Row, out: Path, log: Path) -> dict[str, Any]:
    d = out / r.key
    if not (d / "summary.json").exists():
        run_cli(train_command(r, d), log)
    s = json.loads((d / "summary.json").read_text())
    return {"command": "jaxrl-policy " + " ".join(shlex.quote(a) for a in train_command(r, d)), "out": str(d),
            "eval": _estimate(s["final_eval_return"]), "train": _estimate(s["final_return"]),
            "wall_s": s.get("wall_s"), "compile_s": s.get("compile_s"), "env_steps_per_s": s.get("env_steps_per_s"),
            "env_steps": s.get("env_steps")}


def peer_python(name: str) -> str:
    arg = ["rejax"] if name == "rejax" else []
    return subprocess.run(["bash", str(PEERS / "venv.sh"), *arg], check=True, capture_output=True,
                          text=True).stdout.strip()


def run_peer(p: Peer, out: Path, log: Path) -> dict[str, Any]:
    f = out / "peers" / (p.name + "-" + "-".join(a.strip("-") for a in p.args if not a.startswith("{")) + ".json")
    if p.name == "purejaxrl-gb":
        script = [str(Path(__file__).resolve()), "_peer-purejaxrl-gb", *p.args]
    else:
        script = [str(PEERS / ("run_purejaxrl.py" if p.name == "purejaxrl" else "run_rejax.py")), *p.args]
    shown = " ".join(shlex.quote(a) for a in script).replace(str(PEERS), "../shared/peers").replace(str(ROOT) + "/", "")
    if not f.exists():
        py = peer_python("rejax" if p.name == "rejax" else "purejaxrl")
        log_line(log, f"PY={'$(../shared/peers/venv.sh rejax)' if p.name == 'rejax' else '$(../shared/peers/venv.sh)'}"
                      f" $PY {shown}")
        t0 = time.perf_counter()
        res = subprocess.run([py, *script], check=True, capture_output=True, text=True)
        line = [x for x in res.stdout.splitlines() if x.startswith("{")][-1]
        doc = json.loads(line)
        doc["wall_s"] = round(time.perf_counter() - t0, 1)
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(doc))
    doc = json.loads(f.read_text())
    scores = doc.get("final_return") if p.metric == "train" else doc.get("final_eval_return")
    return {"peer": "purejaxrl" if p.name.startswith("purejaxrl") else p.name, "metric": p.metric,
            "command": shown, "score": _estimate(scores), "env_steps_per_s": doc.get("env_steps_per_s"),
            "wall_s": doc.get("wall_s"), "raw": doc}


def _estimate(scores) -> dict[str, Any]:
    """IQM [95% CI] over seeds; a seed without a score (no episode ended in the last 5%) is None, left out."""
    from jaxrl_policy.results.stats import iqm_estimate
    e = iqm_estimate([float("nan") if v is None else v for v in scores])
    e["per_seed"] = [None if v != v else round(v, 3) for v in e["per_seed"]]
    return e


def published_for(r: Row) -> list[dict[str, Any]]:
    """The preset's published numbers for this row's env, nearest budget first (only those within 10%)."""
    if not r.preset:
        return []
    from jaxrl_policy.algorithms.presets import preset_entry
    e = preset_entry(r.preset, r.algo, r.env)
    pub = [p for p in e.published if p.env == r.env and abs(p.steps - r.steps) <= 0.1 * r.steps]
    return [{"value": p.value, "spread": p.spread, "steps": p.steps, "metric": p.metric, "measured": p.measured,
             "source": e.source} for p in pub]


# ---- the report ----------------------------------------------------------------------------------
def fmt(x: float | None, nd: int = 1) -> str:
    if x is None or x != x:
        return "—"
    s = f"{x:,.{nd}f}"
    return s.replace("-", "−")


def fmt_est(e: dict[str, Any] | None, nd: int = 1) -> str:
    if not e or e.get("n", 0) == 0:
        return "—"
    return f"{fmt(e['iqm'], nd)} [{fmt(e['ci'][0], nd)}, {fmt(e['ci'][1], nd)}]"


def fmt_steps(n: int) -> str:
    for v, s in ((10**7, "10⁷"), (10**6, "10⁶"), (5 * 10**5, "5·10⁵"), (10**4, "10⁴")):
        if n == v:
            return s
    return f"{n:,}"


def table(results: list[dict[str, Any]]) -> str:
    head = ("| task | algorithm (preset) | env steps × seeds | ours: greedy eval | ours: training return | "
            "published (same budget) | peer here, same budget |\n|---|---|---|--:|--:|---|---|\n")
    lines = []
    for res in results:
        pub = "; ".join(f"{fmt(p['value'])}" + (f" ± {fmt(p['spread'])}" if p["spread"] is not None else "")
                        + (" (measured here)" if p["measured"] else "") for p in res["published"]) or "—"
        peers = "; ".join(f"{p['peer']}: {fmt_est(p['score'])} "
                          f"({'training return' if p['metric'] == 'train' else 'its evaluation'})"
                          for p in res["peers"]) or "—"
        algo = res["algo"] + (f" ({res['preset']})" if res["preset"] else " (default)")
        lines.append(f"| {res['env']} | {algo} | {fmt_steps(res['steps'])} × {res['seeds']} | "
                     f"{fmt_est(res['ours']['eval'])} | {fmt_est(res['ours']['train'])} | {pub} | {peers} |")
    return head + "\n".join(lines) + "\n"


def commands_md(results: list[dict[str, Any]]) -> str:
    out = []
    for res in results:
        o = res["ours"]
        out.append(f"- {res['env']}, {res['algo']}: `{o['command']}` ({fmt(o['wall_s'], 0)} s, "
                   f"{fmt(o['env_steps_per_s'], 0)} env-steps/s over all seeds)")
        for p in res["peers"]:
            out.append(f"  - {p['peer']}: `$PY {p['command']}` ({fmt(p['wall_s'], 0)} s)")
    return "\n".join(out) + "\n"


def presets_md() -> str:
    from jaxrl_policy.algorithms.presets import PRESETS, Derived
    out = []
    for name, p in PRESETS.items():
        out.append(f"### `--preset {name}`\n\n{p.doc}\n")
        for e in p.entries:
            vals = e.values(e.envs[0].replace("*", "ant"))
            shown = ", ".join(f"{k}={v!r}" if not isinstance(v, Derived) else f"{k}={v.doc}" for k, v in vals.items())
            out.append(f"- **{e.algo}** on {', '.join(e.envs)} — source: {e.source}.")
            if callable(e.overrides):
                out.append(f"  Fields (for {e.envs[0].replace('*', 'ant')}; they depend on the env): {shown}.")
            else:
                out.append(f"  Fields: {shown}.")
            for q in e.published:
                out.append(f"  {'Measured here' if q.measured else 'Published'}: {q.env} at {q.steps:,} env steps: "
                           f"{fmt(q.value)}" + (f" ± {fmt(q.spread)}" if q.spread is not None else "")
                           + f" ({q.metric}).")
            if e.differences:
                out.append(f"  Differences: {e.differences}")
        out.append("")
    return "\n".join(out)


def replace_section(text: str, name: str, body: str) -> str:
    start, end = f"<!-- references:{name} -->", f"<!-- /references:{name} -->"
    if start not in text:
        return text + f"\n{start}\n{body}{end}\n"
    a, rest = text.split(start, 1)
    _, b = rest.split(end, 1)
    return f"{a}{start}\n{body}{end}{b}"


def wall_of(results: list[dict[str, Any]]) -> float:
    """The rows' run time: each run's own wall_s (an invocation's clock would miss rows run by another one)."""
    return sum((r["ours"].get("wall_s") or 0) + sum(p.get("wall_s") or 0 for p in r["peers"]) for r in results)


def write_docs(doc: dict[str, Any], out_doc: Path) -> None:
    text = out_doc.read_text() if out_doc.exists() else "# References: our results beside published ones\n"
    m = doc["machine"]
    shown = [r for r in doc["rows"] if r["group"] != "five"]  # the five-task comparison's own runs: its section
    first, last = doc.get("first_date", doc["date"])[:10], doc["date"][:10]
    when = (f"Run {first if first == last else first + ' to ' + last} on {m.get('cpu', '?')} "
            f"({m.get('cores', '?')} cores, {m.get('backend')}), jax {m.get('jax_version')}, over several resumed "
            "invocations of the script (each row's command is under [Commands](#commands), every command it ran in "
            f"commands.txt; the last invocation: `{doc['command']}`); {len(shown)} rows"
            + (f" and the five-task comparison's {len(doc['rows']) - len(shown)} runs at 10⁶ (below)"
               if len(shown) < len(doc["rows"]) else "")
            + f", {fmt(wall_of(doc['rows']), 0)} s of runs in all (ours and the peers', as they ran).\n\n")
    text = replace_section(text, "table", when + table(shown))
    text = replace_section(text, "commands", commands_md(doc["rows"]))
    text = replace_section(text, "presets", presets_md())
    out_doc.write_text(text)


# ---- the peer modes (run under the peer's Python) -------------------------------------------------
def peer_purejaxrl_gb(argv: list[str]) -> None:
    """purejaxrl's ppo.py (../shared/peers/run_purejaxrl.py, unmodified) at gymnax-blines's MinAtar configuration:
    its config dict set to those numbers and its ActorCritic widened to 2 × 256 (its own layout: separate actor and
    critic MLPs, orthogonal initialisation); prints run_purejaxrl's JSON line."""
    sys.path.insert(0, str(PEERS))
    sys.argv = ["run_purejaxrl.py", "--algo", "ppo", *argv]
    import run_purejaxrl  # noqa: I001  (shims gymnax; puts purejaxrl/ on sys.path)
    import flax.linen as nn
    import jax.numpy as jnp
    import numpy as np
    import ppo  # purejaxrl's ppo.py
    from flax.linen.initializers import constant, orthogonal

    run_purejaxrl.PPO.update(PUREJAXRL_GB)
    Categorical = ppo.distrax.Categorical

    class ActorCritic256(nn.Module):
        action_dim: int
        activation: str = "relu"

        @nn.compact
        def __call__(self, x):
            act = nn.relu if self.activation == "relu" else nn.tanh

            def mlp(h):
                for _ in range(2):
                    h = act(nn.Dense(256, kernel_init=orthogonal(np.sqrt(2)), bias_init=constant(0.0))(h))
                return h
            logits = nn.Dense(self.action_dim, kernel_init=orthogonal(0.01), bias_init=constant(0.0))(mlp(x))
            value = nn.Dense(1, kernel_init=orthogonal(1.0), bias_init=constant(0.0))(mlp(x))
            return Categorical(logits=logits), jnp.squeeze(value, axis=-1)

    ppo.ActorCritic = ActorCritic256
    run_purejaxrl.main()


# ---- speed (item 5): our PPO beside purejaxrl's ppo.py at gymnax-blines's configuration ------------
def speed(a: argparse.Namespace) -> None:
    from jaxrl_policy.io.metadata import run_metadata
    out = a.speed_out or ROOT / "benchmarks" / "results" / f"minatar-speed-cpu-{_dt.date.today()}.json"
    rounds: list[dict[str, Any]] = []
    py = peer_python("purejaxrl")
    for i in range(a.speed_rounds):
        for env in a.speed_envs:
            tmp = Path(f"/tmp/references-speed-{os.getpid()}.json")
            ours = [sys.executable, "-m", "jaxrl_policy.cli", "bench", "--algos", "ppo", "--env", env, "--preset",
                    "gymnax-blines", "--seeds", str(a.speed_seeds), "--total-timesteps", str(a.speed_steps),
                    "--repeats", "2", "--ceiling-steps", "16384", "--raw-steps", "65536", "--eval-episodes", "0",
                    "--out", str(tmp)]
            env_vars = {**os.environ, "PYTHONPATH": str(ROOT)}
            subprocess.run(ours, check=True, env=env_vars, capture_output=True, text=True)
            r = json.loads(tmp.read_text())["results"][0]
            peer = [py, str(Path(__file__).resolve()), "_peer-purejaxrl-gb", "--env", env, "--seeds",
                    str(a.speed_seeds), "--total-timesteps", str(a.speed_steps), "--repeats", "2"]
            res = subprocess.run(peer, check=True, capture_output=True, text=True)
            p = json.loads([x for x in res.stdout.splitlines() if x.startswith("{")][-1])
            rounds.append({"round": i, "env": env, "seeds": a.speed_seeds, "total_timesteps": a.speed_steps,
                           "ours_env_steps_per_s": r["train_env_steps_per_s_max"], "ours_compile_s": r["compile_s"],
                           "purejaxrl_env_steps_per_s": p["env_steps_per_s"], "purejaxrl_compile_s": p["compile_s"],
                           "ratio": round(r["train_env_steps_per_s_max"] / p["env_steps_per_s"], 3)})
            print(json.dumps(rounds[-1]), flush=True)
    best: dict[str, Any] = {}
    for env in a.speed_envs:
        rs = [x for x in rounds if x["env"] == env]
        o, p = max(x["ours_env_steps_per_s"] for x in rs), max(x["purejaxrl_env_steps_per_s"] for x in rs)
        best[env] = {"ours": o, "purejaxrl": p, "ratio": round(o / p, 3)}
    doc = {"machine": run_metadata(), "date": _dt.datetime.now().isoformat(timespec="seconds"),
           "command": "python experiments/references.py --speed " + " ".join(shlex.quote(x) for x in a.argv),
           "what": "PPO at gymnax-blines's MinAtar configuration (64 envs × 128 steps, 4 epochs × 8 minibatches, "
                   "2 × 256 MLP), training only (no evaluation), compile excluded, best of 2 runs per round; ours "
                   "via jaxrl-policy bench --preset gymnax-blines, purejaxrl's ppo.py via run_purejaxrl.py with its "
                   "config set to the same numbers and its network widened to 2 × 256; rounds interleaved",
           "rounds": rounds, "best": best}
    Path(out).write_text(json.dumps(doc, indent=1))
    print(json.dumps(best))
    print(f"wrote {out}")


# ---- main ----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "_peer-purejaxrl-gb":
        return peer_purejaxrl_gb(argv[1:])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("runs/references"))
    p.add_argument("--full", action="store_true", help="the accelerator form: MinAtar 10⁷, Brax at its own scale")
    p.add_argument("--only", nargs="+", default=None, help="groups (classic, pendulum, minatar, brax) or algorithms")
    p.add_argument("--algos", nargs="+", default=None, help="of those rows, only these algorithms")
    p.add_argument("--envs", nargs="+", default=None, help="of those rows, only these envs")
    p.add_argument("--no-peers", action="store_true", help="our rows only")
    p.add_argument("--docs-only", action="store_true", help="rewrite docs/references.md from OUT/results.json")
    p.add_argument("--doc", type=Path, default=DOC)
    p.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--speed", action="store_true", help="MinAtar env-steps/s beside purejaxrl's ppo.py (item 5)")
    p.add_argument("--speed-envs", nargs="+", default=["Breakout-MinAtar"])
    p.add_argument("--speed-seeds", type=int, default=1)
    p.add_argument("--speed-steps", type=int, default=262_144)
    p.add_argument("--speed-rounds", type=int, default=2)
    p.add_argument("--speed-out", type=Path, default=None)
    a = p.parse_args(argv)
    a.argv = argv
    if a.speed:
        return speed(a)
    a.out.mkdir(parents=True, exist_ok=True)
    res_file, log = a.out / "results.json", a.out / "commands.txt"
    if a.docs_only:
        write_docs(json.loads(res_file.read_text()), a.doc)
        write_five(a, log)
        print(f"wrote {a.doc}")
        return
    from jaxrl_policy.io.metadata import run_metadata
    todo = [r for r in rows(a.full) if (a.only is None or r.group in a.only or r.algo in a.only)
            and (a.algos is None or r.algo in a.algos) and (a.envs is None or r.env in a.envs)]
    if a.smoke:  # the script's own plumbing, in minutes: tiny budgets, 2 seeds (not a result)
        todo = [smoke(r) for r in todo]
    header = dict(machine=run_metadata(), date=_dt.datetime.now().isoformat(timespec="seconds"),
                  command="python experiments/references.py " + " ".join(shlex.quote(x) for x in argv))
    order = {x.key: i for i, x in enumerate(rows(a.full))}
    t0 = time.perf_counter()
    for r in todo:  # (a finished run or peer is read back, not rerun: run_ours and run_peer keep their files)
        t = time.perf_counter()
        try:
            ours = run_ours(r, a.out, log)
        except subprocess.CalledProcessError as e:  # reported; the other rows still run
            print(f"  {r.key}: failed (exit {e.returncode}); see the output above", file=sys.stderr, flush=True)
            continue
        peers = []
        if not a.no_peers:
            for pe in r.peers:
                try:
                    peers.append(run_peer(pe, a.out, log))
                except subprocess.CalledProcessError as e:  # a peer that fails is reported, not fatal
                    print(f"peer {pe.name} failed: {(e.stderr or '')[-2000:]}", file=sys.stderr)
        entry = {"key": r.key, "group": r.group, "algo": r.algo, "env": r.env, "preset": r.preset, "steps": r.steps,
                 "seeds": r.seeds, "ours": ours, "peers": peers, "published": published_for(r)}
        with locked(res_file):  # the doc is written from the merged results, under the same lock
            write_docs(merge_row(res_file, entry, header, time.perf_counter() - t, order), a.doc)
        print(f"  {r.key}: eval {fmt_est(ours['eval'])}, train {fmt_est(ours['train'])} "
              f"({time.perf_counter() - t:.0f}s)", flush=True)
    write_five(a, log)
    print(f"wrote {res_file}, {log}, {a.doc} ({time.perf_counter() - t0:.0f}s)")


@contextlib.contextmanager
def locked(res_file: Path) -> Iterator[None]:
    """An exclusive lock beside results.json (``results.json.lock``), held while a row is merged and the doc
    rewritten: two invocations side by side (two rows at a time on 2 cores) then keep each other's rows."""
    import fcntl  # POSIX; imported here so that the _peer-* modes need nothing more than they do
    with open(res_file.with_name(res_file.name + ".lock"), "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lk, fcntl.LOCK_UN)


def merge_row(res_file: Path, entry: dict[str, Any], header: dict[str, Any], dt: float,
              order: dict[str, int]) -> dict[str, Any]:
    """Re-read results.json, put ``entry`` in (replacing its key), write it back whole (temporary file, then an
    atomic rename, so a crash never leaves half a file). Call it under ``locked``: the file is read here, not
    kept from the start of the invocation, so a row another invocation finished in the meantime stays."""
    doc: dict[str, Any] = json.loads(res_file.read_text()) if res_file.exists() else {"rows": []}
    doc.setdefault("first_date", doc.get("date", header["date"]))  # the table is built over several invocations
    doc.update(header)
    doc["rows"] = sorted([x for x in doc["rows"] if x["key"] != entry["key"]] + [entry],
                         key=lambda x: order.get(x["key"], 1 << 30))
    doc["wall_s"] = round((doc.get("wall_s") or 0) + dt, 1)
    tmp = res_file.with_name(f"{res_file.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, res_file)
    return doc


def write_five(a: argparse.Namespace, log: Path) -> None:
    """The five-task comparison's section of the doc (CPU-sized table only: ``--full`` has no classic rows)."""
    if a.full:
        return
    rs = [smoke(r) for r in rows(False)] if a.smoke else rows(False)
    with locked(a.out / "results.json"):  # one report into OUT/five-tasks at a time
        md = five_tasks(a.out, log, rs, None if a.smoke else a.doc.parent)
        a.doc.write_text(replace_section(a.doc.read_text(), "five", md))


if __name__ == "__main__":
    main()
