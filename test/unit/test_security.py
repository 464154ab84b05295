"""Security: nothing untrusted is unpickled or executed, and derived names stay in their folder.

The first part parses every module of the package (``ast``) and refuses pickle-based loaders,
``torch.load`` without ``weights_only=True``, ``np.load(allow_pickle=True)``, ``yaml.load``
without a safe loader, ``eval``/``exec``/``compile``, shell commands and aliases that would
hide any of these from the scan. The scanner is itself tested on snippets, so a rule that
stopped matching would fail here.

The second part feeds hostile names (``..``, ``../x``, absolute paths, separators) to every
place that builds a file name inside an output folder from data or configuration: ``lutfuse
fuse`` output names (input file stems), the TensorRT engine cache (model name from a
manifest), the teacher-output cache of training (source labels and frame keys), and
:func:`~lutfuse_ros.atomic_files.path_inside` itself.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lutfuse_ros
from lutfuse_ros.atomic_files import path_inside
from lutfuse_ros.errors import ConfigError

PACKAGE = Path(lutfuse_ros.__file__).resolve().parent
#: modules that may never be imported: every one of them unpickles (or unmarshals) data.
PICKLING_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve",
                    "marshal", "jsonpickle"}
#: builtins that run code from a string.
CODE_BUILTINS = {"eval", "exec", "compile", "__import__"}
#: ``module.function`` calls refused outright.
REFUSED_CALLS = {"yaml.unsafe_load", "yaml.unsafe_load_all", "yaml.full_load",
                 "yaml.full_load_all", "pandas.read_pickle", "pd.read_pickle", "os.system",
                 "os.popen", "numpy.lib.format.read_array"}
SAFE_YAML_LOADERS = {"SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader"}
#: TorchScript archives run no Python and unpickle only with torch's restricted unpickler;
#: the only reader is the training teacher a user names explicitly (``kind: torchscript``).
ALLOWED_TORCHSCRIPT_LOADS = {"training/teacher.py"}
#: ``from X import Y`` pairs that would hide a loader from the call checks.
HIDDEN_LOADERS = {("torch", "load"), ("numpy", "load"), ("yaml", "load"),
                  ("yaml", "load_all"), ("yaml", "unsafe_load"), ("yaml", "full_load"),
                  ("torch.jit", "load"), ("os", "system")}
NUMPY_NAMES = {"np", "numpy"}


@dataclass(frozen=True)
class Finding:
    """One unsafe construct: file, line and what it is."""

    where: str
    line: int
    problem: str

    def __str__(self) -> str:
        return f"{self.where}:{self.line}: {self.problem}"


def dotted_name(node: ast.AST) -> str:
    """``a.b.c`` of a Name/Attribute chain ('' for anything else)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted_name(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def keyword(call: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def is_constant(node: ast.AST | None, value: object) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def call_problem(call: ast.Call, where: str) -> str | None:
    """Why ``call`` is unsafe, or None."""
    name = dotted_name(call.func)
    head, _, last = name.rpartition(".")
    if isinstance(call.func, ast.Name) and name in CODE_BUILTINS:
        return f"{name}() runs code from a string"
    if name in REFUSED_CALLS:
        return f"{name}() is refused (unsafe loader or shell)"
    if head.split(".")[0] in PICKLING_MODULES:
        return f"{name}() unpickles"
    if name == "torch.load" and not is_constant(keyword(call, "weights_only"), True):
        return "torch.load without weights_only=True"
    if name == "torch.jit.load" and where not in ALLOWED_TORCHSCRIPT_LOADS:
        return "torch.jit.load outside the reviewed TorchScript teacher"
    if head in NUMPY_NAMES and last == "load":
        allow = keyword(call, "allow_pickle")
        if allow is not None and not is_constant(allow, False):
            return f"{name}(allow_pickle=...) may unpickle"
    if name in ("yaml.load", "yaml.load_all"):
        loader = keyword(call, "Loader") or (call.args[1] if len(call.args) > 1 else None)
        if dotted_name(loader).rpartition(".")[2] not in SAFE_YAML_LOADERS if loader else True:
            return f"{name} without a safe Loader"
    if last in ("run", "Popen", "call", "check_call", "check_output") and head == "subprocess":
        if not is_constant(keyword(call, "shell"), False) and keyword(call, "shell") is not None:
            return f"{name}(shell=...) runs a shell"
    return None


def scan_source(source: str, where: str) -> list[Finding]:
    """Every unsafe construct of one module's source."""
    findings = []
    for node in ast.walk(ast.parse(source, filename=where)):
        problem = None
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
            bad = [n for n in names if n.split(".")[0] in PICKLING_MODULES]
            problem = f"imports {', '.join(bad)}" if bad else None
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if module.split(".")[0] in PICKLING_MODULES:
                problem = f"imports from {module}"
            hidden = [a.name for a in node.names if (module, a.name) in HIDDEN_LOADERS]
            if hidden:
                problem = f"from {module} import {', '.join(hidden)} hides a loader"
        elif isinstance(node, ast.Call):
            problem = call_problem(node, where)
        if problem:
            findings.append(Finding(where, node.lineno, problem))
    return findings


def package_modules() -> list[tuple[str, str]]:
    return [(path.relative_to(PACKAGE).as_posix(), path.read_text(encoding="utf-8"))
            for path in sorted(PACKAGE.rglob("*.py"))]


def test_the_package_never_unpickles_or_executes_untrusted_data():
    modules = package_modules()
    assert len(modules) > 50, "the scan must see the whole package"
    findings = [f for where, source in modules for f in scan_source(source, where)]
    assert not findings, "unsafe constructs:\n" + "\n".join(map(str, findings))


def test_every_torch_load_of_the_package_is_weights_only():
    calls = [(where, node) for where, source in package_modules()
             for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Call)
             and dotted_name(node.func) == "torch.load"]
    assert calls, "the official checkpoints are read with torch.load somewhere"
    for where, call in calls:
        assert is_constant(keyword(call, "weights_only"), True), f"{where}:{call.lineno}"


@pytest.mark.parametrize("snippet, problem", [
    ("import pickle", "imports pickle"),
    ("from joblib import load", "imports from joblib"),
    ("import dill as d", "imports dill"),
    ("torch.load(path)", "torch.load without weights_only=True"),
    ("torch.load(path, weights_only=False)", "torch.load without weights_only=True"),
    ("torch.load(path, weights_only=flag)", "torch.load without weights_only=True"),
    ("np.load(path, allow_pickle=True)", "may unpickle"),
    ("numpy.load(path, allow_pickle=flag)", "may unpickle"),
    ("yaml.load(text)", "without a safe Loader"),
    ("yaml.load(text, Loader=yaml.Loader)", "without a safe Loader"),
    ("yaml.load(text, yaml.UnsafeLoader)", "without a safe Loader"),
    ("yaml.unsafe_load(text)", "refused"),
    ("yaml.full_load(text)", "refused"),
    ("eval('1 + 1')", "runs code"),
    ("exec(code)", "runs code"),
    ("compile(code, 'x', 'exec')", "runs code"),
    ("from torch import load", "hides a loader"),
    ("from yaml import load", "hides a loader"),
    ("subprocess.run(cmd, shell=True)", "runs a shell"),
    ("os.system('ls')", "refused"),
    ("torch.jit.load(path)", "outside the reviewed"),
    ("pickle.loads(data)", "unpickles"),
])
def test_the_scanner_catches_each_unsafe_form(snippet, problem):
    findings = scan_source(snippet, "example.py")
    assert findings and problem in findings[0].problem, findings


@pytest.mark.parametrize("snippet", [
    "torch.load(path, map_location='cpu', weights_only=True)",
    "np.load(path, allow_pickle=False)",
    "np.load(path)",  # numpy's default refuses pickles
    "yaml.safe_load(text)",
    "yaml.load(text, Loader=yaml.SafeLoader)",
    "yaml.load(text, yaml.CSafeLoader)",
    "model.eval()",
    "subprocess.run(['ls'], check=True)",
    "subprocess.Popen(cmd, shell=False)",
])
def test_the_scanner_accepts_the_safe_forms(snippet):
    assert scan_source(snippet, "example.py") == []


def test_torchscript_teacher_is_the_only_allowed_exception():
    assert scan_source("torch.jit.load(path)", "training/teacher.py") == []


# ------------------------------------------------------------------ names inside folders
HOSTILE_NAMES = st.one_of(
    st.sampled_from(["..", ".", "", "../escape", "../../etc/passwd", "/tmp/abs", "a/../../b",
                     "sub/dir", "..\\win", "\0nul", "~/home"]),
    st.text(st.sampled_from("./\\a~\0"), min_size=1, max_size=8))


def stays_inside(folder: Path, path: Path) -> bool:
    folder = Path(os.path.abspath(folder))
    candidate = Path(os.path.abspath(path))
    return candidate.parent == folder


OUTPUT_FOLDER = Path("/srv/lutfuse/out")  # names are only computed here, never written


@settings(max_examples=150, deadline=None)
@given(name=HOSTILE_NAMES)
def test_path_inside_refuses_every_name_that_is_not_a_plain_file_name(name):
    try:
        path = path_inside(OUTPUT_FOLDER, name)
    except ConfigError as error:
        assert repr(name) in str(error) and str(OUTPUT_FOLDER) in str(error)
        return
    assert "/" not in name and "\\" not in name and "\0" not in name
    assert name not in ("", ".", "..")
    assert stays_inside(OUTPUT_FOLDER, path)


@settings(max_examples=150, deadline=None)
@given(name=st.text(max_size=30))
def test_engine_cache_names_from_a_manifest_stay_in_the_cache(name):
    """The artifact name of a (possibly hostile) manifest names the engine files."""
    from lutfuse_ros.export.engine_cache import EngineKey, engine_paths

    key = EngineKey("10.0", "gpu", "8.9", "0" * 64, "fp16")
    for path in engine_paths(OUTPUT_FOLDER, name, key):
        assert stays_inside(OUTPUT_FOLDER, path), path
        assert path.name not in (".", "..")


def write_pairs(folder: Path, stems: list[str]) -> None:
    for sub in ("vi", "ir"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for index, stem in enumerate(stems):
        image = np.full((8, 8, 3), 40 * index, np.uint8)
        cv2.imwrite(str(folder / "vi" / f"{stem}.png"), image)
        cv2.imwrite(str(folder / "ir" / f"{stem}.png"), image[..., 0])


def test_fuse_outputs_named_after_odd_input_files_stay_in_the_output_folder(tmp_path):
    from lutfuse_ros.cli.main import main

    stems = ["..", "...", ".hidden", "12:30:01", "-rf", "~"]
    write_pairs(tmp_path / "in", stems)
    out = tmp_path / "out"
    assert main(["fuse", "--visible", str(tmp_path / "in" / "vi"), "--thermal",
                 str(tmp_path / "in" / "ir"), "-o", str(out), "--model", "lutfuse-mini"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{s}.png" for s in stems)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]


def test_fuse_refuses_an_input_name_that_is_not_a_plain_file_name(tmp_path, capsys):
    from lutfuse_ros.cli.main import main

    write_pairs(tmp_path / "in", ["good", "back\\slash"])
    out = tmp_path / "out"
    assert main(["fuse", "--visible", str(tmp_path / "in" / "vi"), "--thermal",
                 str(tmp_path / "in" / "ir"), "-o", str(out), "--model", "lutfuse-mini"]) == 1
    assert "back\\\\slash.png" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("label", ["..", "../../escape", "/abs/olute", "a/../../b"])
def test_teacher_output_cache_keys_stay_in_the_cache(tmp_path, label):
    """Training caches one file per frame key (``label/stem``); the label is configuration."""
    import torch

    from lutfuse_ros.artifacts import make_manifest, save_artifact
    from lutfuse_ros.families.mini.model import MiniFusionNet
    from lutfuse_ros.training.datasets import FolderSource, FrameStore
    from lutfuse_ros.training.distributed import DistContext
    from lutfuse_ros.training.references import attach_teacher_references
    from lutfuse_ros.training.teacher import ArtifactTeacher

    write_pairs(tmp_path / "data", ["s0", "s1"])
    model = MiniFusionNet()
    teacher_path = save_artifact(model, tmp_path / "teacher.safetensors", make_manifest(
        model, name="teacher", description="t", provenance={}))
    store = FrameStore([FolderSource(tmp_path / "data", label=label)])
    cache = tmp_path / "deep" / "cache"
    folder = attach_teacher_references(store, ArtifactTeacher(teacher_path), cache,
                                       DistContext(), torch.device("cpu"), progress=False)
    written = [p for p in tmp_path.rglob("*.png") if "data" not in p.parts]
    assert len(written) == 2 and all(stays_inside(folder, p) for p in written), written
    assert store.get(0).reference is not None
