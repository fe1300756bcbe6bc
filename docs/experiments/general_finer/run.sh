#!/bin/bash
# A trial on the general instance set (v4): relative actions that multiply the multiplier by
# 1/sqrt(2), 1 or sqrt(2) instead of 1/2, 1 or 2, within the same bounds (1 to 2 times the
# tuned-once peak). v4's greedy policy holds the multiplier at 1 or 2 and turns back 2.45
# times a test episode; its open-loop replay, whose mean curve sits between the two levels
# (quartiles 1.4, 1.7, 1.9: reversals.py, reversals_v4.json), beats it (0.42), most of all
# at momentum 0.9, where an early jump to 2 and back costs the run. Finer steps give the
# policy the levels between and smaller jumps.
# Then its comparison on the test split on all ten held-out seeds, beside the baselines'
# ten-seed episodes. SEED (default 10) is the training run's seed; each step continues
# where an interrupted one stopped. Since v5 this option is the general set's, and seed 10's
# run is the shipped policy: its comparison was moved to docs/results/general
# (docs/experiments/general/run.sh).
cd "$(dirname "$0")/../../.."
set -e
seed="${SEED:-10}"
run="runs/sb3_dqn/general-finer-seed$seed"
python agents/sb3_dqn.py --instances general --seed "$seed" \
  --env 'scale_factors=[0.7071067811865476,1,1.4142135623730951]' --output "$run" --resume
python examples/compare_schedules.py --run "$run" --instances general:test --workers 2 \
  --seeds 1000 1001 1002 1003 1004 1005 1006 1007 1008 1009 --tune-seeds 0 1 \
  --peaks 0.05 0.1 0.2 0.4 0.8 1.6 3.2 --output "docs/results/general-finer-seed$seed" \
  --baselines-from docs/results/general-baselines
