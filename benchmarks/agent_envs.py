"""The SB3 agent's wall time on 1 env and on 2 at once, for the same number of env steps.

``agents/sb3_dqn.py`` is run as a user runs it (a fresh process each time, its default
settings, the learning MDP), for the same number of episodes, at ``--n-envs 1`` and at
``--n-envs 2`` with each ``--vectorization``, one after the other in rounds, so that all
see the same machine. Printed: the median seconds of each, and last the ratio of the
1-env time to the 2-env (native) time: the speed-up.

    python benchmarks/agent_envs.py            # quick, 6 episodes each, about 15 minutes
    python benchmarks/agent_envs.py --quick    # tiny, a check that it runs
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, write_results

AGENT = Path(__file__).resolve().parents[1] / "agents" / "sb3_dqn.py"
VARIANTS = {
    "1 env": ["--n-envs", "1"],
    "2 envs, native": ["--n-envs", "2", "--vectorization", "native"],
    "2 envs, subprocess": ["--n-envs", "2", "--vectorization", "subprocess"],
}


def seconds(preset: str, episodes: int, variant: list[str]) -> float:
    """Wall time of one whole agent run, from process start to exit."""
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, str(AGENT), "--preset", preset, "--episodes", str(episodes)]
        start = time.perf_counter()
        subprocess.run([*command, *variant, "--output", folder], check=True, capture_output=True)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="tiny, 2 episodes, 1 round")
    args = parser.parse_args()
    preset = "tiny" if args.quick else "quick"
    if args.quick:
        args.episodes, args.rounds = 2, 1
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(args.rounds):
        for name, variant in VARIANTS.items():
            times[name].append(seconds(preset, args.episodes, variant))
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"machine: {machine()}; {preset}, {args.episodes} episodes, {args.rounds} rounds")
    for name, value in medians.items():
        print(f"{name}: {value:.1f} s (each round: {', '.join(f'{t:.1f}' for t in times[name])})")
    speedup = medians["1 env"] / medians["2 envs, native"]
    if not args.quick:
        write_results(
            "agent_envs_cpu",
            {
                "machine": machine(),
                "preset": preset,
                "episodes": args.episodes,
                "seconds": times,
                "median_seconds": medians,
                "speedup_native": speedup,
                "speedup_subprocess": medians["1 env"] / medians["2 envs, subprocess"],
            },
        )
    print(f"1 env / 2 envs (native) wall time ratio: {speedup:.3f}")


if __name__ == "__main__":
    main()
