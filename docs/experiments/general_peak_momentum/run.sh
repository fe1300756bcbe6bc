#!/bin/bash
# A trial on the general instance set (v2) under the training's divergence rule: relative
# actions around the cosine tuned once on the train split (anchor_lr 0.8), within x1/2 to x2
# of it (lr 0.4 to 1.6, the span of the train runs' best peaks but one), and the momentum
# told in the state (observe_optimizer: the log of the lr and of SGD's effective step), so
# that holding throughout is the tuned-once cosine and the run's momentum, which moves the
# best peak, is read rather than guessed. Then its comparison on the test split beside the
# shipped policy's (the same tuning and baseline episodes, seeds 1000-1002). SEED (default
# 10) is the training run's seed; each step continues where an interrupted one stopped.
# These options were the general set's v3, and seed 10's run its shipped policy: its
# comparison was moved to docs/results/general-v3.
cd "$(dirname "$0")/../../.."
set -e
seed="${SEED:-10}"
run="runs/sb3_dqn/general-peak-momentum-seed$seed"
python agents/sb3_dqn.py --instances general --seed "$seed" --env anchor_lr=0.8 \
  --env 'anchor_factors=[0.5,2]' --env observe_optimizer=True --output "$run" --resume
python examples/compare_schedules.py --run "$run" --instances general:test \
  --workers 2 --seeds 1000 1001 1002 --tune-seeds 0 1 --peaks 0.05 0.1 0.2 0.4 0.8 1.6 3.2 \
  --output "docs/results/general-peak-momentum-seed$seed" --baselines-from docs/results/general
# Its confirmation on all ten held-out seeds, beside the baselines' ten-seed episodes (the
# same comparison folder, grown by seeds 1003-1009).
python examples/compare_schedules.py --run "$run" --instances general:test \
  --workers 2 --seeds 1000 1001 1002 1003 1004 1005 1006 1007 1008 1009 --tune-seeds 0 1 \
  --peaks 0.05 0.1 0.2 0.4 0.8 1.6 3.2 --output "docs/results/general-peak-momentum-seed$seed" \
  --baselines-from docs/results/general-baselines
