#!/bin/bash
# A trial on the general instance set (v2): the policy also observes the step's lr and SGD's
# effective step lr / (1 - momentum), logged (observe_optimizer), so that it can tell runs of
# different momenta apart and place each on the absolute scale; otherwise v2 as shipped. The
# tuning and the baselines are the episodes of docs/results/general (the same training runs,
# which no observation shapes).
cd "$(dirname "$0")/../../.."
set -e
python agents/sb3_dqn.py --instances general --env observe_optimizer=True \
  --output runs/sb3_dqn/general4-seed0 --resume
python examples/compare_schedules.py --run runs/sb3_dqn/general4-seed0 --instances general:test \
  --workers 2 --seeds 1000 1001 1002 --tune-seeds 0 1 --peaks 0.05 0.1 0.2 0.4 0.8 1.6 3.2 \
  --output docs/results/general-observe-optimizer --baselines-from docs/results/general
