#!/usr/bin/env bash
# The README's results table: PPO vs DQN vs V-trace on CartPole-v1, 8 seeds, 5e5 env steps each,
# same loop, same seeds, same budget. Writes runs/cartpole-compare/{summary.json,summary.md,returns.png}.
set -euo pipefail
jaxrl-policy compare --algos ppo dqn vtrace --env CartPole-v1 --seeds 8 --total-timesteps 500000 \
  --out "${1:-runs/cartpole-compare}"
