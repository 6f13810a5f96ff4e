from setuptools import find_packages, setup

PACKAGE = "robovlms_io"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["setuptools", "numpy"],
    zip_safe=True,
    maintainer="RoboVLMs ROS 2 maintainers",
    maintainer_email="robovlms-ros2@example.org",
    description="The RoboVLMs packages' shared ROS I/O layer (conversions, names, QoS, parameters, main helper).",
    license="Apache-2.0",
)
