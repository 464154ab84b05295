"""ament_python / pip build script of lutfuse_ros."""

import shutil
from glob import glob
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

PACKAGE = "lutfuse_ros"
SOURCE = Path(__file__).resolve().parent
#: config/ files the package reads at run time (lutfuse_ros/package_files.py): written once in
#: config/, copied into the built package as lutfuse_ros/resources/<name>.
PACKAGED_CONFIG_FILES = ("fuse.yaml", "fastdds_profile.xml")


class BuildPyWithConfig(build_py):
    """build_py that also copies config/fuse.yaml and the Fast DDS profile into the package."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):  # editable: config/ is read in place
            return
        target = Path(self.build_lib) / PACKAGE / "resources"
        target.mkdir(parents=True, exist_ok=True)
        for name in PACKAGED_CONFIG_FILES:
            shutil.copyfile(SOURCE / "config" / name, target / name)


setup(
    name=PACKAGE,
    version="0.1.0",
    description="Real-time infrared + visible image fusion for ROS 2 (MM-LUT and mini-model)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    # Only the product: test and benchmark tooling (lutfuse_testing/) stays in the checkout.
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    package_data={PACKAGE: ["resources/models/*.safetensors"]},
    cmdclass={"build_py": BuildPyWithConfig},
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
