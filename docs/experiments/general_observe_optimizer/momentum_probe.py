"""Does the trained policy's greedy action depend on the momentum it observes, and in the
direction the landscape asks (a lower momentum wants a higher lr)?

On one test instance per momentum, at every state of a greedy episode (validation seed
500), the greedy action as observed, and the greedy action were the observed effective
step ``lr / (1 - momentum)`` that of momentum 0, 0.5 or 0.9 at the same lr (everything else
unchanged). Writes, per instance, the actions taken, the states where another momentum
changes the greedy action, and the doublings less halvings each momentum would give.

    python docs/experiments/general_observe_optimizer/momentum_probe.py runs/sb3_dqn/general4-seed0
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

from qan_env import LRScheduleEnv
from qan_env.instances import GENERAL
from qan_env.run_folder import saved_env
from qan_env.sb3 import SB3Policy

INSTANCES = (
    "momentum=0.9,label_noise=0.0,initial_lr=0.05,batch_size=256,synthetic_seed=6",
    "momentum=0.5,label_noise=0.0,initial_lr=0.1,batch_size=256,synthetic_seed=6",
    "momentum=0.0,nesterov=False,label_noise=0.0,initial_lr=0.1,batch_size=128,synthetic_seed=6",
)
MOMENTA = (0.0, 0.5, 0.9)
SEED = 500
HALVE, DOUBLE = 0, 2  # the relative actions x0.5, x1, x2


def probe(folder: Path, name: str) -> dict:
    overrides = GENERAL.find(name).overrides
    env = LRScheduleEnv(config=saved_env(folder, {"instances": None, **overrides}))
    policy = SB3Policy.load(folder)
    if policy.inputs != len(env.feature_names):
        raise SystemExit(f"{folder} stacks frames: this probe reads one-frame policies")
    at, own = env.feature_names.index("log_effective_lr"), env.config.momentum
    observation, _ = env.reset(seed=SEED)
    actions, changed, net = [], 0, dict.fromkeys(MOMENTA, 0)
    done = False
    while not done:
        choices = {}
        for momentum in MOMENTA:
            x = observation[None].astype(np.float32)
            x[0, at] += math.log(1 - own) - math.log(1 - momentum)
            choices[momentum] = int(policy.q_values(x).argmax())
            net[momentum] += (choices[momentum] == DOUBLE) - (choices[momentum] == HALVE)
        changed += len(set(choices.values())) > 1
        actions.append(choices[own])
        observation, _, done, _, info = env.step(choices[own])
    return {
        "instance": name,
        "actions": actions,
        "final_test_accuracy": info["test_accuracy"],
        "states_another_momentum_changes": changed,
        "states": len(actions),
        "doublings_less_halvings_as_momentum": {str(m): n for m, n in net.items()},
    }


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    results = [probe(folder, name) for name in INSTANCES]
    out = Path(__file__).with_name("momentum_probe.json")
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))
