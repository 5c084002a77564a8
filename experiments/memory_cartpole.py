"""Recurrent vs feed-forward PPO on velocity-hidden CartPole (CartPole-v1-NoVelocity).

The wrapper (``envs/wrappers.py``) keeps the cart position and pole angle and hides both
velocities, so one observation does not determine the state: a feed-forward policy has to act on
position and angle alone, a GRU policy can infer the velocities from consecutive observations.
Both runs use the same budget, seeds, rollout (``--num-envs`` × 128 steps), optimiser and PPO settings
(purejaxrl's CartPole defaults otherwise; the GRU replays whole unrolls, ``num_envs / 4`` envs per minibatch).

    python experiments/memory_cartpole.py --seeds 4 --num-envs 16 --learning-rate 5e-4 --total-timesteps 1000000

(the defaults; docs/continuous-recurrent.md: every GRU seed above every MLP seed, ~35 min on a shared 2-core CPU)

writes ``<out>/mlp`` and ``<out>/gru`` (run folders) and ``<out>/report`` (summary.md, figures).
"""
import argparse
import json
from pathlib import Path

from jaxrl_policy import default_config, use_cpu_speedups
from jaxrl_policy.results.report import report_runs
from jaxrl_policy.running.runner import run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--total-timesteps", type=int, default=1_000_000)
    p.add_argument("--rnn-size", type=int, default=64)
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--learning-rate", type=float, default=5e-4)
    p.add_argument("--out", default="runs/memory-cartpole")
    a = p.parse_args()
    use_cpu_speedups()
    out = Path(a.out)
    dirs = []
    for torso in ("mlp", "gru"):
        cfg = default_config("ppo", "CartPole-v1-NoVelocity", torso=torso, rnn_size=a.rnn_size,
                             num_envs=a.num_envs, learning_rate=a.learning_rate, total_timesteps=a.total_timesteps)
        s = run(cfg, a.seeds, out / torso, checkpoint_every_s=None, overwrite=True)
        print(json.dumps({"torso": torso, "final_eval_return": s.get("final_eval_return"),
                          "final_eval_return_iqm": s.get("final_eval_return_iqm"),
                          "final_eval_return_ci": s.get("final_eval_return_ci"), "wall_s": s.get("wall_s")}))
        dirs.append(out / torso)
    res = report_runs(dirs, out / "report", title=f"CartPole-v1-NoVelocity: PPO mlp vs gru ({a.seeds} seeds)")
    print(res["markdown"])


if __name__ == "__main__":
    main()
