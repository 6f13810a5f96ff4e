from setuptools import find_packages, setup

PACKAGE = "robovlms_drivers"

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
    description="Kinova Gen3 + Robotiq 2F-85 driver (backend plug-ins: kortex here, sim in robovlms_twin) and "
                "RealSense / Azure Kinect camera nodes.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "kinova_driver = robovlms_drivers.kinova.driver_node:main",
            "realsense_camera = robovlms_drivers.cameras.realsense_node:main",
            "azure_kinect_camera = robovlms_drivers.cameras.azure_kinect_node:main",
        ],
        "robovlms_drivers.backends": [
            "kortex = robovlms_drivers.kinova.kortex_backend:KortexBackend",
        ],
    },
)
