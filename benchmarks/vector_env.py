"""The native vector env against Gymnasium's ``SyncVectorEnv`` and ``AsyncVectorEnv``.

Env steps per second (sub-env steps, all ``N`` counted) of ``N`` quick-network runs, for
N = 1, 2, 4, 8, 32, each way of vectorising measured in the same rounds, one after the
other, so that all see the same machine:

- ``native``: ``gym.make_vec(id, N)``, the ids' vector entry point, as it chooses
  (``batched="auto"``: the runs one after the other on the CPU, together on CUDA);
- ``native batched``: the same with ``batched=True`` (``torch.func.vmap`` over the runs);
- ``sync``: ``gym.make_vec(id, N, vectorization_mode="sync")``;
- ``async``: ``gym.make_vec(id, N, vectorization_mode="async")``, ``N`` worker processes,
  each with ``max(1, cores // N)`` torch threads so that they do not oversubscribe the
  cores. On the CPU only up to ``--async-max`` (8) workers: each is a Python process with
  PyTorch (about 300 MB), and 32 of them on 2 cores measure the scheduler.

On the CPU, ``native batched`` is measured up to ``--batched-max`` (8): it is the slower
way there (grouped convolutions), and at N = 32 it alone would take most of the run.

The MDP is the quick preset's with a decision every 20 iterations (the learning MDP's
pace, ``qan_env.learning_mdp``), so that a step is mostly training; ``--env`` changes it.
The ratio printed last is native / sync at N = 8.

    python benchmarks/vector_env.py                  # CPU, about 15 minutes on 2 cores
    python benchmarks/vector_env.py --device cuda    # the GPU figure (target: >= 10x at 32)
    python benchmarks/vector_env.py --quick          # a check that it runs, in seconds
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics

import gymnasium as gym
import numpy as np
import torch
from common import machine, timed, write_results

import qan_env
from qan_env.cli import parse_overrides

gym.register_envs(qan_env)

TARGETS = {"cpu": (8, 0.9), "cuda": (32, 10.0)}
"""Per device: at which N native / sync is judged, and the ratio it must reach."""


def _threaded_env(threads: int, env_id: str, **kwargs) -> gym.Env:
    """An env made in a worker process that uses ``threads`` torch threads."""
    torch.set_num_threads(threads)
    return gym.make(env_id, **kwargs)


def make(mode: str, env_id: str, num_envs: int, kwargs: dict) -> gym.vector.VectorEnv:
    if mode == "native":
        return gym.make_vec(env_id, num_envs, **kwargs)
    if mode == "native batched":
        return gym.make_vec(env_id, num_envs, batched=True, **kwargs)
    if mode == "sync":
        return gym.make_vec(env_id, num_envs, vectorization_mode="sync", **kwargs)
    threads = max(1, (os.cpu_count() or 1) // num_envs)
    make_one = functools.partial(_threaded_env, threads, env_id, **kwargs)
    ours = torch.get_num_threads()
    # spawn, not fork: a forked worker cannot use CUDA (nor, after threads ran, OpenMP)
    env = gym.vector.AsyncVectorEnv([make_one] * num_envs, context="spawn")
    torch.set_num_threads(ours)  # it made one env here too, to read the spaces
    return env


def steps_per_second(env: gym.vector.VectorEnv, steps: int, device: str) -> float:
    actions = np.zeros(env.num_envs, dtype=np.int64)  # decay: no episode ends within the run
    seconds = timed(lambda: [env.step(actions) for _ in range(steps)], device)
    return env.num_envs * steps / seconds


def measure(env_id: str, kwargs: dict, sizes: list[int], modes_of, steps: int, rounds: int):
    """For each N: every mode's steps per second, the median over alternating rounds."""
    device = kwargs["device"]
    results = []
    for num_envs in sizes:
        modes = modes_of(num_envs)
        envs = {mode: make(mode, env_id, num_envs, kwargs) for mode in modes}
        for env in envs.values():  # warm up: data on the device, first step, allocator
            env.reset(seed=0)
            env.step(np.zeros(num_envs, dtype=np.int64))
        rates: dict[str, list[float]] = {mode: [] for mode in modes}
        for _ in range(rounds):
            for mode, env in envs.items():
                rates[mode].append(steps_per_second(env, steps, device))
        for env in envs.values():
            env.close()
        row = {"num_envs": num_envs, **{m: statistics.median(r) for m, r in rates.items()}}
        row["native / sync"] = row["native"] / row["sync"]
        results.append(row)
        cells = ", ".join(f"{mode} {row[mode]:.2f}" for mode in modes)
        print(f"N={num_envs:>2}: env steps/s {cells}; native / sync {row['native / sync']:.3f}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", default="1,2,4,8,32", help="the Ns, comma-separated")
    parser.add_argument("--async-max", type=int, default=None, help="CPU default 8")
    parser.add_argument("--batched-max", type=int, default=None, help="CPU default 8")
    parser.add_argument("--steps", type=int, default=2, help="vector steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--env", nargs="*", default=[], help="FIELD=VALUE overrides")
    parser.add_argument("--quick", action="store_true", help="tiny runs, N = 1, 2, 8")
    args = parser.parse_args()
    env_id = "qan_env/LRSchedule-quick-v0"
    kwargs = {"device": args.device, "iterations_per_step": 20}
    sizes = [int(size) for size in args.sizes.split(",")]
    if args.quick:
        env_id, kwargs["iterations_per_step"], sizes = "qan_env/LRSchedule-tiny-v0", 1, [1, 2, 8]
        args.steps, args.rounds = 2, 1
    kwargs.update(parse_overrides(args.env))
    device = torch.device(args.device).type
    on_cpu = 8 if device == "cpu" else max(sizes)
    async_max, batched_max = args.async_max or on_cpu, args.batched_max or on_cpu

    def modes_of(num_envs: int) -> list[str]:
        modes = ["native"] + (["native batched"] if num_envs <= batched_max else [])
        return modes + ["sync"] + (["async"] if num_envs <= async_max else [])

    print(f"machine: {machine(args.device)}, torch {torch.__version__}; {env_id} {kwargs}")
    results = measure(env_id, kwargs, sizes, modes_of, args.steps, args.rounds)
    if not args.quick:
        write_results(
            f"vector_env_{device}",
            {
                "machine": machine(args.device),
                "env_id": env_id,
                "kwargs": kwargs,
                "steps_per_round": args.steps,
                "rounds": args.rounds,
                "results": results,
                "target": {"num_envs": TARGETS[device][0], "native / sync": TARGETS[device][1]},
            },
        )
    by_size = {row["num_envs"]: row["native / sync"] for row in results}
    at, target = TARGETS[device]
    if at != 8 and at in by_size:
        print(f"native / sync at N={at}: {by_size[at]:.3f} (target >= {target:g} on {device})")
    last = 8 if 8 in by_size else max(by_size)
    goal = f" (target >= {target:g})" if at == last else ""
    print(f"native / sync env steps per second ratio at N={last}: {by_size[last]:.3f}{goal}")


if __name__ == "__main__":
    main()
