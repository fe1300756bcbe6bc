#!/bin/bash
# The noisy set's tuning and baselines on all ten held-out seeds (1000-1009): the cosine at
# each instance's guess, the cosine tuned once on the train split, the oracle tuned per test
# instance on tuning seeds 0 and 1, the tuning-free optimizers, ReduceLROnPlateau: 1,270
# episodes (126 tune the train split, 154 the test split, 990 baselines), hours on 2 cores.
# Rerun it to go on (finished episodes are kept in results.json, seed by seed). A policy is
# then judged on the ten seeds with --baselines-from docs/results/noisy-baselines.
cd "$(dirname "$0")/../../.."
set -e
export OMP_NUM_THREADS=1
python examples/compare_schedules.py --instances noisy:test --workers 2 \
  --seeds 1000 1001 1002 1003 1004 1005 1006 1007 1008 1009 --tune-seeds 0 1 \
  --peaks 0.05 0.1 0.2 0.4 0.8 1.6 3.2 --output docs/results/noisy-baselines
