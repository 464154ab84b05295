"""Training: config, refresh bookkeeping, every trainer end to end, teachers, resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from lutfuse_ros.artifacts import load_artifact
from lutfuse_ros.errors import ConfigError
from lutfuse_ros.pipeline import FusionPipeline
from lutfuse_ros.training.config import load_config, parse_config
from lutfuse_ros.training.engine import train
from lutfuse_ros.training.refresh import RefreshMemory, refresh_loss, score_outputs

REPO = Path(__file__).resolve().parents[2]


def write_scenes(root: Path, count: int = 4, size=(48, 64), seed: int = 0) -> Path:
    """Synthetic registered pairs: textured colour visible, blob-shaped hot thermal."""
    rng = np.random.default_rng(seed)
    (root / "vi").mkdir(parents=True)
    (root / "ir").mkdir()
    yy, xx = np.mgrid[0:size[0], 0:size[1]]
    for index in range(count):
        visible = np.stack([(xx * 3 + 40 * c) % 256 for c in range(3)], -1).astype(np.float64)
        for _ in range(4):
            y, x = rng.integers(0, size[0] - 10), rng.integers(0, size[1] - 10)
            visible[y:y + 10, x:x + 10] = rng.integers(0, 256, 3)
        thermal = 40 + 20 * np.sin(yy / 5.0)
        for _ in range(2):
            cy, cx = rng.integers(8, size[0] - 8), rng.integers(8, size[1] - 8)
            thermal += 180 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 30.0)
        cv2.imwrite(str(root / "vi" / f"s{index}.png"), np.clip(visible, 0, 255).astype(np.uint8))
        cv2.imwrite(str(root / "ir" / f"s{index}.png"), np.clip(thermal, 0, 255).astype(np.uint8))
    return root


def make_config(tmp_path: Path, stage: str, body: str, name: str | None = None):
    name = name or stage
    text = f"""
stage: {stage}
name: tiny-{name}
output: {tmp_path}/{name}.safetensors
run_dir: {tmp_path}/runs/{name}
data:
  sources: [{{kind: folder, path: {tmp_path}/scenes}}]
  crop_size: 32
  crops_per_epoch: 4
  fixed_crops: true
validation: {{visible: {tmp_path}/scenes/vi, thermal: {tmp_path}/scenes/ir, max_pairs: 1,
              baselines: false}}
{body}
"""
    return parse_config(text)


def losses(run_dir: Path, key: str = "loss") -> list[float]:
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    return [row[key] for row in state["history"]]


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    """Tiny tensors: one intra-op thread is faster and far less sensitive to a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("training")
    write_scenes(root / "scenes")
    return root


@pytest.fixture(scope="module")
def tiny_teacher(workspace) -> Path:
    config = make_config(workspace, "teacher", """
train: {epochs: 12, batch_size: 4, lr: 3.0e-3, log_every: 1, checkpoint_every: 5}
teacher_model: {width: 4}
""")
    return train(config, progress=False).artifact


# ------------------------------------------------------------------ configuration
def test_example_configs_parse():
    for path in sorted((REPO / "config").glob("train_*.yaml")):
        config = load_config(path)
        assert config.source_text and config.output.endswith(".safetensors"), path


def test_config_errors_name_the_key(tmp_path):
    base = ("stage: teacher\nname: x\noutput: o.safetensors\nrun_dir: r\n"
            "data: {sources: [{path: d}]}\n")
    assert parse_config(base + "loss: {refresh: false}\n").stage == "teacher"
    with pytest.raises(ConfigError, match="unknown key.*colour"):
        parse_config(base + "colour: 1\n")
    with pytest.raises(ConfigError, match="train.epochs: expected an integer"):
        parse_config(base + "train: {epochs: many}\n")
    with pytest.raises(ConfigError, match="fixed_crops"):
        parse_config(base)  # refresh on by default needs fixed crops
    with pytest.raises(ConfigError, match="needs a 'teacher' section"):
        parse_config(base.replace("teacher", "lut"))
    with pytest.raises(ConfigError, match="thermal mode"):
        parse_config(base + "loss: {refresh: false}\ndata: {sources: [{path: d}], thermal: "
                            "{mode: hot}}\n")
    overridden = parse_config(base + "loss: {refresh: false}\n", ["train.epochs=3"])
    assert overridden.train.epochs == 3 and "overrides" in overridden.source_text


# ------------------------------------------------------------------ dynamic refresh
def test_refresh_memory_keeps_the_best_outputs():
    memory = RefreshMemory(num_samples=4, crop_size=2)
    indices = torch.tensor([0, 2])
    first = torch.full((2, 1, 2, 2), 0.25)
    memory.update(indices, first, torch.tensor([1.0, 1.0]), torch.tensor([0.5, 0.5]))
    assert memory.known == 2
    # crop 0 improves on SSIM only, crop 2 on GMSD only
    second = torch.full((2, 1, 2, 2), 0.75)
    by_ssim, by_gmsd = memory.update(indices, second, torch.tensor([1.5, 0.5]),
                                     torch.tensor([0.9, 0.1]))
    assert by_ssim.tolist() == [True, False] and by_gmsd.tolist() == [False, True]
    targets = memory.recall(torch.tensor([0, 2, 1]))
    assert targets.best_ssim_outputs[:, 0, 0, 0].tolist() == [0.75, 0.25, 0.0]
    assert targets.best_gmsd_outputs[:, 0, 0, 0].tolist() == [0.25, 0.75, 0.0]
    assert targets.best_ssim_scores.tolist()[:2] == [1.5, 1.0]
    assert targets.best_gmsd_scores[2] == float("inf")
    restored = RefreshMemory(4, 2)
    restored.load_state_dict(memory.state_dict())
    assert torch.equal(restored.best_ssim_outputs, memory.best_ssim_outputs)


def test_refresh_loss_is_gap_weighted_and_zero_when_current_is_better():
    outputs = torch.full((2, 1, 16, 16), 0.5, requires_grad=True)
    memory = RefreshMemory(2, 16)
    memory.update(torch.tensor([0, 1]), torch.full((2, 1, 16, 16), 0.7),
                  torch.tensor([1.8, 1.0]), torch.tensor([0.1, 0.9]))
    targets = memory.recall(torch.tensor([0, 1]))
    # crop 0: history better by SSIM (gap 0.3) and by GMSD (gap 0.2); crop 1: current better
    loss, info = refresh_loss(outputs, targets, torch.tensor([1.5, 1.5]), torch.tensor([0.3, 0.3]))
    expected = 0.3 * 0.2 / 2  # gap_s * L1(0.5 vs 0.7), averaged over 2 crops; flat: no L_g
    assert loss.item() == pytest.approx(expected, rel=1e-3)
    assert info["gap_ssim"] == pytest.approx(0.15) and info["gap_gmsd"] == pytest.approx(0.1)
    loss.backward()
    assert outputs.grad[0].abs().sum() > 0 and outputs.grad[1].abs().sum() == 0
    unknown = RefreshMemory(2, 16).recall(torch.tensor([0, 1]))
    assert refresh_loss(outputs, unknown, torch.tensor([1.0, 1.0]),
                        torch.tensor([0.3, 0.3]))[0].item() == 0


def test_refresh_scores_prefer_the_sources():
    source = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    s_same, g_same = score_outputs(source, source, source)
    s_noise, g_noise = score_outputs(torch.rand(1, 1, 32, 32), source, source)
    assert s_same.item() == pytest.approx(2.0, abs=1e-4) and g_same.item() == 0
    assert s_noise < s_same and g_noise > g_same


# ------------------------------------------------------------------ trainers end to end
def assert_runs_in_pipeline(path: Path, family: str):
    artifact = load_artifact(path)
    assert artifact.family == family
    provenance = artifact.manifest["provenance"]
    for key in ("data", "config", "epochs", "steps", "wall_time_s"):
        assert key in provenance
    assert "MI" in artifact.manifest["metrics"]["means"]
    visible = cv2.imread(str(next((path.parent / "scenes" / "vi").iterdir())))
    thermal = cv2.imread(str(next((path.parent / "scenes" / "ir").iterdir())), 0)
    fused = FusionPipeline.from_artifact(artifact).fuse(visible, thermal)
    assert fused.shape == visible.shape and fused.dtype == np.uint8


def test_teacher_training_lowers_the_loss(workspace, tiny_teacher):
    history = losses(workspace / "runs" / "teacher")
    assert history[-1] < 0.7 * history[0]
    assert_runs_in_pipeline(tiny_teacher, "teacher")
    assert (workspace / "runs" / "teacher" / "loss_curve.png").is_file()
    assert list((workspace / "runs" / "teacher" / "tensorboard").iterdir())
    assert (workspace / "runs" / "teacher" / "metrics.md").read_text().startswith("| method")


def test_lut_distillation_lowers_the_loss(workspace, tiny_teacher):
    config = make_config(workspace, "lut", f"""
train: {{epochs: 10, batch_size: 4, lr: 1.0e-3, log_every: 1}}
teacher: {{kind: artifact, path: {tiny_teacher}}}
lut: {{bins: 5, context_channels: 2, context_blocks: 1, init: zeros, lut_lr: 5.0e-2}}
""")
    result = train(config, progress=False)
    history = losses(result.run_dir, "l1")
    assert history[-1] < 0.7 * history[0]
    assert_runs_in_pipeline(result.artifact, "mm_lut")
    teacher = load_artifact(result.artifact).manifest["provenance"]["teacher"]
    assert teacher["sha256"].startswith("sha256:") and teacher["family"] == "teacher"


def test_quantisation_lut_reproduces_a_max_teacher(workspace):
    """A folder teacher holding max(luma, IR): the quantisation LUT must approximate max."""
    scenes = workspace / "scenes"
    references = workspace / "max_refs"
    references.mkdir(exist_ok=True)
    for path in (scenes / "vi").iterdir():
        luma = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2YCrCb)[..., 0]
        thermal = cv2.imread(str(scenes / "ir" / path.name), 0)
        cv2.imwrite(str(references / path.name), np.maximum(luma, thermal))
    config = make_config(workspace, "lut", f"""
data:
  sources: [{{kind: folder, path: {scenes}, references: {references}}}]
  crop_size: 32
teacher: {{kind: folder}}
lut: {{mode: quantise, bins: 9, context_channels: 2, context_blocks: 1}}
""", name="qlut")
    result = train(config, progress=False)
    assert result.steps == 0
    model = load_artifact(result.artifact).build_model()
    table = model.lut.detach()
    assert torch.allclose(table, table[:, :, :1, :].expand_as(table))  # no context dependence
    visible = cv2.imread(str(scenes / "vi" / "s0.png"))
    thermal = cv2.imread(str(scenes / "ir" / "s0.png"), 0)
    fused = FusionPipeline.from_artifact(result.artifact).fuse(visible, thermal)
    luma = cv2.cvtColor(visible, cv2.COLOR_BGR2YCrCb)[..., 0]
    expected = np.maximum(luma, thermal).astype(np.float64)
    fused_luma = cv2.cvtColor(fused, cv2.COLOR_BGR2YCrCb)[..., 0].astype(np.float64)
    assert np.mean(np.abs(fused_luma - expected)) < 12


def test_mini_distillation_lowers_the_loss(workspace, tiny_teacher):
    config = make_config(workspace, "mini", f"""
train: {{epochs: 12, batch_size: 4, lr: 1.0e-2, log_every: 1}}
teacher: {{kind: artifact, path: {tiny_teacher}}}
loss: {{gamma: 0.5, delta: 0.05, theta: 5.0}}
""")
    result = train(config, progress=False)
    history = losses(result.run_dir)
    assert history[-1] < 0.8 * history[0]
    assert_runs_in_pipeline(result.artifact, "mini")
    artifact = load_artifact(result.artifact)
    assert artifact.manifest["parameters"] == 113
    assert artifact.manifest["provenance"]["feature_distillation"] is True


def test_frame_level_mini_follows_a_classical_teacher(workspace):
    config = make_config(workspace, "mini", """
train: {epochs: 20, batch_size: 4, lr: 1.0e-2, log_every: 1}
teacher: {kind: classical, rule: sum_max_blend, max_weight: 0.5, sum_gain: 1.0}
mini: {init: analytic_max, cache_teacher: false, frame_level: true, centre_taps_only: true}
loss: {gamma: 0.0, delta: 0.0, theta: 0.0, lam: 0.0, refresh: false,
       feature_distillation: false, teacher_l1: 1.0}
""", name="level-mini")
    result = train(config, progress=False)
    history = losses(result.run_dir, "teacher_l1")
    assert history[-1] < 0.8 * history[0]
    assert_runs_in_pipeline(result.artifact, "mini")
    artifact = load_artifact(result.artifact)
    assert artifact.manifest["architecture"]["frame_level"] is True
    assert artifact.manifest["parameters"] == 113 + 10
    provenance = artifact.manifest["provenance"]
    assert provenance["teacher"]["kind"] == "classical" and provenance["centre_taps_only"]
    assert "L1(student, teacher)" in provenance["objective"]
    model = artifact.build_model()
    for conv in (model.conv1[1], model.conv2[1]):
        off_centre = conv.weight.detach().clone()
        off_centre[..., 1, 1] = 0.0
        assert torch.count_nonzero(off_centre) == 0
    assert torch.count_nonzero(model.level.weight) > 0


def test_torchscript_and_onnx_teachers_match_the_model(tmp_path, tiny_teacher):
    from lutfuse_ros.families.mini.model import MiniFusionNet
    from lutfuse_ros.training.teacher import ArtifactTeacher, OnnxTeacher, TorchScriptTeacher

    visible, infrared = torch.rand(1, 3, 24, 24), torch.rand(1, 1, 24, 24)
    reference = ArtifactTeacher(tiny_teacher)
    scripted_path = tmp_path / "teacher.pt"
    torch.jit.trace(reference.model, (visible, infrared)).save(str(scripted_path))
    scripted = TorchScriptTeacher(scripted_path)
    assert torch.allclose(scripted.fuse_luma(visible, infrared),
                          reference.fuse_luma(visible, infrared), atol=1e-5)
    mini = MiniFusionNet(quantise_input=False).eval()
    mini.fill_analytic()
    onnx_path = tmp_path / "mini.onnx"
    torch.onnx.export(mini, (visible, infrared), str(onnx_path), input_names=["visible_rgb",
                      "infrared"], output_names=["fused"], dynamo=False)
    onnx_teacher = OnnxTeacher(onnx_path)
    with torch.no_grad():
        expected = mini(visible, infrared).clamp(0, 1)
    assert torch.allclose(onnx_teacher.fuse_luma(visible, infrared), expected, atol=1e-5)
    assert onnx_teacher.describe()["sha256"].startswith("sha256:")


def test_finished_artifacts_and_checkpoints_are_protected(workspace, tiny_teacher):
    config = make_config(workspace, "teacher", """
train: {epochs: 1, batch_size: 4}
teacher_model: {width: 4}
""")
    with pytest.raises(FileExistsError, match="--force"):
        train(config, progress=False)
    config.output = str(workspace / "other.safetensors")
    with pytest.raises(ConfigError, match="--resume"):
        train(config, progress=False)


# ------------------------------------------------------------------ resume
def _cli(config: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "lutfuse_ros.cli.main", "train", "teacher",
                             "--config", str(config), "--no-progress", *extra],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_interrupted_run_resumes_to_the_same_model(tmp_path):
    write_scenes(tmp_path / "scenes")
    for name in ("straight", "killed"):
        (tmp_path / f"{name}.yaml").write_text(f"""
stage: teacher
name: {name}
output: {tmp_path}/{name}.safetensors
run_dir: {tmp_path}/{name}
data: {{sources: [{{kind: folder, path: {tmp_path}/scenes}}], crop_size: 32, crops_per_epoch: 8,
       fixed_crops: true}}
train: {{epochs: 30, batch_size: 4, lr: 1.0e-3, checkpoint_every: 10, log_every: 5}}
teacher_model: {{width: 4}}
""")
    straight = _cli(tmp_path / "straight.yaml")
    killed = _cli(tmp_path / "killed.yaml")
    checkpoint = tmp_path / "killed" / "checkpoint.pt"
    try:
        deadline = time.monotonic() + 120
        while not checkpoint.exists() and killed.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
        assert straight.wait(timeout=300) == 0, straight.stdout.read().decode()
    finally:
        for process in (straight, killed):
            if process.poll() is None:
                process.kill()
                process.wait()
    if not checkpoint.exists():
        pytest.fail("the run was killed before its first checkpoint")
    interrupted_at = torch.load(checkpoint, weights_only=True)["progress"]["global_step"]
    assert 0 < interrupted_at < 60
    resumed = _cli(tmp_path / "killed.yaml", "--resume")
    try:
        output = resumed.communicate(timeout=300)[0].decode()
    finally:
        if resumed.poll() is None:
            resumed.kill()
    assert resumed.returncode == 0, output
    final = torch.load(checkpoint, weights_only=True)["progress"]["global_step"]
    assert final == 60
    a = load_artifact(tmp_path / "straight.safetensors").state_dict
    b = load_artifact(tmp_path / "killed.safetensors").state_dict
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6), key
