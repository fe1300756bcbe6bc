#!/bin/bash
# The ensemble trial on the general set, v5 (docs/agent_design.md, "Two training runs as one
# policy"): a second run of the shipped policy's command, seed 20 (the shipped run is seed
# 10; the tuning seeds 0-2 are left to the tuning), joined with the shipped run into one
# policy acting on the mean of the two runs' Q-values; then its comparison on the test split
# on all ten held-out seeds beside the shipped policy's (the same tuning, baseline and
# random-policy episodes, taken from docs/results/general). Every step continues where an
# interrupted one stopped.
cd "$(dirname "$0")/../../.."
set -e
mkdir -p runs/sb3_dqn
python agents/sb3_dqn.py --instances general --seed 20 --output runs/sb3_dqn/general-seed20 --resume
[ -f runs/sb3_dqn/general-ensemble/ensemble.json ] || python agents/sb3_dqn.py --ensemble \
  agents/pretrained/general runs/sb3_dqn/general-seed20 --output runs/sb3_dqn/general-ensemble
python examples/compare_schedules.py --run runs/sb3_dqn/general-ensemble --instances general:test \
  --workers 2 --seeds 1000 1001 1002 1003 1004 1005 1006 1007 1008 1009 --tune-seeds 0 1 \
  --peaks 0.05 0.1 0.2 0.4 0.8 1.6 3.2 --output docs/results/general-ensemble \
  --baselines-from docs/results/general
