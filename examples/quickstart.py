"""The environment in a dozen lines: make it, reset it, step it with a fixed policy.

python examples/quickstart.py            # the quick preset, first 50 steps
python examples/quickstart.py --small    # the tiny preset, a whole episode in seconds
"""

import argparse

import gymnasium as gym

import qan_env

gym.register_envs(qan_env)  # importing qan_env registers its ids; this says so to linters

parser = argparse.ArgumentParser()
parser.add_argument("--small", action="store_true", help="the tiny preset, a whole episode")
args = parser.parse_args()

env = gym.make("qan_env/LRSchedule-v0", preset="tiny" if args.small else "quick")
observation, info = env.reset(seed=0)
decay, restart = (env.unwrapped.action_names.index(name) for name in ("decay", "restart"))
print(
    f"observation: {observation.shape[0]} numbers, e.g. {env.unwrapped.feature_names[4]} = "
    f"{observation[4]:.4f}; actions: {env.unwrapped.action_names}; "
    f"{env.unwrapped.steps_per_episode} steps per episode"
)
print(f"reset: {info}")

# Decay the learning rate by 5% every step and restart it every 20th step (every 8th on
# tiny, whose episodes are 16 steps).
restart_every = min(20, env.unwrapped.steps_per_episode // 2)
for step in range(50):
    action = restart if step % restart_every == restart_every - 1 else decay
    observation, reward, terminated, truncated, info = env.step(action)
    if step % 5 == 4 or terminated:
        print(f"step {step + 1:3d}: action {action}, reward {reward:+.2e}, {info}")
    if terminated or truncated:
        break
env.close()
