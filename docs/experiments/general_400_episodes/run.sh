#!/bin/bash
# A trial on the general instance set (v2, then shipped at 200 episodes) with twice the
# episodes: 400 (about 13 a train instance instead of 7), so that each action's value on a
# run is estimated from twice the returns. The tuning and the baselines are the episodes of
# docs/results/general.
cd "$(dirname "$0")/../../.."
set -e
python agents/sb3_dqn.py --instances general --episodes 400 \
  --output runs/sb3_dqn/general5-seed0 --resume
python examples/compare_schedules.py --run runs/sb3_dqn/general5-seed0 --instances general:test \
  --workers 2 --seeds 1000 1001 1002 --tune-seeds 0 1 --peaks 0.05 0.1 0.2 0.4 0.8 1.6 3.2 \
  --output docs/results/general-400-episodes --baselines-from docs/results/general
