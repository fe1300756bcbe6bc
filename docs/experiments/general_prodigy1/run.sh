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
exec "$(dirname "$0")/../general_prodigy4/over_prodigy.sh" general_prodigy1 general-prodigy1-seed10 general-prodigy1 1 0.5,2
