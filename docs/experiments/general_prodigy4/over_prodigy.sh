#!/bin/bash
# A general policy over Prodigy (docs/agent_design.md, from "A schedule over Prodigy, from its
# tuned-once multiplier" on): 400 episodes on seed 10 with Prodigy's multiplier anchored at
# ANCHOR_LR and moved by sqrt(2) within ANCHOR_FACTORS of it, the run's model copied into
# docs/experiments/FOLDER/seed10, then its comparison on the test split on the held-out seeds
# 1000-1002 (the other seven follow only if it passes its rule there) into
# docs/results/RESULTS, beside the tuning and baselines of docs/results/general-baselines.
# Each step continues where an interrupted one stopped.
#
#     over_prodigy.sh FOLDER RUN RESULTS ANCHOR_LR ANCHOR_FACTORS
set -e
folder=$1 run=runs/sb3_dqn/$2 results=docs/results/$3 anchor_lr=$4 anchor_factors=$5
cd "$(dirname "$0")/../../.."
python agents/sb3_dqn.py --instances general --seed 10 --output "$run" \
  --env optimizer=prodigy --env anchor_lr="$anchor_lr" --env anchor_factors="$anchor_factors" \
  --env observe_optimizer=False --resume
mkdir -p "docs/experiments/$folder/seed10"
cp "$run"/{config.json,model.zip,normalization.json,summary.json} "docs/experiments/$folder/seed10/"
python examples/compare_schedules.py --run "docs/experiments/$folder/seed10" \
  --instances general:test --workers 2 --tune-seeds 0 1 \
  --seeds 1000 1001 1002 \
  --peaks 0.05 0.1 0.2 0.4 0.8 1.6 3.2 --output "$results" \
  --baselines-from docs/results/general-baselines
