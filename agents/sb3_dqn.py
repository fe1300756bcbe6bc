"""Train Stable-Baselines3's DQN to schedule the learning rate of a Wide ResNet (QAN).

    python agents/sb3_dqn.py --preset quick          # about 10 minutes on 2 CPU cores
    python agents/sb3_dqn.py --preset paper --env download=True   # the paper, on a GPU

The agent sees the last 4 observations (a state history, paper sec. 3), normalised with
running statistics; rewards are normalised by the running std of the return, since the
paper's per-step rewards (scaled by 1 / (T - 1)) are of order 1e-4.
Outputs go to ``--output`` (default ``runs/sb3_dqn/<preset>-seed<seed>``): the model
(``model.zip``), the normalisation statistics (``vecnormalize.pkl``), one CSV row per
env step (``steps.csv``) and ``summary.json`` with each episode's return and accuracy.
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
from pathlib import Path

import gymnasium as gym
import torch
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack, VecNormalize
from tqdm import tqdm

import qan_env  # noqa: F401  (registers qan_env/LRSchedule-v0)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--preset",
        choices=["paper", "quick", "tiny"],
        default=None,
        help="env preset (default: paper with CUDA, else quick)",
    )
    parser.add_argument("--episodes", type=int, default=10, help="training runs (paper: 10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override an env setting, e.g. --env epochs=5 (repeatable)",
    )
    parser.add_argument("--output", type=Path, default=None, help="output directory")
    parser.add_argument("--frame-stack", type=int, default=4, help="state history length")
    parser.add_argument("--gamma", type=float, default=0.99)
    parser.add_argument("--learning-rate", type=float, default=5e-4, help="DQN's Adam lr")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--exploration-fraction",
        type=float,
        default=0.5,
        help="share of training over which epsilon falls from 1 to its end",
    )
    parser.add_argument("--final-epsilon", type=float, default=0.05)
    args = parser.parse_args()
    if args.preset is None:
        args.preset = "paper" if torch.cuda.is_available() else "quick"
    if args.output is None:
        args.output = Path("runs/sb3_dqn") / f"{args.preset}-seed{args.seed}"
    return args


def parse_overrides(pairs: list[str]) -> dict[str, object]:
    """``["epochs=5", "device='cpu'"]`` -> ``{"epochs": 5, "device": "cpu"}``."""
    overrides = {}
    for pair in pairs:
        field, separator, text = pair.partition("=")
        if not separator:
            raise SystemExit(f"--env {pair!r}: expected FIELD=VALUE, such as epochs=5")
        try:
            overrides[field] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            overrides[field] = text  # a bare word such as cpu or cifar10
    return overrides


class StepLogger(BaseCallback):
    """A tqdm bar over env steps, a CSV row per step, and each episode's outcome."""

    def __init__(self, total_steps: int, csv_path: Path) -> None:
        super().__init__()
        self.bar = tqdm(total=total_steps, unit="step", dynamic_ncols=True)
        self.csv_file = open(csv_path, "w", newline="")
        self.writer = csv.writer(self.csv_file)
        self.writer.writerow(
            [
                "step",
                "episode",
                "epoch",
                "iteration",
                "lr",
                "action",
                "reward",
                "train_loss",
                "test_accuracy",
            ]
        )
        self.episode, self.episode_return, self.episodes = 0, 0.0, []
        self.last_accuracy = float("nan")

    def _on_step(self) -> bool:
        info = self.locals["infos"][0]
        # The env's own reward: VecNormalize hands the agent a rescaled one.
        reward = float(self.model.get_vec_normalize_env().get_original_reward()[0])
        action = int(self.locals["actions"][0])
        self.episode_return += reward
        accuracy = info.get("test_accuracy", "")
        if accuracy != "":
            self.last_accuracy = accuracy
        self.writer.writerow(
            [
                self.num_timesteps,
                self.episode,
                info["epoch"],
                info["iteration"],
                info["lr"],
                action,
                reward,
                info["train_loss"],
                accuracy,
            ]
        )
        self.bar.update(1)
        self.bar.set_postfix(
            episode=self.episode,
            epoch=info["epoch"],
            lr=f"{info['lr']:.2e}",
            loss=f"{info['train_loss']:.3f}",
        )
        if self.locals["dones"][0]:
            self.episodes.append(
                {
                    "episode": self.episode,
                    "return": self.episode_return,
                    "final_test_accuracy": self.last_accuracy,
                    "diverged": info["diverged"],
                }
            )
            tqdm.write(
                f"episode {self.episode}: return {self.episode_return:+.4f}, "
                f"test accuracy {self.last_accuracy:.3f}"
            )
            self.episode, self.episode_return = self.episode + 1, 0.0
        return True

    def _on_training_end(self) -> None:
        self.bar.close()
        self.csv_file.close()


def main() -> None:
    args = parse_args()
    print(f"preset: {args.preset} (device: {'cuda' if torch.cuda.is_available() else 'cpu'})")
    overrides = parse_overrides(args.env)
    args.output.mkdir(parents=True, exist_ok=True)

    def make_env() -> gym.Env:
        return gym.make("qan_env/LRSchedule-v0", preset=args.preset, **overrides)

    probe = make_env().unwrapped
    steps_per_episode = -(-probe.total_iterations // probe.config.iterations_per_step)
    total_steps = args.episodes * steps_per_episode
    # Normalisation outermost: SB3 then keeps the raw (stacked) observations in its buffer.
    stacked = VecFrameStack(DummyVecEnv([make_env]), n_stack=args.frame_stack)
    venv = VecNormalize(stacked, norm_reward=True, gamma=args.gamma)

    # Sized for an env whose whole run is thousands to hundreds of thousands of steps: the
    # buffer holds all of it, learning starts after a tenth of the first episode (at least
    # 64 transitions) and the target network follows every 1/50 of the run.
    model = DQN(
        "MlpPolicy",
        venv,
        learning_rate=args.learning_rate,
        buffer_size=total_steps,
        learning_starts=max(64, steps_per_episode // 10),
        batch_size=args.batch_size,
        gamma=args.gamma,
        train_freq=1,
        target_update_interval=min(5000, max(50, total_steps // 50)),
        exploration_fraction=args.exploration_fraction,
        exploration_final_eps=args.final_epsilon,
        policy_kwargs={"net_arch": [256, 256]},
        seed=args.seed,
        device="cpu",  # a small MLP: the GPU is the network being trained's
    )
    logger = StepLogger(total_steps, args.output / "steps.csv")
    model.learn(total_timesteps=total_steps, callback=logger)

    model.save(args.output / "model.zip")
    venv.save(str(args.output / "vecnormalize.pkl"))
    venv.close()
    summary = {
        "preset": args.preset,
        "seed": args.seed,
        "env_overrides": overrides,
        "steps": total_steps,
        "episodes": logger.episodes,
    }
    (args.output / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"wrote {args.output}/model.zip, vecnormalize.pkl, steps.csv, summary.json")


if __name__ == "__main__":
    main()
