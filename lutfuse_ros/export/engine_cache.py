"""TensorRT engine cache: keys, JSON sidecars, stale detection and rebuild commands.

A serialised engine is valid only for the TensorRT version, GPU model and compute capability
that built it, and for the exact ONNX graph it was built from. The cache stores each engine as
``<model>-<precision>-<key digest>.engine`` beside a ``.json`` sidecar holding the full key,
the optimisation profile, the engine's sha256 and how it was built. Nothing here needs
TensorRT or a GPU; :mod:`lutfuse_ros.export.tensorrt_build` builds engines and
:mod:`lutfuse_ros.backends.tensorrt_backend` runs them.

Every error names the exact ``lutfuse export tensorrt ...`` command that rebuilds the engine:
engines are never built silently at startup.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lutfuse_ros.errors import BackendError, ConfigError
from lutfuse_ros.atomic_files import atomic_output
from lutfuse_ros.families.mmlut.export_ops import DEFAULT_LUT_OP

PRECISIONS = ("fp16", "fp32")
#: (width, height) pairs the default optimisation profile covers.
DEFAULT_RESOLUTIONS = ((640, 480), (1280, 720), (1920, 1080))
DEFAULT_WORKSPACE_MB = 1024
SIDECAR_FORMAT = "lutfuse-trt-engine/1"
ENGINE_SUFFIX = ".engine"
SIDECAR_SUFFIX = ".json"
CACHE_ENV = "LUTFUSE_ENGINE_CACHE"


def default_cache_dir() -> Path:
    """The engine cache folder.

    ``$LUTFUSE_ENGINE_CACHE``, else ``$XDG_CACHE_HOME/lutfuse/engines``, else
    ``~/.cache/lutfuse/engines``.
    """
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(base).expanduser() / "lutfuse" / "engines"


def parse_resolution(text: str) -> tuple[int, int]:
    """``"640x480"`` -> ``(640, 480)`` as (width, height).

    Raises:
        ConfigError: not ``WIDTHxHEIGHT`` with both at least 2.
    """
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(text))
    if not match or min(int(match[1]), int(match[2])) < 2:
        raise ConfigError(f"resolution must be WIDTHxHEIGHT with both >= 2 (e.g. 640x480), "
                          f"got {text!r}")
    return int(match[1]), int(match[2])


def format_resolution(resolution: tuple[int, int]) -> str:
    """``(640, 480)`` -> ``"640x480"``."""
    return f"{resolution[0]}x{resolution[1]}"


@dataclass(frozen=True)
class ProfileShapes:
    """An optimisation profile over image sizes (batch 1).

    Attributes:
        resolutions: the (width, height) sizes it must cover.
        opt: the size TensorRT tunes kernels for (the first resolution by default).
    """

    resolutions: tuple[tuple[int, int], ...]
    opt: tuple[int, int]

    @classmethod
    def covering(cls, resolutions=DEFAULT_RESOLUTIONS, opt: tuple[int, int] | None = None,
                 ) -> "ProfileShapes":
        """The smallest profile covering ``resolutions`` (and ``opt``)."""
        sizes = tuple(dict.fromkeys(tuple(int(v) for v in r) for r in resolutions))
        if not sizes:
            raise ConfigError("an optimisation profile needs at least one resolution")
        opt = tuple(int(v) for v in (opt or sizes[0]))
        if opt not in sizes:
            sizes = (*sizes, opt)
        return cls(resolutions=sizes, opt=opt)

    @property
    def min_hw(self) -> tuple[int, int]:
        """Smallest (height, width) of the profile."""
        return min(h for _, h in self.resolutions), min(w for w, _ in self.resolutions)

    @property
    def max_hw(self) -> tuple[int, int]:
        """Largest (height, width) of the profile."""
        return max(h for _, h in self.resolutions), max(w for w, _ in self.resolutions)

    @property
    def opt_hw(self) -> tuple[int, int]:
        """(height, width) TensorRT optimises for."""
        return self.opt[1], self.opt[0]

    def contains(self, height: int, width: int) -> bool:
        """Whether an input of this size lies inside the profile's min/max box."""
        (h_min, w_min), (h_max, w_max) = self.min_hw, self.max_hw
        return h_min <= height <= h_max and w_min <= width <= w_max

    def input_shapes(self, channels: int) -> tuple[tuple[int, ...], ...]:
        """``(min, opt, max)`` NCHW shapes of an input with ``channels`` channels."""
        return tuple((1, channels, *hw) for hw in (self.min_hw, self.opt_hw, self.max_hw))

    def describe(self) -> str:
        """``min 640x480, opt 640x480, max 1920x1080`` (width x height)."""
        return ", ".join(f"{label} {hw[1]}x{hw[0]}" for label, hw in
                         (("min", self.min_hw), ("opt", self.opt_hw), ("max", self.max_hw)))

    def to_dict(self) -> dict:
        return {"resolutions": [format_resolution(r) for r in self.resolutions],
                "opt": format_resolution(self.opt), "min_hw": list(self.min_hw),
                "max_hw": list(self.max_hw)}

    @classmethod
    def from_dict(cls, data: dict) -> "ProfileShapes":
        return cls.covering([parse_resolution(r) for r in data["resolutions"]],
                            parse_resolution(data["opt"]))


@dataclass(frozen=True)
class EngineKey:
    """What makes a serialised engine valid: runtime, GPU, graph and precision."""

    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    onnx_sha256: str
    precision: str

    def digest(self) -> str:
        """16 hex digits identifying this key (part of the engine file name)."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def differences(self, found: "EngineKey") -> list[str]:
        """How ``found`` (an engine's key) differs from this (the wanted) key."""
        labels = {"tensorrt_version": "TensorRT version", "gpu_name": "GPU",
                  "compute_capability": "compute capability", "onnx_sha256": "ONNX sha256",
                  "precision": "precision"}
        wanted, have = asdict(self), asdict(found)
        return [f"{label}: engine has {have[name]!r}, here {wanted[name]!r}"
                for name, label in labels.items() if have[name] != wanted[name]]


@dataclass(frozen=True)
class EngineRecord:
    """The JSON sidecar of a cached engine."""

    key: EngineKey
    profile: ProfileShapes
    workspace_mb: int
    engine_sha256: str
    model_name: str
    weights_sha256: str
    lut_op: str
    build_command: str
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc)
                         .isoformat(timespec="seconds"))

    def to_json(self) -> str:
        data = {"format": SIDECAR_FORMAT, "key": asdict(self.key),
                "profile": self.profile.to_dict(), "workspace_mb": self.workspace_mb,
                "engine_sha256": self.engine_sha256, "model_name": self.model_name,
                "weights_sha256": self.weights_sha256, "lut_op": self.lut_op,
                "build_command": self.build_command, "created": self.created}
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "EngineRecord":
        data = json.loads(text)
        if data.get("format") != SIDECAR_FORMAT:
            raise ValueError(f"sidecar format is {data.get('format')!r}, expected "
                             f"{SIDECAR_FORMAT!r}")
        return cls(key=EngineKey(**data["key"]), profile=ProfileShapes.from_dict(data["profile"]),
                   workspace_mb=int(data["workspace_mb"]), engine_sha256=data["engine_sha256"],
                   model_name=data["model_name"], weights_sha256=data["weights_sha256"],
                   lut_op=data.get("lut_op", ""), build_command=data["build_command"],
                   created=data.get("created", ""))


def engine_paths(cache_dir: str | os.PathLike, model_name: str, key: EngineKey,
                 ) -> tuple[Path, Path]:
    """``(engine, sidecar)`` paths of a key in a cache folder."""
    safe_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", model_name) or "model"
    stem = f"{safe_name}-{key.precision}-{key.digest()}"
    folder = Path(cache_dir)
    return folder / f"{stem}{ENGINE_SUFFIX}", folder / f"{stem}{SIDECAR_SUFFIX}"


def rebuild_command(source: str, precision: str, profile: ProfileShapes,
                    cache_dir: str | os.PathLike | None = None, lut_op: str = "",
                    workspace_mb: int = DEFAULT_WORKSPACE_MB, device: str = "cuda",
                    output: str | os.PathLike | None = None) -> str:
    """The ``lutfuse export tensorrt`` command line that builds this engine.

    Args:
        source: artifact (shipped name or path) or ``.onnx`` path.
        precision: ``fp16`` or ``fp32``.
        profile: the sizes the engine must accept.
        cache_dir: cache folder, named only when it is not the default.
        lut_op: LUT formulation, named only when not the default ``gridsample``.
        workspace_mb: builder workspace, named only when not the default.
        device: CUDA device, named only when not the first GPU.
        output: an explicit engine path instead of the cache.
    """
    parts = ["lutfuse", "export", "tensorrt", os.fspath(source), "--precision", precision,
             "--resolutions", *(format_resolution(r) for r in profile.resolutions)]
    if profile.opt != profile.resolutions[0]:
        parts += ["--opt", format_resolution(profile.opt)]
    if lut_op and lut_op != DEFAULT_LUT_OP:
        parts += ["--lut-op", lut_op]
    if workspace_mb != DEFAULT_WORKSPACE_MB:
        parts += ["--workspace-mb", str(workspace_mb)]
    if cache_dir is not None and Path(cache_dir) != default_cache_dir():
        parts += ["--cache-dir", os.fspath(cache_dir)]
    if device not in ("cuda", "cuda:0"):
        parts += ["--device", device]
    if output is not None:
        parts += ["--output", os.fspath(output)]
    return " ".join(shlex.quote(str(part)) for part in parts)


def save_engine(engine_path: str | os.PathLike, record: EngineRecord, engine: bytes,
                force: bool = False) -> Path:
    """Store an engine and its ``.json`` sidecar (engine first, sidecar last, both atomic).

    Args:
        engine_path: destination, usually from :func:`engine_paths`.
        record: the sidecar; its ``engine_sha256`` must describe ``engine``.
        engine: serialised engine bytes.
        force: replace an existing engine.

    Raises:
        FileExistsError: the engine or its sidecar exists and ``force`` is False.
        ValueError: ``record.engine_sha256`` does not describe ``engine``.
    """
    if hashlib.sha256(engine).hexdigest() != record.engine_sha256:
        raise ValueError("record.engine_sha256 does not match the engine bytes")
    engine_path = Path(engine_path)
    sidecar_path = engine_path.with_suffix(SIDECAR_SUFFIX)
    if not force and (engine_path.exists() or sidecar_path.exists()):
        raise FileExistsError(f"{engine_path} exists; pass --force to rebuild it")
    with atomic_output(engine_path, overwrite=True) as temporary:
        temporary.write_bytes(engine)
    with atomic_output(sidecar_path, overwrite=True) as temporary:
        temporary.write_text(record.to_json())
    return engine_path


def read_record(sidecar_path: str | os.PathLike, command: str) -> EngineRecord:
    """Read an engine sidecar.

    Raises:
        BackendError: missing or unreadable sidecar (naming ``command``).
    """
    path = Path(sidecar_path)
    try:
        return EngineRecord.from_json(path.read_text())
    except FileNotFoundError:
        raise BackendError(f"TensorRT engine sidecar {path} is missing, so the engine cannot be "
                           f"validated; rebuild it with: {command}") from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise BackendError(f"TensorRT engine sidecar {path} is unreadable ({error}); rebuild "
                           f"the engine with: {command}") from None


def verify_engine(engine_path: str | os.PathLike, expected: EngineKey, command: str,
                  ) -> tuple[EngineRecord, bytes]:
    """Check an engine file against the key it must have; return its record and bytes.

    Raises:
        BackendError: missing engine or sidecar, a key that differs (TensorRT version, GPU,
            compute capability, ONNX hash, precision), or engine bytes that do not match the
            sidecar's sha256. The message lists the differences and names ``command``.
    """
    path = Path(engine_path)
    if not path.is_file():
        raise BackendError(f"TensorRT engine {path} not found; build it with: {command}")
    record = read_record(path.with_suffix(SIDECAR_SUFFIX), command)
    differences = expected.differences(record.key)
    if differences:
        raise BackendError(f"TensorRT engine {path} is stale ({'; '.join(differences)}); "
                           f"rebuild it with: {command}")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != record.engine_sha256:
        raise BackendError(f"TensorRT engine {path} does not match the sha256 in its sidecar "
                           f"(overwritten or truncated); rebuild it with: {command}")
    return record, data


def locate_engine(cache_dir: str | os.PathLike, model_name: str, expected: EngineKey,
                  command: str) -> tuple[Path, EngineRecord, bytes]:
    """Find and verify the cached engine for ``expected``.

    Raises:
        BackendError: none cached for this key. The message lists engines of the same model
            cached for other keys and how they differ (an upgraded TensorRT, another GPU, a
            re-exported ONNX), and names ``command``.
    """
    engine_path, _ = engine_paths(cache_dir, model_name, expected)
    if engine_path.is_file():
        record, data = verify_engine(engine_path, expected, command)
        return engine_path, record, data
    near = []
    for sidecar in sorted(Path(cache_dir).glob(f"*{SIDECAR_SUFFIX}")):
        try:
            record = EngineRecord.from_json(sidecar.read_text())
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if record.model_name == model_name:
            near.append(f"{sidecar.with_suffix(ENGINE_SUFFIX).name} "
                        f"({'; '.join(expected.differences(record.key))})")
    found = f"; cached engines of {model_name!r} are stale: {' | '.join(near)}" if near else ""
    raise BackendError(f"no TensorRT engine for {model_name!r} ({expected.precision}, "
                       f"TensorRT {expected.tensorrt_version}, {expected.gpu_name}) in "
                       f"{cache_dir}{found}; build it with: {command}")


def check_input_shape(record: EngineRecord, height: int, width: int, command: str) -> None:
    """Raise unless a ``height x width`` input lies inside the engine's profile.

    Raises:
        BackendError: outside the profile; names ``command`` (which should include the size).
    """
    if not record.profile.contains(height, width):
        raise BackendError(f"input {width}x{height} is outside the TensorRT engine's "
                           f"optimisation profile ({record.profile.describe()}); rebuild it "
                           f"covering this size with: {command}")
