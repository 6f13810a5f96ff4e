from setuptools import find_packages, setup

PACKAGE = "robovlms_demo"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["setuptools", "numpy", "pyyaml"],
    zip_safe=True,
    maintainer="RoboVLMs ROS 2 maintainers",
    maintainer_email="robovlms-ros2@example.org",
    description="make demo: evaluation episodes of every twin task over real DDS, recorded as rosbag2 (MCAP).",
    license="Apache-2.0",
    entry_points={"console_scripts": ["robovlms_demo = robovlms_demo.demo:main"]},
)
