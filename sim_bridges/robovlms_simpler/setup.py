from setuptools import find_packages, setup

PACKAGE = "robovlms_simpler"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    # SimplerEnv (ManiSkill2_real2sim, SAPIEN) or ManiSkill3 come from the user's install: see the README.
    install_requires=["setuptools", "numpy"],
    zip_safe=True,
    maintainer="RoboVLMs ROS 2 maintainers",
    maintainer_email="robovlms-ros2@example.org",
    description="SimplerEnv sim bridge (Google Robot and WidowX visual matching), the Kinova driver's simpler "
                "backend and the benchmark's protocol through ROS 2.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "simpler_bridge = robovlms_simpler.simpler_bridge_node:main",
            "simpler_cell = robovlms_simpler.composition:main",
            "robovlms-simpler-eval = robovlms_simpler.simpler_eval:main",
        ],
        "robovlms_drivers.backends": [
            "simpler = robovlms_simpler.simpler_backend:SimplerBackend",
        ],
    },
)
