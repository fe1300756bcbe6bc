#!/bin/bash
# The policy over Prodigy from 1, reading four observations at a time (docs/agent_design.md,
# "Four observations over Prodigy"): the command of docs/experiments/general_prodigy1 with
# --frame-stack 4, 400 episodes on seed 10, its model copied into
# docs/experiments/general_prodigy1_frames/seed10, then its comparison on the test split on
# all ten held-out seeds beside the tuning, baseline, Prodigy and random-policy episodes of
# docs/results/general-prodigy1-ten-seeds (the env is the same, so its random twin is the
# same). Each step continues where an interrupted one stopped.
set -e
cd "$(dirname "$0")/../../.."
here=docs/experiments/general_prodigy1_frames run=runs/sb3_dqn/general-prodigy1-frames-seed10
python agents/sb3_dqn.py --instances general --seed 10 --output "$run" --frame-stack 4 \
  --env optimizer=prodigy --env anchor_lr=1 --env anchor_factors=0.5,2 \
  --env observe_optimizer=False --resume
mkdir -p "$here/seed10"
cp "$run"/{config.json,model.zip,normalization.json,summary.json} "$here/seed10/"
python examples/compare_schedules.py --run "$here/seed10" \
  --instances general:test --workers 2 --tune-seeds 0 1 \
  --seeds 1000 1001 1002 1003 1004 1005 1006 1007 1008 1009 \
  --peaks 0.05 0.1 0.2 0.4 0.8 1.6 3.2 --output docs/results/general-prodigy1-frames \
  --baselines-from docs/results/general-prodigy1-ten-seeds
