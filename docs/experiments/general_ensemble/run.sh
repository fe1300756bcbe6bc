#!/bin/bash
# The ensemble trial on the general set (docs/agent_design.md, "Several training runs as one
# policy"): two more runs of the shipped policy's command, seeds 20 and 30 (the shipped run
# is seed 10; the tuning seeds 0-2 are left to the tuning), side by side at one torch
# thread each (together they train faster than one after the other on 2 cores), joined
# with the shipped run into one policy acting on the mean of the three runs' Q-values; then
# its comparison on the test split beside the shipped policy's (the same tuning, baseline
# and random-policy episodes, seeds 1000-1002). Every step continues where an interrupted
# one stopped.
cd "$(dirname "$0")/../../.."
set -e
export OMP_NUM_THREADS=1
mkdir -p runs/sb3_dqn
for seed in 20 30; do
  [ -f "runs/sb3_dqn/general-seed$seed/summary.json" ] && continue
  python agents/sb3_dqn.py --instances general --seed "$seed" \
    --output "runs/sb3_dqn/general-seed$seed" --resume > "runs/sb3_dqn/general-seed$seed.log" 2>&1 &
done
wait
for seed in 20 30; do
  [ -f "runs/sb3_dqn/general-seed$seed/summary.json" ] || { echo "seed $seed did not finish"; exit 1; }
done
[ -f runs/sb3_dqn/general-ensemble/ensemble.json ] || python agents/sb3_dqn.py --ensemble \
  agents/pretrained/general runs/sb3_dqn/general-seed20 runs/sb3_dqn/general-seed30 \
  --output runs/sb3_dqn/general-ensemble
python examples/compare_schedules.py --run runs/sb3_dqn/general-ensemble --instances general:test \
  --workers 2 --seeds 1000 1001 1002 --tune-seeds 0 1 --peaks 0.05 0.1 0.2 0.4 0.8 1.6 3.2 \
  --output docs/results/general-ensemble --baselines-from docs/results/general
