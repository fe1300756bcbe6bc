"""Train Stable-Baselines3's DQN to schedule the learning rate of a Wide ResNet (QAN).

    python agents/sb3_dqn.py --preset quick                 # 120 episodes, 46 min on 2 CPU cores
    python agents/sb3_dqn.py --preset paper --env download=True    # the paper, on a GPU
    python agents/sb3_dqn.py --preset quick --resume        # continue from the last checkpoint
    python agents/sb3_dqn.py --evaluate runs/sb3_dqn/quick-seed0   # greedy, on held-out seeds
    python agents/sb3_dqn.py --evaluate agents/pretrained/quick    # the policy in the repo

The default configuration, each choice with its reason (the evidence is in
docs/agent_design.md):

- the env: ``qan_env.learning_mdp`` (``--mdp learning``): a decision every 20 iterations
  (16 per quick episode), actions that scale a cosine schedule by 1/2 to 8, scale-free
  training signals and the progress t/T in the state, the change of the log held-out loss
  as the reward. The paper's MDP (``--mdp paper``: decay or restart, every iteration, the
  training loss as the reward) gives the agent thousands of near-zero rewards per episode.
- gamma 1: the rewards add up to the log of the final held-out loss over the first (the
  paper's eq. 9); any discount would weigh the early steps' loss changes more than the
  final loss that the schedule is judged by. Episodes are short (16 decisions), so the
  undiscounted returns stay small.
- rewards are not normalised: with gamma 1, VecNormalize's running return std grows over
  the run and rescales the targets under the Q-network. Observations are normalised.
- one observation per state (no frame stack): the training signals already carry
  averages over 10 and 100 iterations, and the progress t/T makes the state Markov enough.
- a small Q-network (64-64) and 4 gradient steps per env step: a quick run has ~2,000
  transitions; more gradient steps use each costly transition more.
- ``--episodes``: 120 on quick (what fits the hour; 40 episodes with factors 1/4 to 4,
  run A, scored about as well on the validation seeds), 10 on paper (the paper's count),
  2 on tiny.

The logs and outputs keep the env's own rewards. Outputs, in ``--output`` (default
``runs/sb3_dqn/<preset>-seed<seed>``): ``config.json`` (the whole env config, these settings
and the package version, written first), ``model.zip``, ``vecnormalize.pkl`` and
``normalization.json`` (the trained agent), ``steps.csv`` (a row per env step: the env of
``--n-envs`` and its episode number, lr, action, reward, loss, test accuracy at epoch
ends), ``summary.json`` (each episode's env, return and final test accuracy),
``tensorboard/`` (the lr, loss and accuracy of env 0) and ``checkpoint/`` (model,
normalisation statistics, replay buffer and random states after every
``--checkpoint-every`` episodes: ``--resume`` continues exactly as the uninterrupted run
would have).
``--evaluate`` rebuilds the env from ``config.json``, never from today's preset.
``model.zip``, ``vecnormalize.pkl`` and the replay buffer are SB3's pickle-based formats.
``--evaluate`` reads none of their pickles (the Q-network's weights with
``weights_only=True``, the statistics from ``normalization.json``); ``--resume`` loads them
only if they match the ``checksums.json`` written with them, or with ``--trust``.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import functools
import io
import json
import math
import os
import random
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, TextIO

import gymnasium as gym
import numpy as np
import torch
import tyro
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.vec_env import (
    DummyVecEnv,
    SubprocVecEnv,
    VecEnv,
    VecFrameStack,
    VecNormalize,
)
from tqdm import tqdm

import qan_env
from qan_env.config import EnvConfig, agent_env, parse_overrides
from qan_env.evaluation import HELD_OUT_SEEDS, SB3Policy, evaluate
from qan_env.files import replace_atomically
from qan_env.run_folder import (
    CHECKPOINT_FOLDER,
    Normalization,
    changed_files,
    read_run_config,
    saved_env,
    write_atomically,
    write_checksums,
    write_normalization,
    write_run_config,
)
from qan_env.sb3 import SB3VectorEnv
from qan_env.training.config import resolve_device

gym.register_envs(qan_env)


@dataclass
class Args:
    """Train SB3's DQN to schedule the learning rate of a Wide ResNet, or evaluate a run."""

    preset: Literal["paper", "quick", "tiny"] | None = None
    """env preset; None: paper with CUDA, else quick"""
    mdp: Literal["learning", "paper"] = "learning"
    """the env's MDP options: "learning" (qan_env.learning_mdp) or "paper" (the paper's)"""
    env: Annotated[list[str], tyro.conf.UseAppendAction] = field(default_factory=list)
    """override an env setting, FIELD=VALUE, such as --env epochs=5 (after --mdp's)"""
    episodes: int | None = None
    """training runs; None: 120 on quick, 10 on paper, 2 on tiny (DEFAULT_EPISODES)"""
    seed: int = 0
    """seed of the first training episode, the agent and its exploration"""
    output: Path | None = None
    """run folder; None: runs/sb3_dqn/<preset>-seed<seed> (with --evaluate: where
    evaluation.json goes; None: the evaluated folder)"""
    checkpoint_every: int = 1
    """episodes between checkpoints"""
    checkpoint_steps: int = 0
    """also a checkpoint every this many env steps inside episodes (0: at episode ends only),
    with the env's own state: a long episode (the paper preset's 19,500 steps) goes on
    where it stopped instead of starting again"""
    resume: bool = False
    """continue from --output's checkpoint"""
    evaluate: Path | None = None
    """a run folder: run its model greedily on --eval-seeds instead of training"""
    eval_seeds: tuple[int, ...] = HELD_OUT_SEEDS
    """seeds of the greedy evaluation: by default the held-out seeds"""
    n_envs: int = 1
    """training runs at once (env i seeded --seed + i); --episodes counts all of them, and
    every checkpoint holds each env's running episode"""
    vectorization: Literal["native", "subprocess"] = "native"
    """how --n-envs runs: "native", the vector env (on CUDA the runs train as one batched
    computation; on the CPU one after the other); "subprocess", SB3's SubprocVecEnv, one
    process per run (with device=auto, run i on GPU i % n_gpus)"""
    trust: bool = False
    """load SB3's pickle-based files (which can run code) where the pickle-free ones are
    missing (--evaluate of an older run) or do not match their checksums (--resume)"""
    # DQN, sized for an env whose whole run is thousands to hundreds of thousands of steps.
    frame_stack: int = 1
    """observations in a state (the paper's state history: 4)"""
    gamma: float = 1.0
    """discount factor"""
    n_steps: int = 1
    """n-step returns (an episode's length or more: Monte Carlo returns)"""
    normalize_reward: bool = False
    """scale rewards by the running std of the discounted return (VecNormalize)"""
    hidden: tuple[int, ...] = (64, 64)
    """hidden layer sizes of the Q-network"""
    learning_rate: float = 5e-4
    """Adam learning rate of the Q-network"""
    batch_size: int = 64
    """transitions per gradient step"""
    gradient_steps: int = 4
    """gradient steps per env step"""
    exploration_fraction: float = 0.5
    """share of training over which epsilon falls from 1 to --final-epsilon"""
    final_epsilon: float = 0.05
    """epsilon after the exploration fraction"""


DEFAULT_EPISODES = {"paper": 10, "quick": 120, "tiny": 2}
#: A checkpoint's files that only SB3's pickle-based loaders read; checksums.json records them.
PICKLED_FILES = ("model.zip", "replay_buffer.pkl", "vecnormalize.pkl")

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
]


def dqn_kwargs(args: Args, steps_per_episode: int) -> dict[str, Any]:
    """SB3 DQN's settings for a run of ``args.episodes`` episodes.

    The library defaults (a 1e6 buffer, a target update every 10,000 steps) do not fit an
    env whose whole run is a few thousand steps: the buffer holds the whole run; learning
    starts after a tenth of the first episode (at least 64 transitions); ``--gradient-steps``
    after every env step (times ``--n-envs``: as many per transition whatever the number of
    envs); the target network follows every 1/50 of the run.
    """
    total_steps = args.episodes * steps_per_episode
    return {
        "learning_rate": args.learning_rate,
        "buffer_size": total_steps,
        "learning_starts": max(64, steps_per_episode // 10),
        "batch_size": args.batch_size,
        "gamma": args.gamma,
        "n_steps": args.n_steps,
        "train_freq": 1,
        "gradient_steps": args.gradient_steps * args.n_envs,
        "target_update_interval": min(5000, max(50, total_steps // 50)),
        "exploration_fraction": args.exploration_fraction,
        "exploration_final_eps": args.final_epsilon,
        "policy_kwargs": {"net_arch": list(args.hidden)},
        "seed": args.seed,
        "device": "cpu",  # a small MLP; the GPU belongs to the network being trained
    }


def original_rewards(model: DQN) -> np.ndarray:
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


# SB3's ProgressBarCallback needs `rich` and shows no env state; this is tqdm with the run's.
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
                self.end_episode(index, info["diverged"])
        return True

    def end_episode(self, index: int, diverged: bool) -> None:
        episode_return, accuracy = self.returns[index], self.last_accuracies[index]
        episode = {
            "episode": len(self.episodes),
            "env": index,
            "env_episode": episodes_of(self.episodes, index),
            "return": episode_return,
            "final_test_accuracy": accuracy,
            "diverged": diverged,
        }
        self.episodes.append(episode)
        # Written with the next dump of SB3's log, at this step.
        self.logger.record("episode/return", episode_return)
        self.logger.record("episode/final_test_accuracy", accuracy)
        tqdm.write(
            f"episode {episode['episode']}: return {episode_return:+.5f}, "
            f"final test accuracy {accuracy:.3f}"
        )
        self.returns[index], self.last_accuracies[index] = 0.0, math.nan


# SB3's CheckpointCallback saves every n steps under step-numbered names; a run here needs
# one checkpoint at episode ends (episodes that diverge end early) with the episode log.
class EpisodeStart(gym.Wrapper):
    """Records the env's random state just before each reset: a checkpoint keeps the one of
    the episode that was starting, so a resumed run restarts it from the very same state."""

    def reset(self, **kwargs):
        self.random_state = copy.deepcopy(self.unwrapped.np_random.bit_generator.state)
        return super().reset(**kwargs)


class EpisodeCheckpoint(BaseCallback):
    """Model, normalisation statistics, replay buffer, episode log and every random state
    every few episodes (and every ``steps`` env steps, with the running episodes' states).

    Saved when the next step begins (``on_rollout_start``; after the last step, when
    training ends), not at the step itself: by then SB3 has stored that step's transition
    and trained on it, so the checkpoint is a point the uninterrupted run passes through.
    With one env, a checkpoint at an episode's end holds no episode (the next starts again
    from its first state); with several, some env is always inside an episode, so every
    checkpoint holds each env's running episode.
    """

    def __init__(
        self,
        folder: Path,
        every: int,
        steps: int,
        log: EpisodeLog,
        env: EpisodeStart | None,
        frames: VecFrameStack,
    ) -> None:
        super().__init__()
        self.folder, self.every, self.steps, self.log = folder, every, steps, log
        self.env, self.frames = env, frames
        self.due = self.in_episode = False
        self.episodes_saved = len(log.episodes)

    def _on_step(self) -> bool:
        dones = self.locals["dones"]
        self.in_episode = self.env is None or not dones[0]
        ended = len(self.log.episodes) >= self.episodes_saved + self.every
        if ended:
            self.episodes_saved = len(self.log.episodes)
        # SB3 counts a step of each env: has the count passed a multiple of --checkpoint-steps?
        passed = self.steps > 0 and (
            self.num_timesteps // self.steps > (self.num_timesteps - len(dones)) // self.steps
        )
        self.due = (dones.any() and ended) or passed
        return True

    def _on_rollout_start(self) -> None:
        if not self.due:
            return
        state = {
            "steps": self.model.num_timesteps,
            "episodes": self.log.episodes,
            "random_state": random_states(self.model, self.env),
        }
        if self.in_episode:
            state["episode_in_progress"] = {
                "returns": self.log.returns,
                "last_accuracies": self.log.last_accuracies,
            }
        save_checkpoint(
            self.model, self.folder, state, self.save_episodes if self.in_episode else None
        )
        self.due = False

    def save_episodes(self, folder: Path) -> None:
        """The running episodes: each env's state (``torch.save``, read back with
        ``weights_only``) and the agent's view of them (no pickle: ``allow_pickle=False``)."""
        envs = self.frames.venv
        for index in range(envs.num_envs):
            envs.env_method("save", str(folder / f"env{index}.pt"), indices=[index])
        np.savez(
            folder / "rollout.npz",
            stacked=self.frames.stacked_obs.stacked_obs,
            last_obs=self.model._last_obs,
            last_original_obs=self.model._last_original_obs,
        )

    def _on_training_end(self) -> None:
        self._on_rollout_start()  # after the last training step


def resume_episodes(
    checkpoint: Path, state: dict, model: DQN, frames: VecFrameStack
) -> tuple[list[float], list[float]]:
    """Put the episodes a checkpoint cut back in place: each env's state, the stacked and
    last observations SB3 acts from. Returns each env's episode return and last test
    accuracy so far."""
    envs = frames.venv
    for index in range(envs.num_envs):
        envs.env_method("load", str(checkpoint / f"env{index}.pt"), indices=[index])
    with np.load(checkpoint / "rollout.npz", allow_pickle=False) as arrays:
        frames.stacked_obs.stacked_obs[...] = arrays["stacked"]
        model._last_obs = arrays["last_obs"]
        model._last_original_obs = arrays["last_original_obs"]
    progress = state["episode_in_progress"]
    return progress["returns"], progress["last_accuracies"]


def random_states(model: DQN, env: EpisodeStart | None) -> dict[str, Any]:
    """Every random state the rest of the run draws from, as JSON: Python's, numpy's and
    torch's global ones (SB3 draws exploration and replay batches from numpy's), the action
    space's (random actions) and the one env's at the start of its running episode (with
    several envs, each env's state holds its own)."""
    numpy_state = np.random.get_state(legacy=False)  # noqa: NPY002 (SB3 draws from it)
    numpy_state["state"]["key"] = numpy_state["state"]["key"].tolist()
    return {
        "python": random.getstate(),
        "numpy": numpy_state,
        "torch": torch.get_rng_state().tolist(),
        "action_space": model.action_space.np_random.bit_generator.state,
        "episode_start": None if env is None else env.random_state,
    }


def restore_random_states(states: dict[str, Any], model: DQN, env: EpisodeStart | None) -> None:
    """``random_states``' inverse; the env's takes effect at its next reset."""
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = states["numpy"]
    numpy_state["state"]["key"] = np.array(numpy_state["state"]["key"], dtype=np.uint32)
    np.random.set_state(numpy_state)  # noqa: NPY002 (SB3 draws from it)
    torch.set_rng_state(torch.tensor(states["torch"], dtype=torch.uint8))
    model.action_space.np_random.bit_generator.state = states["action_space"]
    if env is not None:
        env.unwrapped.np_random.bit_generator.state = states["episode_start"]


def save_checkpoint(
    model: DQN,
    folder: Path,
    state: dict[str, Any],
    save_more: Callable[[Path], None] | None = None,
) -> None:
    """Written whole to a side folder (``state.json`` last), then swapped in by two renames;
    ``recover_checkpoint`` finishes a swap that a kill cut short."""
    partial, old = (folder.with_name(folder.name + suffix) for suffix in (".partial", ".old"))
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    model.save(partial / "model.zip")
    model.save_replay_buffer(partial / "replay_buffer.pkl")
    model.get_vec_normalize_env().save(str(partial / "vecnormalize.pkl"))
    save_normalization(model.get_vec_normalize_env(), partial)
    for name in PICKLED_FILES:
        with open(partial / name, "rb") as file:
            os.fsync(file.fileno())
    write_checksums(partial, list(PICKLED_FILES))
    if save_more is not None:
        save_more(partial)
    write_atomically(partial / "state.json", json.dumps(state, indent=2))  # complete now
    if folder.exists():
        folder.rename(old)
    partial.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def save_normalization(venv: VecNormalize, folder: Path) -> None:
    """The observation statistics as JSON, beside SB3's pickle: evaluation reads these."""
    statistics = Normalization(venv.obs_rms.mean, venv.obs_rms.var, venv.clip_obs, venv.epsilon)
    write_normalization(folder, statistics)


def recover_checkpoint(folder: Path) -> None:
    """The newest whole checkpoint in ``folder``, whatever moment a kill cut the last save:
    a complete side folder (its ``state.json`` written) is swapped in, an incomplete one
    dropped, and the previous checkpoint put back if the swap stopped half way."""
    partial, old = (folder.with_name(folder.name + suffix) for suffix in (".partial", ".old"))
    if (partial / "state.json").is_file():
        if folder.exists():
            shutil.rmtree(old, ignore_errors=True)
            folder.rename(old)
        partial.rename(folder)
    shutil.rmtree(partial, ignore_errors=True)
    if not folder.exists() and old.exists():
        old.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


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
        raise SystemExit(
            f"--resume: {path} does not hold steps 1 to {steps} of the checkpoint: it was "
            f"changed by hand or belongs to another run; move it away to resume without it"
        )
    lines = io.StringIO()
    csv.writer(lines, lineterminator="\n").writerows([header, *kept])
    write_atomically(path, lines.getvalue())


def env_config(args: Args) -> EnvConfig:
    """The env of ``--preset``, ``--mdp`` and ``--env``, checked before anything is written."""
    try:
        config = agent_env(args.preset, args.mdp, args.env)
        resolve_device(config.device)  # a GPU this machine lacks is refused here too
        return config
    except ValueError as error:
        raise SystemExit(f"--env: {error}") from error


def run_evaluation(args: Args) -> None:
    """The saved model, greedy (epsilon 0), on ``--eval-seeds``, on the run's own env."""
    try:
        run = read_run_config(args.evaluate)
        config = saved_env(args.evaluate, parse_overrides(args.env))
        env = gym.make("qan_env/LRSchedule-v0", config=config)
        policy = SB3Policy.load(args.evaluate, trust=args.trust)
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f"--evaluate: {error}") from error
    preset = run.agent["preset"]
    print(
        f"evaluating {args.evaluate} greedily (preset: {preset} as saved in "
        f"{args.evaluate / 'config.json'}, device: {env.unwrapped.device})"
    )
    if args.env:
        print(f"with --env overrides on top of the saved config: {', '.join(args.env)}")
    try:
        today = env_config(Args(**{**run.agent, "output": None, "evaluate": None}))
        changed = [
            f.name
            for f in dataclasses.fields(today)
            if getattr(today, f.name) != getattr(run.env, f.name)
        ]
    except (ValueError, TypeError, SystemExit):
        changed = ["(it can no longer be made)"]
    if changed:
        print(
            f"note: preset {preset!r} has changed since this run ({', '.join(changed)}); "
            f"evaluating on the run's own saved config"
        )
    if policy.note:
        print(policy.note)
    names = env.unwrapped.action_names
    results = []
    for record in evaluate(env, [policy], list(args.eval_seeds)):
        final = record.test_accuracy[-1] if record.test_accuracy else math.nan
        counts = ", ".join(f"{name} {record.actions.count(i)}" for i, name in enumerate(names))
        print(
            f"seed {record.seed}: return {record.episode_return:+.5f}, final test accuracy "
            f"{final:.3f}, actions: {counts}"
        )
        results.append(
            {
                "seed": record.seed,
                "return": record.episode_return,
                "final_test_accuracy": final,
                "actions": record.actions,
            }
        )
    folder = args.output or args.evaluate
    folder.mkdir(parents=True, exist_ok=True)
    path = write_atomically(folder / "evaluation.json", json.dumps(results, indent=2) + "\n")
    print(f"wrote {path}")


def make_envs(config: EnvConfig, args: Args) -> tuple[EpisodeStart | None, VecEnv]:
    """SB3's vector of ``--n-envs`` envs, and the one env of a single-env run (which
    checkpoints save and restore; None with more than one)."""
    if args.n_envs == 1:
        env = EpisodeStart(gym.make("qan_env/LRSchedule-v0", config=config))
        return env, DummyVecEnv([lambda: env])
    if args.vectorization == "native":
        return None, SB3VectorEnv(args.n_envs, config=config)
    threads = max(1, torch.get_num_threads() // args.n_envs)  # the cores, shared out
    workers = [
        functools.partial(make_worker, config, index, threads) for index in range(args.n_envs)
    ]
    return None, SubprocVecEnv(workers)


def make_worker(config: EnvConfig, index: int, threads: int) -> gym.Env:
    """Env ``index`` of ``--vectorization subprocess``, made in its own process: on GPU
    ``index % n_gpus`` with device=auto, with ``threads`` torch threads on the CPU."""
    torch.set_num_threads(threads)
    return gym.make("qan_env:qan_env/LRSchedule-v0", config=config, worker_index=index)


def train(args: Args) -> None:
    config = env_config(args)
    if args.n_envs < 1:
        raise SystemExit(f"--n-envs {args.n_envs} is not allowed: 1 or more runs at once")
    # SB3 seeds env i of --n-envs with --seed + i.
    if set(range(args.seed, args.seed + args.n_envs)) & set(HELD_OUT_SEEDS):
        raise SystemExit(
            f"--seed {args.seed} (env i: --seed + i) is a held-out evaluation seed "
            f"({HELD_OUT_SEEDS[0]}-{HELD_OUT_SEEDS[-1]}): training on it would leak into "
            f"the evaluation"
        )
    print(f"preset: {args.preset} (device: {resolve_device(config.device)})")
    args.output.mkdir(parents=True, exist_ok=True)
    settings = {**dataclasses.asdict(args), "output": str(args.output), "evaluate": None}
    checkpoint = args.output / CHECKPOINT_FOLDER
    if args.resume:
        recover_checkpoint(checkpoint)
    resuming = args.resume and (checkpoint / "state.json").exists()
    if resuming:
        try:
            saved = read_run_config(args.output)
        except FileNotFoundError as error:
            raise SystemExit(f"--resume: {error}") from error
        if saved.env != config or saved.agent.get("n_envs", 1) != args.n_envs:
            raise SystemExit(
                f"--resume: {args.output} ran another env config or number of envs (its "
                f"config.json): resume it with the arguments it was started with"
            )
    write_run_config(args.output, config, settings)

    steps_per_episode = config.steps_per_episode
    total_steps = args.episodes * steps_per_episode
    # Normalisation outermost: SB3 then keeps the raw (stacked) observations in its buffer.
    env, envs = make_envs(config, args)
    stacked = VecFrameStack(envs, n_stack=args.frame_stack)
    # each env's running episode's return and last test accuracy
    in_progress = ([0.0] * args.n_envs, [math.nan] * args.n_envs)
    if resuming:
        if (changed := changed_files(checkpoint)) and not args.trust:
            raise SystemExit(
                f"--resume: {checkpoint} holds files that are not the ones this run wrote "
                f"({', '.join(changed)}); they are pickles, which can run code. Pass --trust "
                f"to load them anyway"
            )
        state = json.loads((checkpoint / "state.json").read_text())
        episodes, done_steps = state["episodes"], state["steps"]
        venv = VecNormalize.load(str(checkpoint / "vecnormalize.pkl"), stacked)
        # Loaded without the env, so that SB3 does not seed it again with --seed (which
        # would run the first episodes again), then every random state put back: the run
        # goes on as if it had not been interrupted.
        model = DQN.load(checkpoint / "model.zip", device="cpu")
        model.set_env(venv)
        model.load_replay_buffer(checkpoint / "replay_buffer.pkl")
        restore_random_states(state["random_state"], model, env)
        # The cut episode again, from its first state. SB3 has no public way to start
        # from a given observation: its own reset would count this one twice in the
        # normalisation statistics, which already hold it.
        venv.training = False
        model._last_obs = venv.reset()
        model._last_original_obs = venv.get_original_obs()
        venv.training = True
        if "episode_in_progress" in state:  # cut mid-way: it goes on from there
            in_progress = resume_episodes(checkpoint, state, model, stacked)
        truncate_csv(args.output / "steps.csv", done_steps)
        if args.n_envs > 1:
            where = f"inside the {args.n_envs} envs' episodes, after episode"
        else:
            where = "inside episode" if "episode_in_progress" in state else "after episode"
        episode = len(episodes) if where == "inside episode" else len(episodes) - 1
        print(f"resuming {where} {episode} ({done_steps} steps)")
    else:
        if args.resume:
            print(f"no checkpoint in {checkpoint}: starting afresh")
        episodes, done_steps = [], 0
        (args.output / "steps.csv").unlink(missing_ok=True)
        venv = VecNormalize(stacked, norm_reward=args.normalize_reward, gamma=args.gamma)
        model = DQN(
            "MlpPolicy",
            venv,
            tensorboard_log=str(args.output / "tensorboard"),
            **dqn_kwargs(args, steps_per_episode),
        )

    log = EpisodeLog(episodes, args.n_envs)
    log.returns, log.last_accuracies = in_progress
    callbacks = [
        ProgressBar(total_steps, episodes),
        StepCSV(args.output / "steps.csv", episodes),
        EnvScalars(),
        log,  # before the checkpoint, which saves its episode list
    ]
    callbacks.append(
        EpisodeCheckpoint(
            checkpoint, args.checkpoint_every, args.checkpoint_steps, log, env, stacked
        )
    )
    model.learn(
        total_timesteps=total_steps - done_steps,
        callback=CallbackList(callbacks),
        log_interval=1,  # SB3's own episode statistics, every episode
        reset_num_timesteps=done_steps == 0,
        tb_log_name="dqn",
    )
    # Each to a side name, then renamed: model.zip, which marks the run as finished for
    # --evaluate, comes last.
    replace_atomically(args.output / "vecnormalize.pkl", lambda path: venv.save(str(path)))
    save_normalization(venv, args.output)
    replace_atomically(args.output / "model.zip", model.save)
    venv.close()
    summary = {"steps": model.num_timesteps, "episodes": episodes}
    write_atomically(args.output / "summary.json", json.dumps(summary, indent=2) + "\n")
    print(
        f"wrote {args.output}: config.json, model.zip, vecnormalize.pkl, normalization.json, "
        f"steps.csv, summary.json"
    )


def main() -> None:
    args = tyro.cli(Args, description=__doc__.split("\n")[0])
    if args.evaluate is not None:
        run_evaluation(args)
        return
    if args.preset is None:
        args.preset = "paper" if torch.cuda.is_available() else "quick"
    if args.episodes is None:
        args.episodes = DEFAULT_EPISODES[args.preset]
    if args.output is None:
        args.output = Path("runs/sb3_dqn") / f"{args.preset}-seed{args.seed}"
    train(args)


if __name__ == "__main__":
    main()
