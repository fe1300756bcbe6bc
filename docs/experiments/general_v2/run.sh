#!/bin/bash
# The general instance set, v2 (relative actions): one DQN trained across its train split
# (the agent's default of 400 episodes: the policy in agents/pretrained/general; with
# --episodes 200 it is the policy of docs/results/general-200-episodes), then its comparison
# on the test split. The tuning and the baselines are those of docs/results/general-baselines
# (docs/experiments/general_baselines/run.sh): the same training runs, which no action set
# shapes (--baselines-from checks that the envs differ in what a policy sees and does only).
# Each step continues where an interrupted one stopped.
cd "$(dirname "$0")/../../.."
set -e
python agents/sb3_dqn.py --instances general --output runs/sb3_dqn/general-seed0 --resume
python examples/compare_schedules.py --run runs/sb3_dqn/general-seed0 --instances general:test \
  --workers 2 --seeds 1000 1001 1002 --tune-seeds 0 1 --peaks 0.05 0.1 0.2 0.4 0.8 1.6 3.2 \
  --output docs/results/general --baselines-from docs/results/general-baselines
