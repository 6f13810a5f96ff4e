# Entry points of the RoboVLMs ROS 2 suite. Every target runs `make setup` first (a fast no-op once done).
SHELL := /bin/bash
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: setup test demo train-default evaluate bench clean

setup:
	@bash scripts/setup.sh

test: setup
	@scripts/with_env.sh python -m pytest $(PYTEST_ARGS)

demo: setup
	@scripts/with_env.sh python -m robovlms_demo.demo $(DEMO_ARGS)

# The shipped default checkpoint, trained from nothing on this machine (about 50 min on 2 idle CPU cores; resumable).
DEFAULT_CHECKPOINT := ros2_ws/src/robovlms_policy/checkpoints/twin_default
train-default: setup
	@scripts/with_env.sh python -m robovlms_training.default_recipe --work runs/train-default --out $(DEFAULT_CHECKPOINT)
	@$(MAKE) --no-print-directory setup

# Closed-loop evaluation through ROS on every setting (10 episodes per task each), written into the model card.
evaluate: setup
	@scripts/with_env.sh python benchmarks/eval_default_policy.py --model-card $(DEFAULT_CHECKPOINT)/MODEL_CARD.md

bench: setup
	@scripts/with_env.sh python benchmarks/bench_vla.py
	@scripts/with_env.sh python benchmarks/bench_policy_node.py
	@scripts/with_env.sh python benchmarks/bench_twin.py
	@scripts/with_env.sh python benchmarks/bench_training.py
	@scripts/with_env.sh python benchmarks/bench_calvin_reader.py
	@scripts/with_env.sh python benchmarks/loader_throughput.py
	@scripts/with_env.sh python benchmarks/bench_vla.py --checkpoint $(DEFAULT_CHECKPOINT)

clean:
	rm -rf ros2_ws/build ros2_ws/install ros2_ws/log .venv
