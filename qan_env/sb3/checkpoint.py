"""An SB3 DQN run's checkpoints and its exact resume, in files that hold no code.

``checkpoint/`` holds what the rest of a run depends on, as tensors, arrays and JSON only:
the Q-network, its target and the optimizer's state (``agent.pt``, read with
``weights_only=True``), the replay buffer and the normalisation statistics (``.npz``, read
with ``allow_pickle=False``), SB3's counters, the episode log and every random state the
rest of the run draws from (``state.json``) and, when a checkpoint falls inside episodes,
each env's running episode (``LRScheduleEnv.save``) and the observations SB3 acts from.
``load_checkpoint`` builds the agent afresh from the run's settings and puts all of it
back, each array checked against the shape and type the settings give before it is read,
so that a resumed run goes on exactly as the uninterrupted one would have, and a
checkpoint is data, never code (SB3 has no public API for some of it: the places that
reach into its attributes say so).

A checkpoint is written whole to a side folder and swapped in by two renames
(``save_checkpoint``); ``recover_checkpoint`` finishes or undoes a swap a kill cut short.
"""

from __future__ import annotations

import copy
import json
import random
import shutil
import zipfile
from collections import deque
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
from qan_env.tensors import check_like, load_tensors, read_bounded

#: What ``load_checkpoint`` builds a resumed run into: a fresh agent and its statistics.
Built = tuple[DQN, VecNormalize]

CHECKPOINT_FOLDER = "checkpoint"
MODEL_FILE = "model.zip"
STATE_FILE = "state.json"
#: The Q-network, its target and the optimizer's state (``torch.save``, read back with
#: ``weights_only=True``).
AGENT_FILE = "agent.pt"
REPLAY_FILE = "replay_buffer.npz"
STATISTICS_FILE = "vecnormalize.npz"
#: The names an older version's checkpoint used: SB3's pickle-based files.
PICKLED_FILES = (MODEL_FILE, "replay_buffer.pkl", "vecnormalize.pkl")
#: The replay buffer's arrays a checkpoint keeps (SB3's ``ReplayBuffer`` attributes).
REPLAY_ARRAYS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")
#: Scalars of SB3's DQN that the rest of a run depends on (SB3 has no public API for them):
#: the step and update counts, the target network's clock, the exploration schedule's place.
MODEL_COUNTERS = (
    "num_timesteps",
    "_episode_num",
    "_n_updates",
    "_n_calls",
    "exploration_rate",
    "_current_progress_remaining",
)
#: The most bytes a checkpoint's ``agent.pt`` may take beyond its tensors' own size.
_PICKLE_SLACK = 1 << 20


def model_folder(folder: Path) -> tuple[Path, str]:
    """Where a run's trained model lies, and a note when it is not the finished one: the
    run folder once training ended, else its last checkpoint (an interrupted run)."""
    folder = Path(folder)
    if (folder / MODEL_FILE).is_file():
        return folder, ""
    checkpoint = folder / CHECKPOINT_FOLDER
    if (checkpoint / AGENT_FILE).is_file() and has_checkpoint(checkpoint):
        state = json.loads((checkpoint / STATE_FILE).read_text())
        return checkpoint, (
            f"note: {folder} is unfinished (no {MODEL_FILE}): evaluating its last checkpoint, "
            f"after {len(state['episodes'])} episodes ({state['steps']} steps); "
            f"--resume the run to finish it"
        )
    raise FileNotFoundError(
        f"{folder} is unfinished and has no checkpoint yet (no {MODEL_FILE}, no "
        f"{CHECKPOINT_FOLDER}/{AGENT_FILE}): --resume the run, or wait for its first checkpoint"
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
    agent = {"policy": model.policy.state_dict(), "optimizer": model.policy.optimizer.state_dict()}
    replace_atomically(partial / AGENT_FILE, lambda path: torch.save(agent, path))
    buffer = model.replay_buffer
    arrays = {name: getattr(buffer, name) for name in REPLAY_ARRAYS}
    replace_atomically(partial / REPLAY_FILE, lambda path: np.savez(path, **arrays))
    venv = model.get_vec_normalize_env()
    replace_atomically(
        partial / STATISTICS_FILE, lambda path: np.savez(path, **running_statistics(venv))
    )
    write_normalization(partial, Normalization.of(venv))
    state = {
        **state,
        "model": {name: getattr(model, name) for name in MODEL_COUNTERS},
        "episode_infos": list(model.ep_info_buffer or ()),
        "replay": {"pos": buffer.pos, "full": buffer.full},
    }
    if save_more is not None:
        save_more(partial)
    write_atomically(partial / STATE_FILE, json.dumps(state, indent=2))  # complete now
    _remove(old)
    if folder.exists() or folder.is_symlink():  # a link is moved aside, never written into
        folder.rename(old)
    partial.rename(folder)
    _remove(old)


def running_statistics(venv: VecNormalize) -> dict[str, np.ndarray]:
    """``VecNormalize``'s running means, variances and counts of the observations and of
    the discounted returns, as arrays."""
    return {
        f"{prefix}_{name}": np.asarray(getattr(rms, name), dtype=np.float64)
        for prefix, rms in (("obs", venv.obs_rms), ("ret", venv.ret_rms))
        for name in ("mean", "var", "count")
    }


def read_arrays(path: Path, like: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays of the ``.npz`` at ``path``, each of the shape and type of its namesake in
    ``like`` (what this run's settings make): sizes checked before anything is read, no
    pickle (``allow_pickle=False``); a ValueError naming the file and the array else."""
    try:
        with zipfile.ZipFile(path) as archive:
            sizes = {i.filename.removesuffix(".npy"): i.file_size for i in archive.infolist()}
    except zipfile.BadZipFile:
        raise ValueError(f"{path} is not a file of arrays (.npz)") from None
    if set(sizes) != set(like):
        raise ValueError(f"{path} holds {sorted(sizes)}, not the arrays {sorted(like)}")
    for name, array in like.items():
        if sizes[name] > array.nbytes + 4096:  # the .npy header is some bytes
            raise ValueError(f"{path}: {name} holds {sizes[name]:,} bytes, not {array.nbytes:,}")
    result = {}
    with np.load(path, allow_pickle=False) as arrays:
        for name, array in like.items():
            try:
                got = arrays[name]
            except ValueError as error:  # an object array: a pickle, never read
                raise ValueError(f"{path}: {name} is not an array of numbers: {error}") from None
            if (got.shape, got.dtype) != (array.shape, array.dtype):
                raise ValueError(
                    f"{path}: {name} is {got.shape} {got.dtype}, where this run's settings "
                    f"make it {array.shape} {array.dtype}"
                )
            result[name] = got
    return result


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
    folder: Path, frames: VecFrameStack, env: EpisodeStart | None, build: Callable[[], Built]
) -> Resumed:
    """The run of ``folder`` (a ``checkpoint/``) on the envs ``frames`` stacks, ready to
    go on: ``build()`` makes the agent and its ``VecNormalize`` as a fresh run of the same
    settings would, unseeded (a seeded one would seed the envs' next reset again), and
    the checkpoint's tensors, arrays and counters go into them. Nothing in the folder is
    code; a ValueError says what does not fit."""
    if not (folder / AGENT_FILE).is_file():
        old = [name for name in PICKLED_FILES if (folder / name).exists()]
        raise ValueError(
            f"{folder} is not a checkpoint of this version (no {AGENT_FILE}"
            + (f"; it holds {', '.join(old)}: SB3 pickles, which are never loaded" if old else "")
            + "): start the run afresh in another --output"
        )
    state = json.loads((folder / STATE_FILE).read_text())
    model, venv = build()
    source = folder / AGENT_FILE
    fresh = model.policy.state_dict()
    limit = 3 * sum(t.numel() * t.element_size() for t in fresh.values()) + _PICKLE_SLACK
    with open(source, "rb") as file:
        agent = load_tensors(read_bounded(file, limit, str(source)), str(source))
    if not isinstance(agent, dict) or set(agent) != {"policy", "optimizer"}:
        raise ValueError(f"{source} is not a checkpoint's agent (policy and optimizer)")
    check_like(agent["policy"], fresh, str(source))
    _check_optimizer(model.policy.optimizer, agent["optimizer"], source)
    model.policy.load_state_dict(agent["policy"])
    model.policy.optimizer.load_state_dict(agent["optimizer"])
    buffer = model.replay_buffer
    like = {name: getattr(buffer, name) for name in REPLAY_ARRAYS}
    for name, array in read_arrays(folder / REPLAY_FILE, like).items():
        getattr(buffer, name)[...] = array
    buffer.pos, buffer.full = int(state["replay"]["pos"]), bool(state["replay"]["full"])
    statistics = read_arrays(folder / STATISTICS_FILE, running_statistics(venv))
    for prefix, rms in (("obs", venv.obs_rms), ("ret", venv.ret_rms)):
        rms.mean, rms.var = statistics[f"{prefix}_mean"], statistics[f"{prefix}_var"]
        rms.count = float(statistics[f"{prefix}_count"])
    if set(state["model"]) != set(MODEL_COUNTERS):
        raise ValueError(f"{folder / STATE_FILE}: 'model' holds other than {MODEL_COUNTERS}")
    for name, value in state["model"].items():  # SB3 has no public setter for these
        setattr(model, name, type(getattr(model, name))(value))
    model.ep_info_buffer = deque(state["episode_infos"], maxlen=model._stats_window_size)
    model.ep_success_buffer = deque(maxlen=model._stats_window_size)
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


def _check_optimizer(optimizer: torch.optim.Optimizer, saved: Any, source: Path) -> None:
    """``saved`` is a state of ``optimizer``: its groups over the same parameters, each
    moment of its parameter's shape (a step count: one number)."""
    groups = optimizer.state_dict()["param_groups"]
    if not (
        isinstance(saved, dict)
        and isinstance(saved.get("state"), dict)
        and isinstance(saved.get("param_groups"), list)
        and [g.get("params") if isinstance(g, dict) else g for g in saved["param_groups"]]
        == [g["params"] for g in groups]
    ):
        raise ValueError(f"{source}: the optimizer's state is not this run's optimizer's")
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    for index, moments in saved["state"].items():
        if not (isinstance(index, int) and 0 <= index < len(parameters)):
            raise ValueError(f"{source}: the optimizer's state names parameter {index!r}")
        for name, tensor in moments.items():
            wanted = torch.Size(() if name == "step" else parameters[index].shape)
            if not isinstance(tensor, torch.Tensor) or tensor.shape != wanted:
                raise ValueError(
                    f"{source}: the optimizer's {name} of parameter {index} is not of shape "
                    f"{tuple(wanted)}"
                )


def has_checkpoint(folder: Path) -> bool:
    """Whether ``folder`` (a ``checkpoint/``) holds a whole checkpoint."""
    return (Path(folder) / STATE_FILE).is_file()
