"""The Q-values a general policy acts on along its greedy episodes on train runs: how far
it prefers halving to holding (docs/agent_design.md, "Only upward from the tuned-once
peak"). Ran on v3's model (``git show 30229b2:agents/pretrained/general/...`` into a
folder), train runs 0, 8, 12 and 22, validation seed 500:

    python docs/experiments/general_upward/q_gaps.py V3_FOLDER 0,8,12,22 q_gaps.json
"""

from __future__ import annotations

import json
import sys

from qan_env.config import with_overrides
from qan_env.env import LRScheduleEnv
from qan_env.evaluation import run_episode
from qan_env.run_folder import read_run_config
from qan_env.sb3.policy import SB3Policy


class Recorded(SB3Policy):
    """The policy, keeping the Q-values of every decision it takes."""

    def act(self, observation, step: int) -> int:
        values = self.q_values(self.stack(observation))[0]
        self.seen.append(values.tolist())
        return int(values.argmax())


def main() -> None:
    folder, indices, output = sys.argv[1], sys.argv[2], sys.argv[3]
    policy = Recorded.load(folder)
    config = with_overrides(read_run_config(folder).env, {"instances": "general:train"})
    env = LRScheduleEnv(config=config)
    episodes = []
    for index in (int(i) for i in indices.split(",")):
        policy.seen = []
        record = run_episode(env, policy, 500, env.instances[index].name)
        episodes.append(
            {
                "instance": record.instance,
                "q": policy.seen,
                "actions": record.actions,
                "final": record.final_accuracy,
            }
        )
    with open(output, "w") as file:
        json.dump(episodes, file, indent=1)


if __name__ == "__main__":
    main()
