"""What a whole episode costs: the paper's MDP against ``qan_env.learning_mdp``, side by side.

Episodes of the two MDPs on the same preset alternate, each with a fixed policy (the
paper's: always decay; the learning MDP's: the base schedule, factor 1), for the same
seeds. The learning MDP trains on fewer images (some are held out) and evaluates the
held-out loss after every step; the ratio is its seconds per episode over the paper's.

    python benchmarks/episode_cost.py             # the quick preset, 3 episodes each
    python benchmarks/episode_cost.py --quick     # the tiny preset, a check that it runs
"""

from __future__ import annotations

import argparse
import statistics

import gymnasium as gym
from common import machine, timed, write_results

import qan_env

gym.register_envs(qan_env)


def episode_seconds(env: gym.Env, action: int, seed: int) -> float:
    def run() -> None:
        env.reset(seed=seed)
        terminated = False
        while not terminated:
            *_, terminated, _, _ = env.step(action)

    return timed(run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--episodes", type=int, default=3, help="of each MDP")
    parser.add_argument("--quick", action="store_true", help="the tiny preset, one episode")
    args = parser.parse_args()
    if args.quick:
        args.preset, args.episodes = "tiny", 1
    learning = qan_env.learning_mdp(qan_env.make_config(args.preset))
    envs = {
        "paper MDP": gym.make("qan_env/LRSchedule-v0", preset=args.preset, device="cpu"),
        "learning MDP": gym.make(
            "qan_env/LRSchedule-v0", preset=args.preset, device="cpu", **learning
        ),
    }
    factor_1 = envs["learning MDP"].unwrapped.action_names.index("x1")
    actions = {"paper MDP": 0, "learning MDP": factor_1}
    for name, env in envs.items():  # warm up: read the data, first allocations
        episode_seconds(env, actions[name], seed=0)
    seconds = {name: [] for name in envs}
    for seed in range(1, args.episodes + 1):
        for name, env in envs.items():
            seconds[name].append(episode_seconds(env, actions[name], seed))
    results = {
        name: {
            "steps_per_episode": env.unwrapped.steps_per_episode,
            "iterations_per_episode": env.unwrapped.total_iterations,
            "seconds_per_episode": statistics.median(seconds[name]),
        }
        for name, env in envs.items()
    }
    for name, result in results.items():
        print(
            f"{args.preset}, {name}: {result['steps_per_episode']} steps, "
            f"{result['iterations_per_episode']} iterations, "
            f"{result['seconds_per_episode']:.1f} s per episode (median of {args.episodes})"
        )
    learning_seconds = results["learning MDP"]["seconds_per_episode"]
    ratio = learning_seconds / results["paper MDP"]["seconds_per_episode"]
    if not args.quick:
        write_results(
            f"episode_cost_{args.preset}_cpu",
            {
                "machine": machine(),
                "learning_mdp": learning,
                "results": results,
                "ratio": ratio,
            },
        )
    print(f"learning MDP / paper MDP seconds per episode ratio: {ratio:.2f}")


if __name__ == "__main__":
    main()
