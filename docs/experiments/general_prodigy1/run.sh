#!/bin/bash
# A general policy over Prodigy that holds at Prodigy itself (docs/agent_design.md, "A
# schedule over Prodigy, from Prodigy's own lr"): as docs/experiments/general_prodigy4, but
# holding throughout is Prodigy with its recommended cosine at its own lr (anchor_lr=1), and
# the actions move the multiplier by sqrt(2) from 1/2 to 2 times that. 400 episodes on seed
# 10, then its comparison on the test split on the held-out seeds 1000-1002 (the other seven
# follow only if it passes its rule there) beside the tuning and baselines of
# docs/results/general-baselines. The comparison judges the model as committed in
# docs/experiments/general_prodigy1/seed10. Each step continues where an interrupted one
# stopped.
cd "$(dirname "$0")/../../.."
set -e
python agents/sb3_dqn.py --instances general --seed 10 --output runs/sb3_dqn/general-prodigy1-seed10 \
  --env optimizer=prodigy --env anchor_lr=1 --env anchor_factors=0.5,2 \
  --env observe_optimizer=False --resume
mkdir -p docs/experiments/general_prodigy1/seed10
cp runs/sb3_dqn/general-prodigy1-seed10/{config.json,model.zip,normalization.json,summary.json} \
  docs/experiments/general_prodigy1/seed10/
python examples/compare_schedules.py --run docs/experiments/general_prodigy1/seed10 \
  --instances general:test --workers 2 --tune-seeds 0 1 \
  --seeds 1000 1001 1002 \
  --peaks 0.05 0.1 0.2 0.4 0.8 1.6 3.2 --output docs/results/general-prodigy1 \
  --baselines-from docs/results/general-baselines
