from setuptools import find_packages, setup

PACKAGE = "robovlms_twin"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["setuptools", "numpy", "mujoco"],
    zip_safe=True,
    maintainer="RoboVLMs ROS 2 maintainers",
    maintainer_email="robovlms-ros2@example.org",
    description="MuJoCo digital twin of the Kinova Gen3 + Robotiq 2F-85 cell, its ROS 2 sim bridge and the "
                "Kinova driver's sim backend (a robovlms_drivers backend plug-in).",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "twin_bridge = robovlms_twin.twin_bridge_node:main",
            "kinova_sim_cell = robovlms_twin.sim_cell:main",
        ],
        "robovlms_drivers.backends": [
            "sim = robovlms_twin.sim_backend:SimBackend",
        ],
    },
)
