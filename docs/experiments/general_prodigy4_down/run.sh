#!/bin/bash
# A general policy over Prodigy that can only take the lr down from its tuned-once level
# (docs/agent_design.md, "A schedule over Prodigy that cannot climb"): as
# docs/experiments/general_prodigy4, but the multiplier's range is 2 to 4 times Prodigy's lr
# (--env anchor_factors=0.5,1 around anchor_lr=4) instead of 2 to 8, so holding throughout
# is Prodigy's cosine tuned once on the train split and no decision can raise the lr above
# it. 400 episodes on seed 10, then its comparison on the test split on the held-out seeds
# 1000-1002 (the other seven follow only if it passes its rule there) beside the tuning and
# baselines of docs/results/general-baselines. The comparison judges the model as committed
# in docs/experiments/general_prodigy4_down/seed10. Each step continues where an
# interrupted one stopped.
cd "$(dirname "$0")/../../.."
set -e
python agents/sb3_dqn.py --instances general --seed 10 \
  --output runs/sb3_dqn/general-prodigy4-down-seed10 \
  --env optimizer=prodigy --env anchor_lr=4 --env anchor_factors=0.5,1 \
  --env observe_optimizer=False --resume
mkdir -p docs/experiments/general_prodigy4_down/seed10
cp runs/sb3_dqn/general-prodigy4-down-seed10/{config.json,model.zip,normalization.json,summary.json} \
  docs/experiments/general_prodigy4_down/seed10/
python examples/compare_schedules.py --run docs/experiments/general_prodigy4_down/seed10 \
  --instances general:test --workers 2 --tune-seeds 0 1 \
  --seeds 1000 1001 1002 \
  --peaks 0.05 0.1 0.2 0.4 0.8 1.6 3.2 --output docs/results/general-prodigy4-down \
  --baselines-from docs/results/general-baselines
