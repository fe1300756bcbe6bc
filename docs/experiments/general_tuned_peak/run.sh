#!/bin/bash
# A trial on the general instance set (v2): relative actions around the tuned-once cosine
# (anchor_lr 0.8, the peak v1's tuning picked over the train split; x1/16 to x4, lr 0.05 to
# 3.2) instead of around the instance's guessed initial lr. The tuning and the baselines are
# the episodes of docs/results/general (v1's, taken again: the same training runs, which no
# action set shapes). Not adopted: docs/agent_design.md, "Around the tuned-once peak".
cd "$(dirname "$0")/../../.."
set -e
python agents/sb3_dqn.py --instances general --env anchor_lr=0.8 --env 'anchor_factors=[0.0625,4]' \
  --output runs/sb3_dqn/general3-seed0 --resume
python examples/compare_schedules.py --run runs/sb3_dqn/general3-seed0 --instances general:test \
  --workers 2 --seeds 1000 1001 1002 --tune-seeds 0 1 --peaks 0.05 0.1 0.2 0.4 0.8 1.6 3.2 \
  --output docs/results/general-tuned-peak --baselines-from docs/results/general
