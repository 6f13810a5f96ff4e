from glob import glob

from setuptools import setup

PACKAGE = "robovlms_bringup"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=[],
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="RoboVLMs ROS 2 maintainers",
    maintainer_email="robovlms-ros2@example.org",
    description="Launch files and parameter files for the RoboVLMs Kinova cell, real and simulated.",
    license="Apache-2.0",
)
