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
exec "$(dirname "$0")/../general_prodigy4/over_prodigy.sh" general_prodigy4_down general-prodigy4-down-seed10 general-prodigy4-down 4 0.5,1
