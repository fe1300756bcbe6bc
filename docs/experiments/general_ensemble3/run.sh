#!/bin/bash
# A third run in the ensemble on v5 (docs/agent_design.md, "Three training runs as one
# policy"): the shipped policy's command on seed 30, joined with the shipped run (seed 10)
# and the second run of docs/experiments/general_ensemble/run.sh (seed 20, whose run folder
# this needs) into one policy acting on the mean of the three runs' Q-values; then its
# comparison on the test split on all ten held-out seeds beside the shipped policy's (the
# same tuning, baseline and random-policy episodes, taken from docs/results/general). Every
# step continues where an interrupted one stopped.
cd "$(dirname "$0")/../../.."
set -e
mkdir -p runs/sb3_dqn
python agents/sb3_dqn.py --instances general --seed 30 --output runs/sb3_dqn/general-seed30 --resume
[ -f runs/sb3_dqn/general-ensemble3/ensemble.json ] || python agents/sb3_dqn.py --ensemble \
  agents/pretrained/general runs/sb3_dqn/general-seed20 runs/sb3_dqn/general-seed30 \
  --output runs/sb3_dqn/general-ensemble3
python examples/compare_schedules.py --run runs/sb3_dqn/general-ensemble3 --instances general:test \
  --workers 2 --seeds 1000 1001 1002 1003 1004 1005 1006 1007 1008 1009 --tune-seeds 0 1 \
  --peaks 0.05 0.1 0.2 0.4 0.8 1.6 3.2 --output docs/results/general-ensemble3 \
  --baselines-from docs/results/general
