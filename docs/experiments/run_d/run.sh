#!/bin/bash
# Run D: run B's configuration with the factors narrowed to the upper half (x2 to x8, half-octave steps), 60 episodes.
cd "$(dirname "$0")/../../.."
export OMP_NUM_THREADS=1
python agents/sb3_dqn.py --preset quick --env 'anchor_factors=[2,2.83,4,5.66,8]' --episodes 60 --output runs/exp/d > runs/exp/d.log 2>&1
python agents/sb3_dqn.py --evaluate runs/exp/d --eval-seeds 500 501 502 503 504 --output runs/exp/d-val > runs/exp/d.eval.log 2>&1
echo done >> runs/exp/d.eval.log
