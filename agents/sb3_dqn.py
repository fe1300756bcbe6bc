"""Train Stable-Baselines3's DQN to schedule the learning rate of a Wide ResNet (QAN).

    python agents/sb3_dqn.py --preset quick                 # 10 episodes, ~13 min on 2 CPU cores
    python agents/sb3_dqn.py --preset paper --env download=True    # the paper, on a GPU
    python agents/sb3_dqn.py --preset quick --resume        # continue from the last checkpoint
    python agents/sb3_dqn.py --evaluate runs/sb3_dqn/quick-seed0   # greedy, on new seeds

The agent sees the last 4 observations (a state history, paper sec. 3), normalised with
running statistics (SB3's ``VecFrameStack`` and ``VecNormalize``). Rewards are normalised
too, by the running std of the return: the paper's per-step rewards, scaled by 1/(T-1),
are of order 1e-4. The logs keep the env's own rewards.

Outputs, in ``--output`` (default ``runs/sb3_dqn/<preset>-seed<seed>``):
``model.zip`` and ``vecnormalize.pkl`` (the trained agent), ``steps.csv`` (a row per env
step: lr, action, reward, loss, test accuracy at epoch ends), ``summary.json`` (each
episode's return and final test accuracy), ``tensorboard/`` and ``checkpoint/`` (model,
normalisation statistics and replay buffer after every ``--checkpoint-every`` episodes).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
from pathlib import Path

import gymnasium as gym
import torch
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack, VecNormalize
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from qan_env import LRScheduleEnv
from qan_env.config import parse_overrides
from qan_env.evaluation import SB3Policy, evaluate

CSV_COLUMNS = [
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
    parser.add_argument(
        "--checkpoint-every", type=int, default=1, help="episodes between checkpoints"
    )
    parser.add_argument("--resume", action="store_true", help="continue from --output's checkpoint")
    parser.add_argument(
        "--evaluate",
        type=Path,
        default=None,
        metavar="RUN_DIR",
        help="run a saved model greedily on --eval-seeds instead of training",
    )
    parser.add_argument("--eval-seeds", type=int, nargs="+", default=[1000, 1001, 1002])
    # DQN, sized for an env whose whole run is thousands to hundreds of thousands of steps.
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


class StepLogger(BaseCallback):
    """Progress bar, CSV and TensorBoard rows per step; a checkpoint every few episodes."""

    def __init__(self, args: argparse.Namespace, total_steps: int, episodes: list[dict]) -> None:
        super().__init__()
        self.args, self.episodes = args, episodes
        self.bar = tqdm(total=total_steps, unit="step", dynamic_ncols=True)
        self.writer = SummaryWriter(str(args.output / "tensorboard" / "env"))
        csv_path = args.output / "steps.csv"
        new_file = not csv_path.exists()
        self.csv_file = open(csv_path, "a", newline="")  # closed at training end
        self.csv = csv.writer(self.csv_file)
        if new_file:
            self.csv.writerow(CSV_COLUMNS)
        self.episode_return, self.last_accuracy = 0.0, math.nan

    def _on_training_start(self) -> None:
        self.bar.update(self.num_timesteps)  # a resumed run starts part way

    def _on_step(self) -> bool:
        info, step = self.locals["infos"][0], self.num_timesteps
        # The env's own reward: VecNormalize hands the agent a rescaled one.
        reward = float(self.model.get_vec_normalize_env().get_original_reward()[0])
        self.episode_return += reward
        accuracy = info.get("test_accuracy", "")
        row = [
            step,
            len(self.episodes),
            info["epoch"],
            info["iteration"],
            info["lr"],
            int(self.locals["actions"][0]),
            reward,
            info["train_loss"],
            accuracy,
        ]
        self.csv.writerow(row)
        for name in ("lr", "train_loss"):
            self.writer.add_scalar(f"env/{name}", info[name], step)
        if accuracy != "":
            self.last_accuracy = accuracy
            self.writer.add_scalar("env/test_accuracy", accuracy, step)
        self.bar.update(1)
        self.bar.set_postfix(
            episode=len(self.episodes),
            epoch=info["epoch"],
            lr=f"{info['lr']:.2e}",
            loss=f"{info['train_loss']:.3f}",
        )
        if self.locals["dones"][0]:
            self.end_episode(info["diverged"])
        return True

    def end_episode(self, diverged: bool) -> None:
        episode = {
            "episode": len(self.episodes),
            "return": self.episode_return,
            "final_test_accuracy": self.last_accuracy,
            "diverged": diverged,
        }
        self.episodes.append(episode)
        self.writer.add_scalar("episode/return", self.episode_return, len(self.episodes))
        self.writer.add_scalar("episode/test_accuracy", self.last_accuracy, len(self.episodes))
        tqdm.write(
            f"episode {episode['episode']}: return {self.episode_return:+.5f}, "
            f"final test accuracy {self.last_accuracy:.3f}"
        )
        self.episode_return, self.last_accuracy = 0.0, math.nan
        if len(self.episodes) % self.args.checkpoint_every == 0:
            self.csv_file.flush()  # the log on disk reaches at least the checkpoint
            self.writer.flush()
            save_checkpoint(self.model, self.args.output / "checkpoint", self.episodes)

    def _on_training_end(self) -> None:
        self.bar.close()
        self.csv_file.close()
        self.writer.close()


def save_checkpoint(model: DQN, folder: Path, episodes: list[dict]) -> None:
    """Model, normalisation statistics, replay buffer and episode log, written atomically."""
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    model.save(partial / "model.zip")
    model.save_replay_buffer(partial / "replay_buffer.pkl")
    model.get_vec_normalize_env().save(str(partial / "vecnormalize.pkl"))
    state = {"steps": model.num_timesteps, "episodes": episodes}
    (partial / "state.json").write_text(json.dumps(state, indent=2))
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)


def truncate_csv(path: Path, steps: int) -> None:
    """Drop the rows an interrupted run wrote after its last checkpoint."""
    with open(path, newline="") as file:
        rows = list(csv.reader(file))
    kept = [rows[0]] + [row for row in rows[1:] if int(row[0]) <= steps]
    with open(path, "w", newline="") as file:
        csv.writer(file).writerows(kept)


def run_evaluation(args: argparse.Namespace, device: str) -> None:
    """The saved model, greedy (epsilon 0), on ``--eval-seeds``, with the run's env settings."""
    summary = json.loads((args.evaluate / "summary.json").read_text())
    print(f"evaluating {args.evaluate} greedily (preset: {summary['preset']}, device: {device})")
    env = LRScheduleEnv(preset=summary["preset"], **summary["env_overrides"])
    policy = SB3Policy.load(args.evaluate)
    results = []
    for record in evaluate(env, [policy], args.eval_seeds):
        final = record.test_accuracy[-1] if record.test_accuracy else math.nan
        print(
            f"seed {record.seed}: return {record.episode_return:+.5f}, final test accuracy "
            f"{final:.3f}, restarts {record.actions.count(1)} of {len(record.actions)} steps"
        )
        results.append(
            {
                "seed": record.seed,
                "return": record.episode_return,
                "final_test_accuracy": final,
                "actions": record.actions,
            }
        )
    (args.evaluate / "evaluation.json").write_text(json.dumps(results))


def main() -> None:
    args = parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.evaluate is not None:
        run_evaluation(args, device)
        return
    print(f"preset: {args.preset} (device: {device})")
    try:
        overrides = parse_overrides(args.env)
    except ValueError as error:
        raise SystemExit(f"--env: {error}") from error
    args.output.mkdir(parents=True, exist_ok=True)

    def make_env() -> gym.Env:
        return gym.make("qan_env/LRSchedule-v0", preset=args.preset, **overrides)

    probe = make_env().unwrapped
    steps_per_episode = math.ceil(probe.total_iterations / probe.config.iterations_per_step)
    total_steps = args.episodes * steps_per_episode
    # Normalisation outermost: SB3 then keeps the raw (stacked) observations in its buffer.
    stacked = VecFrameStack(DummyVecEnv([make_env]), n_stack=args.frame_stack)
    checkpoint = args.output / "checkpoint"

    if args.resume and (checkpoint / "state.json").exists():
        state = json.loads((checkpoint / "state.json").read_text())
        episodes, done_steps = state["episodes"], state["steps"]
        venv = VecNormalize.load(str(checkpoint / "vecnormalize.pkl"), stacked)
        venv.seed(args.seed + len(episodes))  # new training runs, not the first ones again
        model = DQN.load(checkpoint / "model.zip", env=venv, device="cpu")
        model.load_replay_buffer(checkpoint / "replay_buffer.pkl")
        truncate_csv(args.output / "steps.csv", done_steps)
        print(f"resuming after episode {len(episodes) - 1} ({done_steps} steps)")
    else:
        if args.resume:
            print(f"no checkpoint in {checkpoint}: starting afresh")
        episodes, done_steps = [], 0
        (args.output / "steps.csv").unlink(missing_ok=True)
        venv = VecNormalize(stacked, norm_reward=True, gamma=args.gamma)
        # The buffer holds the whole run; learning starts after a tenth of the first episode
        # (at least 64 transitions); the target network follows every 1/50 of the run.
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
            tensorboard_log=str(args.output / "tensorboard"),
            seed=args.seed,
            device="cpu",  # a small MLP; the GPU belongs to the network being trained
        )

    logger = StepLogger(args, total_steps, episodes)
    model.learn(
        total_timesteps=total_steps - done_steps,
        callback=logger,
        reset_num_timesteps=done_steps == 0,
        tb_log_name="dqn",
    )
    model.save(args.output / "model.zip")
    venv.save(str(args.output / "vecnormalize.pkl"))
    venv.close()
    summary = {
        "preset": args.preset,
        "seed": args.seed,
        "env_overrides": overrides,
        "steps": model.num_timesteps,
        "episodes": episodes,
    }
    (args.output / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"wrote {args.output}: model.zip, vecnormalize.pkl, steps.csv, summary.json")


if __name__ == "__main__":
    main()
