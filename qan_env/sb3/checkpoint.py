"""An SB3 DQN run's checkpoints and its exact resume.

``checkpoint/`` holds what the rest of a run depends on: SB3's model, replay buffer and
``VecNormalize`` (its pickle-based formats, with their sha256 in ``checksums.json``), the
normalisation statistics as JSON, the episode log, every random state the rest of the run
draws from (``random_states``) and, when a checkpoint falls inside episodes, each env's
running episode (``LRScheduleEnv.save``) and the observations SB3 acts from.
``load_checkpoint`` puts all of it back, so that a resumed run goes on exactly as the
uninterrupted one would have (SB3 has no public API for some of it: the places that reach
into its attributes say so).

A checkpoint is written whole to a side folder and swapped in by two renames
(``save_checkpoint``); ``recover_checkpoint`` finishes or undoes a swap a kill cut short.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecFrameStack, VecNormalize

from qan_env.files import replace_atomically, write_atomically
from qan_env.sb3.callbacks import EpisodeLog
from qan_env.sb3.normalization import Normalization, write_normalization

CHECKPOINT_FOLDER = "checkpoint"
MODEL_FILE = "model.zip"
CHECKSUM_FILE = "checksums.json"
STATE_FILE = "state.json"
#: A checkpoint's files that only SB3's pickle-based loaders read; checksums.json records them.
PICKLED_FILES = (MODEL_FILE, "replay_buffer.pkl", "vecnormalize.pkl")


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_checksums(folder: Path, names: list[str]) -> Path:
    """The sha256 of each named file of ``folder``, recorded when they are written."""
    sums = {name: file_digest(Path(folder) / name) for name in names}
    return write_atomically(Path(folder) / CHECKSUM_FILE, json.dumps(sums, indent=2) + "\n")


def changed_files(folder: Path) -> list[str]:
    """The files whose content is not what ``checksums.json`` recorded (all of them when
    there is no record)."""
    path = Path(folder) / CHECKSUM_FILE
    if not path.is_file():
        return ["(no checksums.json)"]
    sums = json.loads(path.read_text())
    return [
        name
        for name, digest in sums.items()
        if not (Path(folder) / name).is_file() or file_digest(Path(folder) / name) != digest
    ]


def model_folder(folder: Path) -> tuple[Path, str]:
    """Where a run's trained model lies, and a note when it is not the finished one: the
    run folder once training ended, else its last checkpoint (an interrupted run)."""
    folder = Path(folder)
    if (folder / MODEL_FILE).is_file():
        return folder, ""
    checkpoint = folder / CHECKPOINT_FOLDER
    if (checkpoint / MODEL_FILE).is_file():
        state = json.loads((checkpoint / STATE_FILE).read_text())
        return checkpoint, (
            f"note: {folder} is unfinished (no {MODEL_FILE}): evaluating its last checkpoint, "
            f"after {len(state['episodes'])} episodes ({state['steps']} steps); "
            f"--resume the run to finish it"
        )
    raise FileNotFoundError(
        f"{folder} is unfinished and has no checkpoint yet (no {MODEL_FILE}, no "
        f"{CHECKPOINT_FOLDER}/{MODEL_FILE}): --resume the run, or wait for its first checkpoint"
    )


def save_model(model: DQN, venv: VecNormalize, folder: Path) -> None:
    """The trained agent into ``folder``, each file to a side name and renamed:
    ``vecnormalize.pkl``, ``normalization.json``, then ``model.zip`` (whose presence marks
    a finished run)."""
    replace_atomically(folder / "vecnormalize.pkl", lambda path: venv.save(str(path)))
    write_normalization(folder, Normalization.of(venv))
    replace_atomically(folder / MODEL_FILE, model.save)


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
            # the discounted returns reward normalisation divides by (SB3 does not save them)
            reward_returns=self.model.get_vec_normalize_env().returns,
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
        if "reward_returns" in arrays:  # checkpoints of older versions lack them
            model.get_vec_normalize_env().returns = arrays["reward_returns"].copy()
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


def _remove(path: Path) -> None:
    """``path`` gone, whatever it is: a folder with its files, a file, or a link (the link
    itself, never what it points at)."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def save_checkpoint(
    model: DQN,
    folder: Path,
    state: dict[str, Any],
    save_more: Callable[[Path], None] | None = None,
) -> None:
    """Written whole to a side folder (``state.json`` last), then swapped in by two renames;
    ``recover_checkpoint`` finishes a swap that a kill cut short."""
    partial, old = (folder.with_name(folder.name + suffix) for suffix in (".partial", ".old"))
    _remove(partial)
    partial.mkdir(parents=True)
    model.save(partial / MODEL_FILE)
    model.save_replay_buffer(partial / "replay_buffer.pkl")
    model.get_vec_normalize_env().save(str(partial / "vecnormalize.pkl"))
    write_normalization(partial, Normalization.of(model.get_vec_normalize_env()))
    for name in PICKLED_FILES:
        with open(partial / name, "rb") as file:
            os.fsync(file.fileno())
    write_checksums(partial, list(PICKLED_FILES))
    if save_more is not None:
        save_more(partial)
    write_atomically(partial / STATE_FILE, json.dumps(state, indent=2))  # complete now
    _remove(old)
    if folder.exists() or folder.is_symlink():  # a link is moved aside, never written into
        folder.rename(old)
    partial.rename(folder)
    _remove(old)


def recover_checkpoint(folder: Path) -> None:
    """The newest whole checkpoint in ``folder``, whatever moment a kill cut the last save:
    a complete side folder (its ``state.json`` written) is swapped in, an incomplete one
    dropped, and the previous checkpoint put back if the swap stopped half way. Links in
    those places are removed, never followed: a run folder's files are its own."""
    partial, old = (folder.with_name(folder.name + suffix) for suffix in (".partial", ".old"))
    if not partial.is_symlink() and (partial / STATE_FILE).is_file():
        if folder.exists() or folder.is_symlink():
            _remove(old)
            folder.rename(old)
        partial.rename(folder)
    _remove(partial)
    if not folder.exists() and not folder.is_symlink() and old.is_dir() and not old.is_symlink():
        old.rename(folder)
    _remove(old)


@dataclass
class Resumed:
    """A run put back as its checkpoint left it."""

    model: DQN
    venv: VecNormalize
    episodes: list[dict]
    """The finished episodes' log."""
    steps: int
    """Env steps done (of all envs)."""
    in_progress: tuple[list[float], list[float]] | None
    """Each env's running episode's return and last test accuracy so far; None when the
    checkpoint fell between episodes (the next one starts from its first state)."""


def load_checkpoint(
    folder: Path, frames: VecFrameStack, env: EpisodeStart | None, trust: bool
) -> Resumed:
    """The run of ``folder`` (a ``checkpoint/``) on the envs ``frames`` stacks, ready to
    go on. SB3's pickles are loaded only when they match their checksums, or with
    ``trust``; a ValueError says what is wrong otherwise."""
    if (changed := changed_files(folder)) and not trust:
        raise ValueError(
            f"{folder} holds files that are not the ones this run wrote "
            f"({', '.join(changed)}); they are pickles, which can run code. Pass --trust "
            f"to load them anyway"
        )
    state = json.loads((folder / STATE_FILE).read_text())
    venv = VecNormalize.load(str(folder / "vecnormalize.pkl"), frames)
    # Loaded without the env, so that SB3 does not seed it again with --seed (which would
    # run the first episodes again), then every random state put back: the run goes on as
    # if it had not been interrupted.
    model = DQN.load(folder / MODEL_FILE, device="cpu")
    model.set_env(venv)
    model.load_replay_buffer(folder / "replay_buffer.pkl")
    restore_random_states(state["random_state"], model, env)
    # The cut episode again, from its first state. SB3 has no public way to start from a
    # given observation: its own reset would count this one twice in the normalisation
    # statistics, which already hold it.
    venv.training = False
    model._last_obs = venv.reset()
    model._last_original_obs = venv.get_original_obs()
    venv.training = True
    in_progress = None
    if "episode_in_progress" in state:  # cut mid-way: it goes on from there
        in_progress = resume_episodes(folder, state, model, frames)
    return Resumed(model, venv, state["episodes"], state["steps"], in_progress)


def has_checkpoint(folder: Path) -> bool:
    """Whether ``folder`` (a ``checkpoint/``) holds a whole checkpoint."""
    return (Path(folder) / STATE_FILE).is_file()
