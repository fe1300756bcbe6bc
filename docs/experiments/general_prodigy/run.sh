#!/bin/bash
# A general policy that drives Prodigy (docs/agent_design.md, "A schedule over Prodigy"):
# v5's relative actions and MDP across the general set's train split, but the run's
# optimizer is Prodigy and the actions move the multiplier of its cosine (its lr, the factor
# on the step size it estimates) from 1 to 4, starting at 2, the range where the
# Prodigy-multiplier probe found each train run's best (docs/experiments/prodigy_multiplier,
# general.json). SGD's momentum does not enter a Prodigy run, so the optimizer is not
# observed. 400 episodes on seed 10, then its comparison on the test split on the held-out
# seeds 1000-1002 (the other seven follow only if it passes its rule there) beside the tuning
# and baselines of docs/results/general-baselines. The comparison judges the trained model
# as committed in docs/experiments/general_prodigy/seed10 (a copy of the run's model,
# config and normalization), so that it reruns on a clone without runs/. Each step continues
# where an interrupted one stopped.
cd "$(dirname "$0")/../../.."
set -e
python agents/sb3_dqn.py --instances general --seed 10 --output runs/sb3_dqn/general-prodigy-seed10 \
  --env optimizer=prodigy --env anchor_lr=2 --env anchor_factors=0.5,2 \
  --env observe_optimizer=False --resume
python examples/compare_schedules.py --run docs/experiments/general_prodigy/seed10 \
  --instances general:test --workers 2 --tune-seeds 0 1 \
  --seeds 1000 1001 1002 \
  --peaks 0.05 0.1 0.2 0.4 0.8 1.6 3.2 --output docs/results/general-prodigy \
  --baselines-from docs/results/general-baselines
