from setuptools import find_packages, setup

PACKAGE = "robovlms_calvin"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    # calvin_env and its dependencies (pybullet, hydra, gym, ...) come from the user's checkout: see the README.
    install_requires=["setuptools", "numpy", "pyyaml"],
    zip_safe=True,
    maintainer="RoboVLMs ROS 2 maintainers",
    maintainer_email="robovlms-ros2@example.org",
    description="CALVIN sim bridge (calvin_env from a user's checkout), the Kinova driver's calvin backend and "
                "CALVIN's long-horizon evaluation protocol through ROS 2.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "calvin_bridge = robovlms_calvin.calvin_bridge_node:main",
            "calvin_cell = robovlms_calvin.composition:main",
            "robovlms-calvin-eval = robovlms_calvin.calvin_eval:main",
        ],
        "robovlms_drivers.backends": [
            "calvin = robovlms_calvin.calvin_backend:CalvinBackend",
        ],
    },
)
