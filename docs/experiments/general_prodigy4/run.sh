#!/bin/bash
# A general policy over Prodigy around its tuned-once multiplier (docs/agent_design.md, "A
# schedule over Prodigy, from its tuned-once multiplier"): as docs/experiments/general_prodigy,
# but holding throughout is Prodigy's cosine at 4 times its lr, the multiplier best over the
# general train split (docs/experiments/prodigy_multiplier/general.json, validation seed 500),
# and the actions move it by sqrt(2) from 2 to 8 times Prodigy's lr. 400 episodes on seed 10,
# then its comparison on the test split on the held-out seeds 1000-1002 (the other seven
# follow only if it passes its rule there) beside the tuning and baselines of
# docs/results/general-baselines. The comparison judges the model as committed in
# docs/experiments/general_prodigy4/seed10 (a copy of the run's model, config, normalization
# and summary). Each step continues where an interrupted one stopped.
exec "$(dirname "$0")/../general_prodigy4/over_prodigy.sh" general_prodigy4 general-prodigy4-seed10 general-prodigy4 4 0.5,2
