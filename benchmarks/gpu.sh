#!/usr/bin/env bash
# Everything GPU-worth in one call (15 device-minutes are all a session gets): run it through the
# device tool as one command with a 540 s limit, which leaves time for one rerun.
#
# Before the call, on the CPU machine, in the repo root (the device image has jax/flax/optax/chex/
# orbax but not gymnax, tyro or distrax; its Python is 3.12):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#       -d .whl gymnax==1.0.1 tyro docstring-parser typeguard shtab distrax tensorflow-probability dm-tree six
# Device call (carry .whl):
#   bash benchmarks/gpu.sh
# The reference table's accelerator form is its own call (`bash benchmarks/gpu.sh references [GROUP…]`, below):
# it does not fit beside the rest.
# Writes $OUT/gpu-*.json and $OUT/gpu.log (the device tool brings $OUT back). Every number there is
# from this one machine: compare only within it. Sections run shortest-first so that a run that hits
# its limit still leaves the most important rows; each section writes its own JSON.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site:$PWD || exit 1
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1
log="$OUT/gpu.log"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$log"
python3 -c 'import jax; print(jax.__version__, jax.devices())' 2>&1 | tee -a "$log"
PEERS=""
[ -d shared/peers ] && PEERS="--peers shared/peers --peer-python python3"
run() {  # name, limit seconds, command...
  local name=$1 limit=$2; shift 2
  echo "== $name ($(date +%T))" | tee -a "$log"
  timeout "$limit" "$@" 2>&1 | tee -a "$log"
}
if [ "${1:-}" = references ]; then
  # experiments/references.py --full: MinAtar at 10⁷ env steps × 10 seeds (PPO --preset gymnax-blines, PQN
  # --preset purejaxql, DQN's MinAtar default) and Brax ant / halfcheetah with --preset brax (2048 envs, 9.8·10⁶
  # steps, the budget of Brax's published sweep) × 5 seeds; run folders, results.json and the table in $OUT.
  # Expected time, not measured (no device has run it): PPO's four games ~1 min each on one H100/H200 (its
  # CartPole PPO ran ~1M env-steps/s at 64 envs on an H200; 10 seeds vmapped), PQN ~2 min, DQN ~3-4 min (10⁶
  # sequential iterations), Brax ~2 min each (needs brax's wheels in .whl too: brax==0.14.2 mujoco mujoco-mjx
  # trimesh jaxopt), ~25-35 min in all: more than one call, so run it a group at a time, each under 540 s:
  #   bash benchmarks/gpu.sh references ppo      # MinAtar PPO (4 games), then the Brax rows
  #   bash benchmarks/gpu.sh references pqn      # MinAtar PQN
  #   bash benchmarks/gpu.sh references dqn      # MinAtar DQN
  # Every finished row is kept (carry the run folder back in with $OUT to continue).
  shift
  run references 530 python3 experiments/references.py --full --no-peers --only "${@:-ppo}" \
      --out "$OUT/references-full" --doc "$OUT/references-full.md"
  echo "== done ($(date +%T))" | tee -a "$log"
  exit 0
fi
# 1. PPO on CartPole at 4 … 16384 envs beside purejaxrl's ppo.py (speed target: >= 1.0x at every size)
run ppo-cartpole 200 python3 benchmarks/throughput.py --algos ppo --num-envs 4 1024 4096 16384 \
    --total-timesteps 2000000 --repeats 2 --no-ppo-equal $PEERS --out "$OUT/gpu-ppo.json"
# 2. DQN beside purejaxrl's dqn.py (target >= 1.0x on GPU) and V-trace at 64 / 1024 envs + PPO-equal
run dqn-vtrace 150 python3 benchmarks/throughput.py --algos dqn vtrace --num-envs 10 64 1024 \
    --repeats 2 $PEERS --out "$OUT/gpu-dqn-vtrace.json"
# 3. PPO on Breakout-MinAtar at 2048 envs (CNN torso)
run ppo-minatar 100 python3 benchmarks/throughput.py --algos ppo --env Breakout-MinAtar --num-envs 2048 \
    --total-timesteps 5000000 --repeats 2 $PEERS --out "$OUT/gpu-minatar.json"
# 4. what --deterministic costs (PPO, 1024 envs): the same run with XLA's deterministic GPU ops
run deterministic 60 env XLA_FLAGS="--xla_gpu_deterministic_ops=true" python3 benchmarks/throughput.py --algos ppo \
    --num-envs 1024 --total-timesteps 2000000 --repeats 2 --out "$OUT/gpu-deterministic.json"
echo "== done ($(date +%T))" | tee -a "$log"
