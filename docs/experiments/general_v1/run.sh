#!/bin/bash
# The general instance set, v1 (anchored actions; the set is v2 now: run this at the
# commit that made docs/results/general-v1): the baselines' comparison on its test split (the tuning
# phase is the set's landscape), then one DQN trained across its train split, then the
# same comparison with the policy added (the finished episodes are not run again).
# Each step continues where an interrupted one stopped.
cd "$(dirname "$0")/../../.."
set -e
python examples/compare_schedules.py --instances general:test --workers 2 \
  --seeds 1000 1001 1002 --tune-seeds 0 1 --peaks 0.05 0.1 0.2 0.4 0.8 1.6 3.2 \
  --output docs/results/general-v1
python agents/sb3_dqn.py --instances general --output runs/sb3_dqn/general-seed0 --resume
python examples/compare_schedules.py --run runs/sb3_dqn/general-seed0 --instances general:test \
  --workers 2 --seeds 1000 1001 1002 --tune-seeds 0 1 --peaks 0.05 0.1 0.2 0.4 0.8 1.6 3.2 \
  --output docs/results/general-v1
