"""Model artifacts: one ``.safetensors`` file holding the weights and a JSON manifest.

The manifest travels inside the safetensors header (metadata key ``lutfuse_manifest``), so a
model file is self-describing: family, architecture, tensor shapes, input and colour
conventions, output mapping, provenance and metrics. Loading validates all of it and never
unpickles anything.

Files written by :func:`save_artifact` (format version 2) also carry an ``integrity`` entry in
the manifest: the sha256 of the rest of the manifest and of every tensor, checked on load, so
a bit flipped on disk or in transfer is refused instead of fusing with silently altered
weights. Version 1 files (no integrity entry) are still read.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from lutfuse_ros.atomic_files import atomic_output
from lutfuse_ros.errors import ArtifactError
from lutfuse_ros.families import MODEL_FAMILIES, build_model

MANIFEST_KEY = "lutfuse_manifest"
#: Version written: 2 adds the mandatory ``integrity`` entry. Version 1 files still load.
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
ARTIFACT_SUFFIX = ".safetensors"

#: Conventions every artifact of this format shares (stored for the reader's benefit).
INPUT_CONVENTIONS = {
    "visible": "RGB float32 (N,3,H,W) on [0,1]; gray visible is replicated to 3 channels",
    "infrared": "float32 (N,1,H,W) on [0,1] after thermal normalisation",
    "colour_space": "full-range YCbCr (BT.601/JPEG); the model fuses luminance only",
    "output": "fused luminance (N,1,H,W); recombined with the visible Cb/Cr",
}
OUTPUT_MAPPINGS = ("none", "clamp", "minmax")
#: manifest key of the sha256 over the manifest (without this key) and the weights.
INTEGRITY_KEY = "integrity"
#: Largest integer an architecture entry may hold (bins, channels, blocks, width): a corrupt
#: or hostile manifest must not make the loader allocate or build a gigantic model.
MAX_ARCHITECTURE_INT = 1024


@dataclass
class Artifact:
    """A loaded model artifact.

    Attributes:
        path: the file it was read from (None for one built in memory).
        manifest: the JSON manifest (a dict).
        state_dict: name -> tensor, validated against the family's architecture.
    """

    path: Path | None
    manifest: dict
    state_dict: dict[str, torch.Tensor] = field(repr=False)

    @property
    def family(self) -> str:
        """Model family name, a key of :data:`lutfuse_ros.families.MODEL_FAMILIES`."""
        return self.manifest["family"]

    @property
    def output_mapping(self) -> str:
        """How the raw model output becomes a [0, 1] luminance: none, clamp or minmax."""
        return _output_mapping(self.manifest)

    @property
    def name(self) -> str:
        """A short human name: the manifest's, else the file stem."""
        return self.manifest.get("name") or (self.path.stem if self.path else self.family)

    def build_model(self) -> nn.Module:
        """Instantiate the model in eval mode with these weights loaded."""
        # The same architecture load_artifact validated: a manifest without one (or null)
        # means the family's defaults.
        model = build_model(self.family, self.manifest.get("architecture") or {})
        model.load_state_dict(self.state_dict, strict=True)
        return model.eval()


def make_manifest(model: nn.Module, *, name: str, description: str, provenance: dict,
                  metrics: dict | None = None, output_mapping: str | None = None) -> dict:
    """Build the manifest of a model about to be saved.

    Args:
        model: an instance of a registered model family.
        name: short identifier (``lutfuse-mmlut-roadscene``).
        description: one human sentence on what this model is.
        provenance: where it came from (source, data, config, teacher, epochs, ...).
        metrics: evaluation results, if any.
        output_mapping: override of the family's default mapping.
    """
    mapping = output_mapping or model.default_output_mapping
    if mapping not in OUTPUT_MAPPINGS:
        raise ValueError(f"output_mapping must be one of {OUTPUT_MAPPINGS}, got {mapping!r}")
    return {
        "format": "lutfuse-artifact",
        "format_version": FORMAT_VERSION,
        "name": name,
        "description": description,
        "family": model.family,
        "architecture": model.architecture(),
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "tensors": {k: {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")}
                    for k, v in model.state_dict().items()},
        "inputs": INPUT_CONVENTIONS,
        "output": {"mapping": mapping},
        "provenance": {"created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                       **provenance},
        "metrics": metrics or {},
    }


def save_artifact(model: nn.Module, path: str | os.PathLike, manifest: dict,
                  overwrite: bool = False) -> Path:
    """Write weights and manifest to one safetensors file, atomically.

    The file is written beside its destination under a temporary name and renamed, so an
    interrupted save never leaves a half-written model where a good one was.

    Args:
        model: the model to save.
        path: destination ``.safetensors`` path.
        manifest: from :func:`make_manifest`.
        overwrite: replace an existing file (otherwise refuse).

    Returns:
        The destination path.

    Raises:
        FileExistsError: the destination exists and ``overwrite`` is False.
    """
    from safetensors.torch import save_file

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    stored = json.loads(json.dumps({k: v for k, v in manifest.items() if k != INTEGRITY_KEY}))
    stored["format_version"] = FORMAT_VERSION
    stored[INTEGRITY_KEY] = {"sha256": integrity_sha256(stored, tensors)}
    with atomic_output(path, overwrite) as temporary:
        save_file(tensors, str(temporary), metadata={MANIFEST_KEY: json.dumps(stored)})
    return Path(path)


def integrity_sha256(manifest: dict, tensors: dict[str, torch.Tensor]) -> str:
    """sha256 of a manifest (its ``integrity`` entry left out) and the weights.

    Hashes the manifest as canonical JSON (sorted keys), then, in sorted key order, each
    tensor's name, dtype, shape and raw bytes.

    Args:
        manifest: a JSON-compatible manifest.
        tensors: name -> CPU tensor.

    Returns:
        64 hex digits.
    """
    digest = hashlib.sha256()
    body = {k: v for k, v in manifest.items() if k != INTEGRITY_KEY}
    digest.update(json.dumps(body, sort_keys=True, allow_nan=True).encode())
    for key in sorted(tensors):
        tensor = tensors[key].detach().to("cpu").contiguous()
        digest.update(f"|{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def load_artifact(path_or_name: str | os.PathLike) -> Artifact:
    """Load and validate an artifact by path or by shipped model name.

    Args:
        path_or_name: a ``.safetensors`` path, or the name of a model shipped with the
            package (see :func:`shipped_models`).

    Raises:
        ArtifactError: missing, truncated, corrupt or foreign file; a manifest that does not
            match the weights; non-finite values. The message names the file and the problem.
    """
    path = resolve_artifact_path(path_or_name)
    manifest, tensors = _read_safetensors(path)
    _validate(path, manifest, tensors)
    return Artifact(path=path, manifest=manifest, state_dict=tensors)


def shipped_models_dir() -> Path:
    """Folder of the models shipped inside the package."""
    return Path(str(resources.files("lutfuse_ros") / "resources" / "models"))


def shipped_models() -> dict[str, Path]:
    """Shipped model name (file stem) -> path."""
    folder = shipped_models_dir()
    return {p.stem: p for p in sorted(folder.glob(f"*{ARTIFACT_SUFFIX}"))}


def resolve_artifact_path(path_or_name: str | os.PathLike) -> Path:
    """Turn a shipped model name or a path into an existing file path.

    Raises:
        ArtifactError: neither a file nor a shipped model name.
    """
    candidate = Path(os.path.expanduser(str(path_or_name)))
    if candidate.is_file():
        return candidate
    shipped = shipped_models()
    if str(path_or_name) in shipped:
        return shipped[str(path_or_name)]
    if candidate.exists():
        raise ArtifactError(f"model artifact {candidate} is not a regular file")
    raise ArtifactError(f"model artifact {str(path_or_name)!r} not found: not a file, and not one "
                        f"of the shipped models ({', '.join(shipped) or 'none'})")


def _read_safetensors(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    from safetensors import SafetensorError, safe_open

    size = path.stat().st_size
    if size < 16:
        raise ArtifactError(f"{path}: file is {size} bytes, too short to be a safetensors model "
                            "(truncated or empty)")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise ArtifactError(f"{path}: not a readable safetensors file (truncated or corrupt?): "
                            f"{error}") from None
    if MANIFEST_KEY not in metadata:
        raise ArtifactError(f"{path}: safetensors file has no '{MANIFEST_KEY}' manifest; it was "
                            "not written by lutfuse (import foreign weights with "
                            "'lutfuse import-checkpoint')")
    try:
        manifest = json.loads(metadata[MANIFEST_KEY])
    except (json.JSONDecodeError, RecursionError) as error:
        raise ArtifactError(f"{path}: manifest is not valid JSON ({error})") from None
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{path}: manifest is not a JSON object")
    return manifest, tensors


def _output_mapping(manifest: dict) -> object:
    """The manifest's ``output.mapping``, ``none`` when absent.

    None when ``output`` is not a JSON object (not checked further here).
    """
    output = manifest.get("output", {})
    return output.get("mapping", "none") if isinstance(output, dict) else None


def _validate(path: Path, manifest: dict, tensors: dict[str, torch.Tensor]) -> None:
    if manifest.get("format") != "lutfuse-artifact":
        raise ArtifactError(f"{path}: manifest format is {manifest.get('format')!r}, "
                            "expected 'lutfuse-artifact'")
    version = manifest.get("format_version")
    if type(version) is not int or version not in READABLE_VERSIONS:
        raise ArtifactError(f"{path}: artifact format version {version!r} is not supported "
                            f"(this lutfuse reads versions {READABLE_VERSIONS})")
    family = manifest.get("family")
    if not isinstance(family, str) or family not in MODEL_FAMILIES:
        raise ArtifactError(f"{path}: unknown model family {family!r}")
    mapping = _output_mapping(manifest)
    if not isinstance(mapping, str) or mapping not in OUTPUT_MAPPINGS:
        raise ArtifactError(f"{path}: output mapping must be one of {OUTPUT_MAPPINGS}, got "
                            f"output={manifest.get('output')!r}")
    expected = _expected_state(path, family, manifest.get("architecture") or {})
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise ArtifactError(f"{path}: tensors do not match a {family} model: missing {missing}, "
                            f"unexpected {unexpected}")
    for key, reference in expected.items():
        tensor = tensors[key]
        if tuple(tensor.shape) != tuple(reference.shape):
            raise ArtifactError(f"{path}: tensor {key!r} has shape {tuple(tensor.shape)}, "
                                f"expected {tuple(reference.shape)}")
        if tensor.dtype != reference.dtype:
            raise ArtifactError(f"{path}: tensor {key!r} has dtype {tensor.dtype}, "
                                f"expected {reference.dtype}")
        if not torch.isfinite(tensor).all():
            bad = int((~torch.isfinite(tensor)).sum())
            raise ArtifactError(f"{path}: tensor {key!r} holds {bad} NaN/inf values")
    _check_integrity(path, manifest, tensors)


def _expected_state(path: Path, family: str, architecture: object) -> dict[str, torch.Tensor]:
    """Shapes and dtypes of the family's weights for ``architecture``.

    The model is built on the meta device (no memory), after bounding every integer so a
    corrupt manifest cannot ask for a gigantic model.
    """
    if not isinstance(architecture, dict):
        raise ArtifactError(f"{path}: architecture must be a JSON object, got {architecture!r}")
    for key, value in architecture.items():
        if isinstance(value, int) and not 0 <= value <= MAX_ARCHITECTURE_INT:
            raise ArtifactError(f"{path}: architecture {key}={value} is outside "
                                f"0..{MAX_ARCHITECTURE_INT} (corrupt manifest?)")
    try:
        with torch.device("meta"):
            return build_model(family, architecture).state_dict()
    except ArtifactError as error:
        raise ArtifactError(f"{path}: {error}") from None
    except Exception as error:  # model constructors raise RuntimeError etc. on odd values
        raise ArtifactError(f"{path}: invalid architecture for {family!r}: {architecture} "
                            f"({type(error).__name__}: {error})") from None


def _check_integrity(path: Path, manifest: dict, tensors: dict[str, torch.Tensor]) -> None:
    """Compare the manifest's ``integrity.sha256`` with the file's content (version 2 on)."""
    if manifest["format_version"] < 2:
        return  # written before integrity hashes existed
    if INTEGRITY_KEY not in manifest:
        raise ArtifactError(f"{path}: format version {manifest['format_version']} manifest has no "
                            f"'{INTEGRITY_KEY}' entry (corrupt file?)")
    recorded = manifest[INTEGRITY_KEY]
    recorded = recorded.get("sha256") if isinstance(recorded, dict) else None
    actual = integrity_sha256(manifest, tensors)
    if recorded != actual:
        raise ArtifactError(f"{path}: content does not match its integrity sha256 (recorded "
                            f"{str(recorded)[:16]}..., computed {actual[:16]}...): the file was "
                            "corrupted or edited after it was saved")
