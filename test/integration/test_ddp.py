"""Two-process DistributedDataParallel training on CPU (gloo) under torch.distributed.run."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lutfuse_ros.artifacts import load_artifact

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "test" / "unit"))
from test_training import write_scenes  # noqa: E402, I100 (importable once on sys.path)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_two_process_cpu_training(tmp_path):
    write_scenes(tmp_path / "scenes")
    config = tmp_path / "ddp.yaml"
    config.write_text(f"""
stage: teacher
name: ddp-teacher
output: {tmp_path}/ddp.safetensors
run_dir: {tmp_path}/run
device: cpu
data: {{sources: [{{kind: folder, path: {tmp_path}/scenes}}], crop_size: 32, crops_per_epoch: 16,
       fixed_crops: true}}
train: {{epochs: 2, batch_size: 4, lr: 1.0e-3, checkpoint_every: 2, log_every: 1}}
teacher_model: {{width: 4}}
""")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
               "--master_addr=127.0.0.1", f"--master_port={free_port()}",
               "-m", "lutfuse_ros.cli.main", "train", "teacher", "--config", str(config),
               "--no-progress"]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        output = process.communicate(timeout=420)[0].decode(errors="replace")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 0, output[-4000:]
    assert "gloo process group" in output
    manifest = load_artifact(tmp_path / "ddp.safetensors").manifest
    provenance = manifest["provenance"]
    # 16 crops over 2 ranks, batch 4 -> 2 steps per epoch per rank, 2 epochs
    assert provenance["world_size"] == 2 and provenance["steps"] == 4
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    # the refresh memory is shared: every crop's history is known after the first epoch
    scores = state["extra"]["memory"]["best_ssim_scores"]
    assert torch.isfinite(scores).all()
