from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "robovlms_policy"
# Shipped checkpoints (config.json, model.safetensors, tokenizer.json, model card) install to share/<pkg>/checkpoints.
CHECKPOINTS = [(f"share/{PACKAGE}/{d}", [str(f) for f in sorted(Path(d).iterdir()) if f.is_file()])
               for d in sorted(str(p) for p in Path("checkpoints").glob("*") if p.is_dir())]

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        *CHECKPOINTS,
    ],
    install_requires=["setuptools", "numpy"],
    zip_safe=True,
    maintainer="RoboVLMs ROS 2 maintainers",
    maintainer_email="robovlms-ros2@example.org",
    description="RoboVLMs VLA core and the ROS 2 policy node.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "policy_node = robovlms_policy.node.policy_node:main",
            "trial_recorder = robovlms_policy.trials.trial_recorder_node:main",
            "robovlms-init-checkpoint = robovlms_policy.vla.init_checkpoint:main",
            "robovlms-export = robovlms_policy.vla.onnx_export:main",
            "robovlms-bag-recover = robovlms_policy.trials.bag_recover:main",
            "robovlms-trial-manager = robovlms_policy.trials.trial_manager_cli:main",
        ],
    },
)
