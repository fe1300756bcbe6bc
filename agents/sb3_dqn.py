"""Train Stable-Baselines3's DQN to schedule the learning rate of a Wide ResNet (QAN).

    python agents/sb3_dqn.py --preset quick                 # the README's main command
    python agents/sb3_dqn.py --preset paper --env download=True    # the paper, on a GPU
    python agents/sb3_dqn.py --preset quick --resume        # continue from the last checkpoint
    python agents/sb3_dqn.py --evaluate runs/sb3_dqn/quick-seed0   # greedy, on held-out seeds
    python agents/sb3_dqn.py --evaluate agents/pretrained/quick    # the policy in the repo
    python agents/sb3_dqn.py --ensemble RUN RUN ... --output FOLDER  # runs as one policy

Every setting is a field of ``Args`` below, its docstring the reason for its default (the
evidence, every configuration tried, is in docs/agent_design.md). A run folder (``--output``)
holds ``config.json`` (written first: the whole env config, these settings, the version),
``model.zip``, ``vecnormalize.pkl`` and ``normalization.json`` (the trained agent),
``steps.csv`` (a row per env step), ``summary.json`` (each episode's return, final test
accuracy, instance and drawn share of noisy labels), ``tensorboard/`` and ``checkpoint/``;
docs/agents.md says what each holds and how checkpoints, ``--resume`` and ``--trust`` work.
The SB3 machinery (callbacks, checkpoints, the exact resume, loading a policy without
pickle) is ``qan_env.sb3``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import gymnasium as gym
import torch
import tyro
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import CallbackList
from stable_baselines3.common.vec_env import (
    DummyVecEnv,
    SubprocVecEnv,
    VecEnv,
    VecFrameStack,
    VecNormalize,
)

import qan_env
from qan_env import cli
from qan_env.config import EnvConfig
from qan_env.evaluation import HELD_OUT_SEEDS, evaluate
from qan_env.files import check_writable, write_atomically
from qan_env.run_folder import lock_run_folder, read_run_config, saved_env, write_run_config
from qan_env.sb3 import SB3Policy, SB3VectorEnv
from qan_env.sb3.callbacks import EnvScalars, EpisodeLog, ProgressBar, StepCSV, truncate_csv
from qan_env.sb3.checkpoint import (
    CHECKPOINT_FOLDER,
    EpisodeCheckpoint,
    EpisodeStart,
    has_checkpoint,
    load_checkpoint,
    recover_checkpoint,
    save_model,
)
from qan_env.sb3.policy import write_ensemble

gym.register_envs(qan_env)


@dataclass
class Args:
    """Train SB3's DQN to schedule the learning rate of a Wide ResNet, or evaluate a run."""

    preset: Literal["paper", "quick", "tiny"] | None = None
    """env preset; None: paper with CUDA, else quick"""
    mdp: Literal["learning", "paper"] = "learning"
    """the env's MDP options: "learning" (qan_env.learning_mdp: a cosine scaled by 1/2 to 8
    every 20 iterations, training signals and progress in the state, the held-out loss in
    the reward) or "paper" (the paper's: decay or restart every iteration, thousands of
    near-zero rewards per episode, on which a DQN learns to always decay)"""
    env: Annotated[list[str], tyro.conf.UseAppendAction] = field(default_factory=list)
    """override an env setting, FIELD=VALUE, such as --env epochs=5 (after --mdp's)"""
    instances: str | None = None
    """an instance set (qan_env.instances): train one policy across its train split, each
    episode a run drawn from it, with the set's preset and MDP (--preset and --mdp unused);
    judged on the test split by compare_schedules.py --instances NAME:test"""
    episodes: int | None = None
    """training runs; None: DEFAULT_INSTANCE_EPISODES of --instances (general: 400), else
    DEFAULT_EPISODES of the preset (quick: what fits the hour a quick run may take; 40
    episodes did about as well on the validation seeds; paper: the paper's 10)"""
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
    """continue from --output's checkpoint, exactly as the uninterrupted run would have"""
    evaluate: Path | None = None
    """a run folder: run its model greedily on --eval-seeds instead of training"""
    ensemble: tuple[Path, ...] = ()
    """finished run folders of one command, seeds apart: write them to --output as one
    policy, which acts on the mean of their Q-values (qan_env.sb3.policy), instead of
    training"""
    eval_seeds: tuple[int, ...] = HELD_OUT_SEEDS
    """seeds of the greedy evaluation: by default the held-out seeds"""
    n_envs: int = 1
    """training runs at once (env i seeded --seed + i); --episodes counts all of them, and
    every checkpoint holds each env's running episode"""
    vectorization: Literal["native", "subprocess"] = "native"
    """how --n-envs runs: "native", the vector env (on CUDA the runs train as one batched
    computation; on the CPU one after the other); "subprocess", SB3's SubprocVecEnv, one
    process per run (with device=auto, run i on GPU i % n_gpus)"""
    overwrite: bool = False
    """start afresh in an --output that holds a run, deleting its files (without it, such a
    folder is refused: --resume it, or give another --output)"""
    trust: bool = False
    """--evaluate a run folder of an older version, whose statistics are only in SB3's
    vecnormalize.pkl: a pickle, which runs code when it is read (nothing else reads one)"""
    frame_stack: int = 1
    """observations in a state (the paper's state history: 4); one, because the training
    signals already average over 10 and 100 iterations and carry the progress t/T"""
    gamma: float = 1.0
    """discount factor; 1, so that the rewards add up to log(H_0 / H_K), the final held-out
    loss that the schedule is judged by (eq. 9): a discount would weigh the early steps'
    loss changes more. Episodes are short (16 decisions on quick)"""
    n_steps: int = 1
    """n-step returns (an episode's length or more: Monte Carlo returns)"""
    normalize_reward: bool = False
    """scale rewards by the running std of the discounted return (VecNormalize); off, because
    with gamma 1 that std drifts over the run and moves the targets under the Q-network.
    Observations are always normalised"""
    hidden: tuple[int, ...] = (64, 64)
    """hidden layer sizes of the Q-network; small: a quick run has about 2,000 transitions"""
    learning_rate: float = 5e-4
    """Adam learning rate of the Q-network"""
    batch_size: int = 64
    """transitions per gradient step"""
    gradient_steps: int = 4
    """gradient steps per env step: an env step costs 20 training iterations and the agent's
    update is cheap beside it, so each costly transition is used more"""
    exploration_fraction: float = 0.5
    """share of training over which epsilon falls from 1 to --final-epsilon"""
    final_epsilon: float = 0.05
    """epsilon after the exploration fraction"""


#: Each number setting's allowed range, (low, high, low open): checked before anything is
#: written, the message naming the flag as the env's name their field.
SETTING_RANGES: dict[str, tuple[float, float | None, bool]] = {
    "episodes": (1, None, False),
    "seed": (0, None, False),
    "checkpoint_every": (1, None, False),
    "checkpoint_steps": (0, None, False),
    "n_envs": (1, None, False),
    "frame_stack": (1, None, False),
    "gamma": (0.0, 1.0, False),
    "n_steps": (1, None, False),
    "learning_rate": (0.0, None, True),
    "batch_size": (1, None, False),
    "gradient_steps": (1, None, False),
    "exploration_fraction": (0.0, 1.0, False),
    "final_epsilon": (0.0, 1.0, False),
}
#: Settings a --resume may change: where and how often it saves, what it may read.
RESUME_MAY_CHANGE = (
    "output",
    "resume",
    "overwrite",
    "evaluate",
    "eval_seeds",
    "trust",
    "checkpoint_every",
    "checkpoint_steps",
)


def check_args(args: Args) -> None:
    """Exit naming the flag when a setting is outside its range (before anything is
    written)."""
    for name, (low, high, low_open) in SETTING_RANGES.items():
        value = getattr(args, name)
        flag = f"--{name.replace('_', '-')}"
        too_low = value <= low if low_open else value < low
        if not math.isfinite(value) or too_low or (high is not None and value > high):
            bound = f"{'>' if low_open else '>='} {low:g}" + (f" and <= {high:g}" if high else "")
            raise SystemExit(f"{flag} {value:g} is not allowed: a number {bound}")
    if not args.hidden or min(args.hidden) < 1:
        raise SystemExit(f"--hidden {args.hidden} is not allowed: one or more layer sizes >= 1")


def check_output(args: Args) -> None:
    """Exit when ``--output`` holds a run that this command would destroy: without
    --resume or --overwrite, a run folder is never started over."""
    held = [
        name
        for name in ("config.json", "steps.csv", CHECKPOINT_FOLDER)
        if (args.output / name).exists()
    ]
    if held and not (args.resume or args.overwrite):
        raise SystemExit(
            f"--output {args.output} holds a run ({', '.join(held)}): --resume it, give "
            f"another --output, or pass --overwrite to start it over"
        )


def resumed_settings(args: Args) -> dict[str, Any]:
    """The settings a resumed run must share with the run it continues, as JSON has them."""
    settings = {k: v for k, v in dataclasses.asdict(args).items() if k not in RESUME_MAY_CHANGE}
    return json.loads(json.dumps(settings, default=str))


DEFAULT_EPISODES = {"paper": 10, "quick": 120, "tiny": 2}
#: An instance set's run: each train run is met several times (general: 30 runs, about
#: 13 episodes each; 200, about 7 each, scored less on the test split, and 120, 4 each,
#: did not learn: docs/agent_design.md; noisy: 18 runs, about 22 each).
DEFAULT_INSTANCE_EPISODES = {"general": 400, "noisy": 400, "tiny": 2}


def dqn_kwargs(args: Args, steps_per_episode: int) -> dict[str, Any]:
    """SB3 DQN's settings for a run of ``args.episodes`` episodes.

    The library defaults (a 1e6 buffer, a target update every 10,000 steps) do not fit an
    env whose whole run is a few thousand steps: the buffer holds the whole run (nothing is
    ever discarded); learning starts after a tenth of the first episode (at least 64
    transitions); ``--gradient-steps`` after every env step (times ``--n-envs``: as many per
    transition whatever the number of envs); the target network follows every 1/50 of the
    run (quick: 50 steps, paper: 3,900).
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


def env_config(args: Args) -> EnvConfig:
    """The env of ``--preset``, ``--mdp`` and ``--env``, checked before anything is written."""
    config = cli.agent_env(args.preset, args.mdp, args.env, args.instances)
    cli.device_here(config)  # a GPU this machine lacks is refused here too
    return config


def make_envs(config: EnvConfig, args: Args) -> tuple[EpisodeStart | None, VecEnv]:
    """SB3's vector of ``--n-envs`` envs, and the one env of a single-env run (whose
    episode starts a checkpoint records; None with more than one)."""
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


def build_agent(
    frames: VecFrameStack, args: Args, steps_per_episode: int, seeded: bool = False
) -> tuple[DQN, VecNormalize]:
    """The agent of ``args`` on ``frames``, normalised outermost (SB3 then keeps the raw,
    stacked observations in its buffer). Unseeded for a resume: SB3 would seed the envs'
    next reset, and the checkpoint's random states go in afterwards."""
    venv = VecNormalize(frames, norm_reward=args.normalize_reward, gamma=args.gamma)
    settings = dqn_kwargs(args, steps_per_episode)
    model = DQN(
        "MlpPolicy",
        venv,
        tensorboard_log=str(args.output / "tensorboard"),
        **{**settings, "seed": settings["seed"] if seeded else None},
    )
    model.seed = settings["seed"]
    return model, venv


def train(args: Args) -> None:
    config = env_config(args)
    seeds = range(args.seed, args.seed + args.n_envs)  # SB3 seeds env i with --seed + i
    cli.check_training_seeds(seeds, f"--seed {args.seed} (env i: --seed + i)")
    print(f"preset: {args.preset} (device: {cli.device_here(config)})")
    try:
        lock = lock_run_folder(args.output)  # held until the run is saved
    except RuntimeError as error:
        raise SystemExit(f"--output: {error}") from error
    checkpoint = args.output / CHECKPOINT_FOLDER
    if args.resume and checkpoint.is_symlink():
        raise SystemExit(
            f"--resume: {checkpoint} is a link: a run's checkpoint is a folder of its own "
            f"(it is never read through a link)"
        )
    if args.resume:
        recover_checkpoint(checkpoint)
    resuming = args.resume and has_checkpoint(checkpoint)
    if resuming:
        cli.check_resume(args.output, config, resumed_settings(args))
    args.output.mkdir(parents=True, exist_ok=True)
    settings = {**dataclasses.asdict(args), "output": str(args.output), "evaluate": None}
    write_run_config(args.output, config, settings)

    total_steps = args.episodes * config.steps_per_episode
    env, envs = make_envs(config, args)
    frames = VecFrameStack(envs, n_stack=args.frame_stack)
    log = EpisodeLog([], args.n_envs)
    if resuming:
        build = functools.partial(build_agent, frames, args, config.steps_per_episode)
        try:
            run = load_checkpoint(checkpoint, frames, env, build)
            truncate_csv(args.output / "steps.csv", run.steps)
        except ValueError as error:
            raise SystemExit(f"--resume: {error}") from error
        model, venv, log.episodes, done_steps = run.model, run.venv, run.episodes, run.steps
        if run.in_progress is not None:
            log.returns, log.last_accuracies = run.in_progress
        if args.n_envs > 1:
            where = f"inside the {args.n_envs} envs' episodes, after episode"
        else:
            where = "after episode" if run.in_progress is None else "inside episode"
        episode = len(log.episodes) - (0 if where == "inside episode" else 1)
        print(f"resuming {where} {episode} ({done_steps} steps)")
    else:
        if args.resume:
            print(f"no checkpoint in {checkpoint}: starting afresh")
        done_steps = 0
        (args.output / "steps.csv").unlink(missing_ok=True)
        model, venv = build_agent(frames, args, config.steps_per_episode, seeded=True)

    callbacks = CallbackList(
        [
            ProgressBar(total_steps, log.episodes),
            StepCSV(args.output / "steps.csv", log.episodes),
            EnvScalars(),
            log,  # before the checkpoint, which saves its episode list
            EpisodeCheckpoint(
                checkpoint, args.checkpoint_every, args.checkpoint_steps, log, env, frames
            ),
        ]
    )
    model.learn(
        total_timesteps=total_steps - done_steps,
        callback=callbacks,
        log_interval=1,  # SB3's own episode statistics, every episode
        reset_num_timesteps=done_steps == 0,
        tb_log_name="dqn",
    )
    save_model(model, venv, args.output)
    venv.close()
    summary = {"steps": model.num_timesteps, "episodes": log.episodes}
    write_atomically(args.output / "summary.json", json.dumps(summary, indent=2) + "\n")
    lock.close()  # the folder is whole: another process may take it
    print(
        f"wrote {args.output}: config.json, model.zip, vecnormalize.pkl, normalization.json, "
        f"steps.csv, summary.json"
    )


def run_evaluation(args: Args) -> None:
    """The saved model, greedy (epsilon 0), on ``--eval-seeds``, on the run's own env."""
    try:
        run = read_run_config(args.evaluate)
        config = saved_env(args.evaluate, cli.parse_overrides(args.env))
        env = gym.make("qan_env/LRSchedule-v0", config=config)
        policy = SB3Policy.load(args.evaluate, trust=args.trust)
        check_writable(args.evaluate)  # evaluation.json goes there: known before the work
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
        run = "" if record.instance is None else f" on {record.instance}"
        print(
            f"seed {record.seed}{run}: return {record.episode_return:+.5f}, final test "
            f"accuracy {final:.3f}, actions: {counts}"
        )
        results.append(
            {
                "seed": record.seed,
                "instance": record.instance,  # drawn from the seed, with --instances
                "diverged": record.diverged,
                "return": record.episode_return,
                "final_test_accuracy": final,
                "actions": record.actions,
            }
        )
    folder = args.output or args.evaluate
    folder.mkdir(parents=True, exist_ok=True)
    path = write_atomically(folder / "evaluation.json", json.dumps(results, indent=2) + "\n")
    print(f"wrote {path}")


def build_ensemble(args: Args) -> None:
    """``--ensemble``: the runs as one policy folder at ``--output``; refused, before
    anything is written, unless they ran one command with different ``--seed``s."""
    if args.output is None:
        raise SystemExit("--ensemble needs --output: the new folder the ensemble goes to")
    try:
        runs = [(folder, read_run_config(folder)) for folder in args.ensemble]
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f"--ensemble: {error}") from error
    # --env flags may differ where they make the same env (write_ensemble checks the env):
    # a set's later defaults are the same command as the flags an older run needed
    may_differ = {"seed", "output", "ensemble", "env", *RESUME_MAY_CHANGE}
    defaults = resumed_settings(Args())  # a setting a run predates: its default then

    def setting(run: Any, name: str) -> Any:
        return run.agent.get(name, defaults.get(name))

    (first_folder, first), members = runs[0], {}
    for folder, run in runs:
        differ = sorted(
            f"--{name.replace('_', '-')}"
            for name in first.agent.keys() | run.agent.keys()
            if name not in may_differ and setting(first, name) != setting(run, name)
        )
        if differ:
            raise SystemExit(
                f"--ensemble: {folder} ran with another {', '.join(differ)} than "
                f"{first_folder}: an ensemble's runs are one command, seeds apart"
            )
        name = f"seed{run.agent.get('seed')}"
        if name in members:
            raise SystemExit(f"--ensemble: {members[name]} and {folder} both ran {name}")
        members[name] = folder
    try:
        write_ensemble(args.output, members, {**first.agent, "output": str(args.output)})
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f"--ensemble: {error}") from error
    print(f"wrote {args.output}: the runs {', '.join(members)} as one policy (ensemble.json)")


def main() -> None:
    args = tyro.cli(Args, description=__doc__.split("\n")[0])
    if args.evaluate is not None:
        run_evaluation(args)
        return
    if args.ensemble:
        build_ensemble(args)
        return
    if args.instances is not None:
        args.preset = cli.instance_set(args.instances).preset
    elif args.preset is None:
        args.preset = "paper" if torch.cuda.is_available() else "quick"
    if args.episodes is None and args.instances is not None:
        args.episodes = DEFAULT_INSTANCE_EPISODES[args.instances]
    elif args.episodes is None:
        args.episodes = DEFAULT_EPISODES[args.preset]
    if args.output is None:
        args.output = cli.default_output("sb3_dqn", args.instances or args.preset, args.seed)
    check_args(args)
    check_output(args)
    train(args)


if __name__ == "__main__":
    main()
