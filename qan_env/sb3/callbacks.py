"""The logging callbacks of an SB3 agent's run, small hooks composed with ``CallbackList``.

- ``ProgressBar``: a tqdm bar over env steps with the episode, epoch, lr and loss (SB3's
  own ``ProgressBarCallback`` needs ``rich`` and shows no env state);
- ``StepCSV``: a row of ``steps.csv`` per env step (``truncate_csv`` cuts it back to a
  checkpoint on resume);
- ``EnvScalars``: the env's lr, loss and test accuracy in SB3's TensorBoard log;
- ``EpisodeLog``: each finished episode's return and final test accuracy (and its instance
  and drawn share of noisy labels, where it has them).

Every callback logs the env's own rewards, not the ones ``VecNormalize`` hands the agent.
"""

from __future__ import annotations

import csv
import io
import math
import sys
from pathlib import Path
from typing import TextIO

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from tqdm import tqdm

from qan_env.files import write_atomically

CSV_COLUMNS = [
    "step",
    "env",
    "episode",
    "epoch",
    "iteration",
    "lr",
    "action",
    "reward",
    "train_loss",
    "test_accuracy",
    "instance",
]


def original_rewards(model: BaseAlgorithm) -> np.ndarray:
    """Each env's own reward of the last step (VecNormalize hands the agent rescaled ones)."""
    return model.get_vec_normalize_env().get_original_reward()


class LogLines:
    """A file for tqdm that turns its in-place redraws into whole lines, for a log."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        line = text.replace("\r", "").strip()
        if line:
            self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()


class ProgressBar(BaseCallback):
    """A bar over env steps with the episode, epoch, lr and loss."""

    def __init__(self, total_steps: int, episodes: list[dict]) -> None:
        super().__init__()
        self.total_steps, self.episodes = total_steps, episodes

    def _on_training_start(self) -> None:
        # In a terminal, a live bar; in a log file (nohup, CI), a plain line every minute.
        terminal = sys.stderr.isatty()
        self.bar = tqdm(
            total=self.total_steps,
            initial=self.num_timesteps,
            unit="step",
            file=sys.stderr if terminal else LogLines(sys.stderr),
            ncols=None if terminal else 120,
            mininterval=0.1 if terminal else 60,
        )

    def _on_step(self) -> bool:
        info = self.locals["infos"][0]
        self.bar.set_postfix(
            episode=len(self.episodes),
            epoch=info["epoch"],
            lr=f"{info['lr']:.2e}",
            loss=f"{info['train_loss']:.3f}",
            refresh=False,  # the bar redraws at its own pace (update)
        )
        self.bar.update(self.training_env.num_envs)
        return True

    def _on_training_end(self) -> None:
        self.bar.close()


def number(value: float) -> str:
    """7 significant digits (float32's), and 0 for -0.0: ``0.0773781``, not
    ``0.07737809374999999``."""
    return f"{value + 0.0:.7g}"


def episodes_of(episodes: list[dict], env: int) -> int:
    """How many episodes env ``env`` has finished: the number of its running one."""
    return sum(episode.get("env", 0) == env for episode in episodes)


class StepCSV(BaseCallback):
    """A row of ``steps.csv`` per env step, line-buffered, so the file is whole at any kill."""

    def __init__(self, path: Path, episodes: list[dict]) -> None:
        super().__init__()
        self.path, self.episodes = path, episodes

    def _on_training_start(self) -> None:
        new_file = not self.path.exists()
        self.file = open(self.path, "a", newline="", buffering=1)  # closed at training end
        self.csv = csv.writer(self.file, lineterminator="\n")
        if new_file:
            self.csv.writerow(CSV_COLUMNS)

    def _on_step(self) -> bool:
        infos, rewards = self.locals["infos"], original_rewards(self.model)
        first = self.num_timesteps - len(infos)  # SB3 counts a step of each env
        for index, info in enumerate(infos):
            self.csv.writerow(
                [
                    first + index + 1,
                    index,
                    episodes_of(self.episodes, index),
                    info["epoch"],
                    info["iteration"],
                    number(info["lr"]),
                    int(self.locals["actions"][index]),
                    number(rewards[index]),
                    number(info["train_loss"]),
                    number(info["test_accuracy"]) if "test_accuracy" in info else "",
                    info.get("instance", ""),  # of an instance set; empty: the env's own run
                ]
            )
        return True

    def _on_training_end(self) -> None:
        self.file.close()


class EnvScalars(BaseCallback):
    """The env's lr, loss and test accuracy in SB3's own TensorBoard log, every step."""

    def _on_step(self) -> bool:
        info = self.locals["infos"][0]
        for name in ("lr", "train_loss", "test_accuracy"):
            if name in info:
                self.logger.record(f"env/{name}", info[name])
        self.logger.dump(self.num_timesteps)
        return True


class EpisodeLog(BaseCallback):
    """Each finished episode's return (the env's own rewards) and final test accuracy."""

    def __init__(self, episodes: list[dict], n_envs: int = 1) -> None:
        super().__init__()
        self.episodes = episodes
        self.returns, self.last_accuracies = [0.0] * n_envs, [math.nan] * n_envs

    def _on_step(self) -> bool:
        rewards = original_rewards(self.model)
        for index, info in enumerate(self.locals["infos"]):
            self.returns[index] += float(rewards[index])
            accuracy = info.get("test_accuracy", self.last_accuracies[index])
            self.last_accuracies[index] = accuracy
            if self.locals["dones"][index]:
                self.end_episode(index, info)
        return True

    def end_episode(self, index: int, info: dict) -> None:
        """Record env ``index``'s episode, which ``info`` (its last step's) ends: with the
        instance it ran and the share of noisy labels it drew, where the env has them."""
        episode_return, accuracy = self.returns[index], self.last_accuracies[index]
        episode = {
            "episode": len(self.episodes),
            "env": index,
            "env_episode": episodes_of(self.episodes, index),
            "return": episode_return,
            "final_test_accuracy": accuracy,
            "diverged": info["diverged"],
        }
        episode |= {key: info[key] for key in ("instance", "label_noise") if key in info}
        instance = episode.get("instance")
        self.episodes.append(episode)
        # Written with the next dump of SB3's log, at this step.
        self.logger.record("episode/return", episode_return)
        self.logger.record("episode/final_test_accuracy", accuracy)
        on = "" if instance is None else f" on {instance}"
        tqdm.write(
            f"episode {episode['episode']}{on}: return {episode_return:+.5f}, "
            f"final test accuracy {accuracy:.3f}"
        )
        self.returns[index], self.last_accuracies[index] = 0.0, math.nan


def truncate_csv(path: Path, steps: int) -> None:
    """Keep the whole rows up to the last checkpoint's step: rows written after it, and a
    row a kill cut in half, go. Rewritten atomically."""
    with open(path, newline="") as file:
        rows = list(csv.reader(file))
    header = rows[0]
    kept = [
        row
        for row in rows[1:]
        if len(row) == len(header) and row[0].isdigit() and int(row[0]) <= steps
    ]
    if [int(row[0]) for row in kept] != list(range(1, steps + 1)):
        raise ValueError(
            f"{path} does not hold steps 1 to {steps} of the checkpoint: it was "
            f"changed by hand or belongs to another run; move it away to resume without it"
        )
    lines = io.StringIO()
    csv.writer(lines, lineterminator="\n").writerows([header, *kept])
    write_atomically(path, lines.getvalue())
