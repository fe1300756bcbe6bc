#!/bin/bash
# A measurement, not a trial (docs/agent_design.md, "The policy over Prodigy from 1 on ten
# seeds, on one machine"): the policy over Prodigy from 1, its random twin and its replay on
# all ten held-out seeds, then Prodigy itself run on this machine on the same runs and seeds,
# so that the policy and Prodigy stand side by side on one machine's kernels. It starts from
# the three-seed comparison docs/results/general-prodigy1 (copied into
# docs/results/general-prodigy1-ten-seeds) and from Prodigy's three seeds already run here
# (prodigy_here.json, copied into prodigy_here_ten_seeds.json); the replays are run again,
# since their mean curves now average ten seeds. Each step continues where an interrupted
# one stopped.
set -e
cd "$(dirname "$0")/../../.."
ten=docs/results/general-prodigy1-ten-seeds here=docs/experiments/general_prodigy1
[ -e "$ten/results.json" ] || { mkdir -p "$ten"; cp docs/results/general-prodigy1/results.json "$ten/"; }
[ -e "$here/prodigy_here_ten_seeds.json" ] || cp "$here/prodigy_here.json" "$here/prodigy_here_ten_seeds.json"
python examples/compare_schedules.py --run "$here/seed10" \
  --instances general:test --workers 2 --tune-seeds 0 1 \
  --seeds 1000 1001 1002 1003 1004 1005 1006 1007 1008 1009 \
  --peaks 0.05 0.1 0.2 0.4 0.8 1.6 3.2 --output "$ten" \
  --baselines-from docs/results/general-baselines
python docs/experiments/general_prodigy4_down/held.py "$ten" "$here/prodigy_here_ten_seeds.json" 1
