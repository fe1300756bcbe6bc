#!/bin/bash
# Run E: run B's configuration with a decision every 40 iterations (8 per quick episode, B: 16), 120 episodes.
cd "$(dirname "$0")/../../.."
export OMP_NUM_THREADS=2
mkdir -p runs/exp
python agents/sb3_dqn.py --preset quick --env iterations_per_step=40 --episodes 120 --output runs/exp/e > runs/exp/e.log 2>&1
python agents/sb3_dqn.py --evaluate runs/exp/e --eval-seeds 500 501 502 503 504 --output runs/exp/e-val > runs/exp/e.eval.log 2>&1
echo done >> runs/exp/e.eval.log
