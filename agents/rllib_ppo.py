"""Train RLlib's PPO to schedule the learning rate of a Wide ResNet, on one machine or a cluster.

    python agents/rllib_ppo.py --preset tiny --iterations 2 --num-env-runners 2
    python agents/rllib_ppo.py --preset quick --num-env-runners 8          # 8 runs at once
    python agents/rllib_ppo.py --preset paper --env download=True \\
        --num-env-runners 8 --num-gpus-per-env-runner 1                     # a GPU each
    python agents/rllib_ppo.py --preset quick --resume                      # go on

Install with ``pip install -e ".[rllib]"`` (Ray's RLlib pins gymnasium 1.2.2, so give it a
virtual environment of its own). On a cluster, start this script on the head node
(``ray.init()`` joins the running cluster; ``--address`` names another).

Each env runner is a Ray worker process, on any node, that makes its own envs and trains
their networks on its own device. Workers never ``import qan_env`` by themselves, so the
bare Gymnasium id ``"qan_env/LRSchedule-v0"`` fails there (``NamespaceNotFound``); the env
is registered with Ray's ``register_env`` under ``ENV_NAME`` by a creator that imports
qan_env where it runs (the module-prefixed id ``"qan_env:qan_env/LRSchedule-v0"`` works
too). Each runner's env gets its worker index: with ``device=auto`` and several GPUs on a
node, runners spread over them (with ``--num-gpus-per-env-runner``, Ray gives each runner
its own GPU and it is the only one the runner sees).

The env is the learning MDP (``qan_env.learning_mdp``) as in ``agents/sb3_dqn.py``;
``--mdp paper`` is the paper's. Outputs, in ``--output`` (default
``runs/rllib_ppo/<preset>-seed<seed>``): ``config.json`` (the whole env config, these
settings and the versions, written first), ``episodes.csv`` (a row per finished episode:
the training iteration, env runner, return, length, final test accuracy, whether it
diverged), ``iterations.csv`` (a row per iteration: env steps so far, mean episode
return, seconds) and ``checkpoint/`` (RLlib's ``Algorithm.save_to_path`` every
``--checkpoint-every`` iterations and at the end; ``--resume`` continues from it).
"""

from __future__ import annotations

import csv
import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import gymnasium as gym
import ray
import tyro
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.env.env_context import EnvContext
from ray.tune.registry import register_env

from qan_env import cli
from qan_env.config import EnvConfig, config_from_dict
from qan_env.run_folder import write_run_config

ENV_NAME = "qan_env_lr_schedule"
"""The name the env is registered under with Ray (``register_env``)."""
EPISODES_KEY = "qan_env_episodes"
EPISODE_COLUMNS = [
    "iteration",
    "env_runner",
    "return",
    "length",
    "final_test_accuracy",
    "diverged",
]
ITERATION_COLUMNS = ["iteration", "env_steps", "episodes", "mean_return", "seconds"]


@dataclass
class Args:
    """Train RLlib's PPO to schedule the learning rate of a Wide ResNet."""

    preset: Literal["paper", "quick", "tiny"] = "quick"
    """env preset"""
    mdp: Literal["learning", "paper"] = "learning"
    """the env's MDP options: "learning" (qan_env.learning_mdp) or "paper" (the paper's)"""
    env: Annotated[list[str], tyro.conf.UseAppendAction] = field(default_factory=list)
    """override an env setting, FIELD=VALUE, such as --env epochs=5 (after --mdp's)"""
    iterations: int = 20
    """PPO training iterations"""
    num_env_runners: int = 2
    """Ray worker processes that step envs (0: the driver steps them itself)"""
    num_envs_per_env_runner: int = 1
    """envs (training runs) per env runner"""
    num_gpus_per_env_runner: float = 0.0
    """GPUs Ray reserves for each env runner (the networks train there)"""
    episodes_per_iteration: int = 2
    """episodes of env steps per iteration (PPO's train batch, over all runners)"""
    seed: int = 0
    """seed of the env runners (runner k's env: --seed + k) and of the agent"""
    output: Path | None = None
    """run folder; None: runs/rllib_ppo/<preset>-seed<seed>"""
    checkpoint_every: int = 1
    """iterations between checkpoints"""
    resume: bool = False
    """continue from --output's checkpoint"""
    address: str | None = None
    """the Ray cluster to join (None: a running one, else a new local one)"""
    learning_rate: float = 3e-4
    """Adam learning rate of the policy"""
    gamma: float = 1.0
    """discount factor (1: the return is the log of the final loss over the first)"""
    minibatch_size: int = 32
    """transitions per gradient step"""
    num_epochs: int = 4
    """passes over each train batch"""


def make_env(context: EnvContext) -> gym.Env:
    """The env of a runner, made where the runner runs (which imports qan_env here)."""
    import qan_env  # noqa: F401 (registers the ids in this worker)

    index = context.worker_index * context["envs_per_runner"] + context.vector_index
    config = config_from_dict(context["config"])
    return gym.make("qan_env/LRSchedule-v0", config=config, worker_index=index)


class EpisodeRecords(RLlibCallback):
    """Each finished episode's return, length, final test accuracy and divergence, as an
    item of a series that the driver writes to ``episodes.csv``."""

    def on_episode_end(self, *, episode, env_runner=None, metrics_logger=None, **kwargs) -> None:
        accuracy = float("nan")
        for info in episode.get_infos():
            accuracy = info.get("test_accuracy", accuracy)
        record = {
            "env_runner": env_runner.worker_index if env_runner is not None else 0,
            "return": float(episode.get_return()),
            "length": len(episode),
            "final_test_accuracy": accuracy,
            "diverged": bool(episode.get_infos(-1).get("diverged", False)),
        }
        metrics_logger.log_value(EPISODES_KEY, record, reduce="item_series")


def ppo_config(args: Args, config: EnvConfig) -> PPOConfig:
    """RLlib's PPO on the new API stack, sized from the episode length."""
    batch = args.episodes_per_iteration * config.steps_per_episode
    return (
        PPOConfig()
        .environment(
            ENV_NAME,
            env_config={
                "config": config.to_dict(),
                "envs_per_runner": args.num_envs_per_env_runner,
            },
        )
        .env_runners(
            num_env_runners=args.num_env_runners,
            num_envs_per_env_runner=args.num_envs_per_env_runner,
            num_gpus_per_env_runner=args.num_gpus_per_env_runner,
            rollout_fragment_length="auto",
        )
        .training(
            lr=args.learning_rate,
            gamma=args.gamma,
            train_batch_size_per_learner=batch,
            minibatch_size=min(args.minibatch_size, batch),
            num_epochs=args.num_epochs,
        )
        .callbacks(EpisodeRecords)
        .debugging(seed=args.seed)
    )


def append_rows(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    new_file = not path.exists()
    with open(path, "a", newline="") as file:
        writer = csv.DictWriter(file, columns, lineterminator="\n", extrasaction="ignore")
        if new_file:
            writer.writeheader()
        writer.writerows(rows)


def train(args: Args) -> None:
    config = cli.agent_env(args.preset, args.mdp, args.env)
    runners = max(1, args.num_env_runners) + 1
    seeds = range(args.seed, args.seed + runners * args.num_envs_per_env_runner)
    cli.check_training_seeds(seeds, f"--seed {args.seed} (runner k's envs: from --seed + k)")
    checkpoint = args.output / "checkpoint"
    if args.resume and checkpoint.exists():
        cli.check_resume(args.output, config, {})
    args.output.mkdir(parents=True, exist_ok=True)
    settings = {**dataclasses.asdict(args), "output": str(args.output), "ray": ray.__version__}
    write_run_config(args.output, config, settings)
    register_env(ENV_NAME, make_env)
    ray.init(address=args.address, ignore_reinit_error=True, include_dashboard=False)
    algo = ppo_config(args, config).build_algo()
    done = 0
    if args.resume and checkpoint.exists():
        algo.restore_from_path(str(checkpoint.resolve()))
        done = algo.iteration
        print(f"resuming after iteration {done}")
    else:
        for name in ("episodes.csv", "iterations.csv"):
            (args.output / name).unlink(missing_ok=True)
    for iteration in range(done + 1, args.iterations + 1):
        start = time.perf_counter()
        result = algo.train()
        runners_result = result["env_runners"]
        episodes = runners_result.get(EPISODES_KEY, [])
        append_rows(
            args.output / "episodes.csv",
            EPISODE_COLUMNS,
            [{"iteration": iteration, **episode} for episode in episodes],
        )
        row = {
            "iteration": iteration,
            "env_steps": int(result.get("num_env_steps_sampled_lifetime", 0)),
            "episodes": len(episodes),
            "mean_return": runners_result.get("episode_return_mean", float("nan")),
            "seconds": time.perf_counter() - start,
        }
        append_rows(args.output / "iterations.csv", ITERATION_COLUMNS, [row])
        print(
            f"iteration {iteration}: {len(episodes)} episodes, mean return "
            f"{row['mean_return']:+.5f}, {row['seconds']:.1f} s"
        )
        if iteration % args.checkpoint_every == 0 or iteration == args.iterations:
            algo.save_to_path(str(checkpoint.resolve()))
    algo.stop()
    print(f"wrote {args.output}: config.json, episodes.csv, iterations.csv, checkpoint/")


def main() -> None:
    args = tyro.cli(Args, description=__doc__.split("\n")[0])
    if args.output is None:
        args.output = cli.default_output("rllib_ppo", args.preset, args.seed)
    train(args)


if __name__ == "__main__":
    main()
