#!/bin/bash
# The general instance set, v5 (relative actions in steps of sqrt(2) from once to twice the
# tuned-once peak, the optimizer observed): one DQN trained across its train split for the
# agent's default of 400 episodes on seed 10 (the policy in agents/pretrained/general), then
# its comparison on the test split on all ten held-out seeds. The tuning and the baselines
# are those of docs/results/general-baselines (docs/experiments/general_baselines/run.sh):
# the same training runs, which no action set shapes (--baselines-from checks that the envs
# differ in what a policy sees and does only). Each step continues where an interrupted one
# stopped.
cd "$(dirname "$0")/../../.."
set -e
python agents/sb3_dqn.py --instances general --seed 10 --output runs/sb3_dqn/general-seed10 --resume
python examples/compare_schedules.py --run runs/sb3_dqn/general-seed10 --instances general:test \
  --workers 2 --seeds 1000 1001 1002 1003 1004 1005 1006 1007 1008 1009 --tune-seeds 0 1 \
  --peaks 0.05 0.1 0.2 0.4 0.8 1.6 3.2 --output docs/results/general \
  --baselines-from docs/results/general-baselines
