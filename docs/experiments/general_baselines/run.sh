#!/bin/bash
# The general set's baselines on all ten held-out seeds (1000-1009), which the target is
# judged on: every contender that no policy shapes (the cosines, the oracle, the tuning-free
# optimizers, ReduceLROnPlateau), with the tuning and the seeds 1000-1002 taken from
# docs/results/general. About 690 new episodes, some hours on 2 cores: rerun it to go on
# (finished episodes are kept in results.json, seed by seed). A policy is then judged on
# the ten seeds with --baselines-from docs/results/general-baselines.
cd "$(dirname "$0")/../../.."
set -e
export OMP_NUM_THREADS=1
python examples/compare_schedules.py --instances general:test --workers 2 \
  --seeds 1000 1001 1002 1003 1004 1005 1006 1007 1008 1009 --tune-seeds 0 1 \
  --peaks 0.05 0.1 0.2 0.4 0.8 1.6 3.2 \
  --output docs/results/general-baselines --baselines-from docs/results/general
