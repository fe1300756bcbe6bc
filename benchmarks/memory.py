"""Memory over many episodes: the process's resident memory after each of 100 tiny
episodes, one env reset again and again (as an agent's training does).

A leak (a tensor, a history or a graph kept from episode to episode) shows as a rising
line; the ratio is the resident memory after the last episode over that after the first
(target <= 1.05). Writes ``results/memory_tiny_cpu.json`` and the figure
``results/memory_tiny_cpu.png``.

    python benchmarks/memory.py            # 100 tiny episodes, about two minutes
    python benchmarks/memory.py --quick    # 5 episodes, a check that it runs; writes nothing
"""

from __future__ import annotations

import argparse
import os
import resource

import gymnasium as gym
import matplotlib.pyplot as plt
from common import RESULTS, machine, write_results

import qan_env

gym.register_envs(qan_env)
TARGET = 1.05


def resident_mb() -> float:
    """This process's resident memory now (Linux), or its peak elsewhere."""
    try:
        with open("/proc/self/statm") as file:
            pages = int(file.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="5 episodes, nothing written")
    args = parser.parse_args()
    episodes = 5 if args.quick else args.episodes
    env = gym.make(
        "qan_env/LRSchedule-tiny-v0", **qan_env.learning_mdp(qan_env.make_config("tiny"))
    )
    megabytes = []
    for seed in range(episodes):
        env.reset(seed=seed)
        terminated = False
        while not terminated:
            *_, terminated, _, _ = env.step(seed % env.action_space.n)
        megabytes.append(resident_mb())
    ratio = megabytes[-1] / megabytes[0]
    print(
        f"resident memory after episode 1: {megabytes[0]:.1f} MB, "
        f"after {episodes}: {megabytes[-1]:.1f} MB"
    )
    if not args.quick:
        results = {"machine": machine(), "episodes": episodes, "resident_mb": megabytes}
        write_results("memory_tiny_cpu", {**results, "ratio": ratio, "target": TARGET})
        figure, axes = plt.subplots(figsize=(7, 3.5))
        axes.plot(range(1, episodes + 1), megabytes, marker="o", markersize=2)
        axes.set(
            xlabel="episode",
            ylabel="resident memory (MB)",
            ylim=(0, 1.2 * max(megabytes)),
            title=f"Resident memory over {episodes} tiny episodes\n"
            f"{megabytes[0]:.0f} MB after the first, {megabytes[-1]:.0f} MB after the last",
        )
        axes.grid(alpha=0.3)
        figure.tight_layout()
        figure.savefig(RESULTS / "memory_tiny_cpu.png", dpi=120)
    print(f"ratio of resident memory, last / first episode: {ratio:.3f} (target <= {TARGET})")


if __name__ == "__main__":
    main()
