"""ament_python / pip build script of lutfuse_ros."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "lutfuse_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    description="Real-time infrared + visible image fusion for ROS 2 (MM-LUT and mini-model)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(exclude=["test", "test.*", "benchmarks", "scripts"]),
    package_data={PACKAGE: ["resources/models/*.safetensors", "resources/*.xml",
                            "resources/*.yaml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.xml")),
    ],
    # torch is pinned by requirements/cpu.txt where a CPU build is wanted: an unpinned
    # requirement here would pull gigabytes of CUDA wheels on a machine without torch.
    install_requires=[
        "numpy>=1.23",
        "opencv-python-headless>=4.6",
        "torch>=2.1",
        "safetensors>=0.4",
        "pyyaml>=6",
        "tqdm>=4.60",
    ],
    extras_require={
        "onnx": ["onnx>=1.15", "onnxruntime>=1.17"],
        "bag": ["rosbags>=0.10"],
        "train": ["matplotlib>=3.7", "tensorboard>=2.14"],
        "ros": ["ros-rclpy[fastrtps]", "ros-sensor-msgs", "ros-std-msgs", "ros-diagnostic-msgs",
                "ros-std-srvs"],
        "metrics": ["scipy>=1.10", "scikit-image>=0.21", "scikit-learn>=1.3"],
    },
    tests_require=["pytest"],
    zip_safe=False,
    entry_points={
        "console_scripts": [
            "lutfuse = lutfuse_ros.cli.main:main",
            "fusion_node = lutfuse_ros.ros.node:main",
        ],
    },
)
