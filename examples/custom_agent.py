"""Your own RL algorithm on qan_env: a complete DQN with nothing but Gymnasium and torch.

    python examples/custom_agent.py            # 8 episodes of the tiny preset, ~1 minute
    python examples/custom_agent.py --small    # 2 episodes, a smoke run

The env needs nothing from the agent but the Gymnasium API. Gymnasium's own wrappers give
the state a history (``FrameStackObservation``) and a running normalisation
(``NormalizeObservation``); ``reward_scale=1`` asks for the plain log-loss decrease per step.
"""

import argparse
import random
from collections import deque

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import qan_env

gym.register_envs(qan_env)  # importing qan_env registers its ids; this says so to linters

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--preset", default="tiny")
parser.add_argument("--episodes", type=int, default=8)
parser.add_argument("--small", action="store_true", help="2 episodes: a smoke run")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--history", type=int, default=2, help="observations in a state")
parser.add_argument("--gamma", type=float, default=0.99)
parser.add_argument("--learning-rate", type=float, default=1e-3)
parser.add_argument("--batch-size", type=int, default=32)
parser.add_argument("--buffer-size", type=int, default=10_000)
parser.add_argument("--target-every", type=int, default=50, help="steps between target syncs")
parser.add_argument("--epsilon-steps", type=int, default=None, help="default: half the run")
args = parser.parse_args()
if args.small:
    args.episodes = 2

random.seed(args.seed)
torch.manual_seed(args.seed)  # the agent's own network; the env never uses the global RNG

env = gym.make("qan_env/LRSchedule-v0", preset=args.preset, reward_scale=1.0)
env = gym.wrappers.FrameStackObservation(env, args.history)
env = gym.wrappers.FlattenObservation(env)
env = gym.wrappers.NormalizeObservation(env)
n_observations, n_actions = env.observation_space.shape[0], env.action_space.n
epsilon_steps = args.epsilon_steps or args.episodes * env.unwrapped.steps_per_episode // 2


def q_network() -> nn.Module:
    return nn.Sequential(
        nn.Linear(n_observations, 64),
        nn.ReLU(),
        nn.Linear(64, 64),
        nn.ReLU(),
        nn.Linear(64, n_actions),
    )


q, target = q_network(), q_network()
target.load_state_dict(q.state_dict())
optimizer = torch.optim.Adam(q.parameters(), lr=args.learning_rate)
buffer = deque(maxlen=args.buffer_size)  # (state, action, reward, next state, terminated)


def act(state: np.ndarray, epsilon: float) -> int:
    if random.random() < epsilon:
        return random.randrange(n_actions)
    with torch.no_grad():
        return int(q(torch.as_tensor(state)).argmax())


def learn() -> None:
    states, actions, rewards, next_states, terminals = map(
        np.array, zip(*random.sample(buffer, args.batch_size), strict=True)
    )
    with torch.no_grad():
        best_next = target(torch.as_tensor(next_states)).max(dim=1).values
        # Paper eq. 4: no bootstrap from the last state of an episode.
        goal = torch.as_tensor(rewards, dtype=torch.float32) + args.gamma * best_next * (
            1 - torch.as_tensor(terminals, dtype=torch.float32)
        )
    chosen = q(torch.as_tensor(states)).gather(1, torch.as_tensor(actions)[:, None]).squeeze(1)
    loss = F.smooth_l1_loss(chosen, goal)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


step = 0
for episode in range(args.episodes):
    state, info = env.reset(seed=args.seed + episode)
    episode_return, terminated, truncated = 0.0, False, False
    while not (terminated or truncated):
        epsilon = max(0.05, 1.0 - step / epsilon_steps)
        action = act(state, epsilon)
        next_state, reward, terminated, truncated, info = env.step(action)
        buffer.append((state, action, reward, next_state, terminated))
        state, episode_return, step = next_state, episode_return + reward, step + 1
        if len(buffer) >= args.batch_size:
            learn()
        if step % args.target_every == 0:
            target.load_state_dict(q.state_dict())
    print(
        f"episode {episode}: return {episode_return:+.4f} (log L_0 / L_K), epsilon "
        f"{epsilon:.2f}, final test accuracy {info['test_accuracy']:.3f}"
    )

# The learned policy, greedy (epsilon 0), with the normalisation statistics frozen.
env.update_running_mean = False
state, info = env.reset(seed=10_000)
actions, terminated, truncated = [], False, False
while not (terminated or truncated):
    actions.append(act(state, epsilon=0.0))
    state, reward, terminated, truncated, info = env.step(actions[-1])
restart = env.unwrapped.action_names.index("restart")
print(
    f"greedy: restarts {actions.count(restart)} of {len(actions)} steps, final test accuracy "
    f"{info['test_accuracy']:.3f}"
)
