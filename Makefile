# Entry points of the RoboVLMs ROS 2 suite. Every target runs `make setup` first (a fast no-op once done).
SHELL := /bin/bash
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: setup test demo bench clean

setup:
	@bash scripts/setup.sh

test: setup
	@scripts/with_env.sh python -m pytest $(PYTEST_ARGS)

demo: setup
	@scripts/with_env.sh python -m robovlms_demo.demo $(DEMO_ARGS)

bench: setup
	@scripts/with_env.sh python benchmarks/bench_vla.py
	@scripts/with_env.sh python benchmarks/bench_policy_node.py
	@scripts/with_env.sh python benchmarks/bench_twin.py

clean:
	rm -rf ros2_ws/build ros2_ws/install ros2_ws/log .venv
