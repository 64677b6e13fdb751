"""The runtime wheel set: what is asked of pip, and what keys the cache."""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import pytest

from chaos.images.config import ImageConfig
from chaos.images.wheels import IMAGE_EXTRAS, _pip_download_command, cached_wheels, runtime_requirements, wheels_key

ROOT = Path(__file__).resolve().parents[3]


def _config(tmp_path: Path) -> ImageConfig:
    root = tmp_path / "checkout"
    root.mkdir()
    for name in ("pyproject.toml", "constraints.txt"):
        shutil.copy(ROOT / name, root / name)
    return ImageConfig(root=root, cache_dir=tmp_path / "cache")


def test_requirements_are_the_runtime_dependencies_plus_image_extras(tmp_path: Path) -> None:
    requirements = runtime_requirements(_config(tmp_path))
    names = {r.split(";")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower() for r in requirements}
    assert {"docker", "toxiproxy-python", "tenacity", "redis", "aiohttp", "websockets"} <= names
    assert "pytest" not in names and "mypy" not in names  # test extras stay out
    assert "hypothesis" in names  # a runtime dependency: roomquake explore
    assert set(IMAGE_EXTRAS) <= set(requirements)


def test_download_is_binary_only_for_the_image_python_and_pinned(tmp_path: Path) -> None:
    config = _config(tmp_path)
    command = _pip_download_command(config, tmp_path / "out")
    assert "--only-binary=:all:" in command
    assert command[command.index("--python-version") + 1] == "3.11"
    assert command[command.index("-c") + 1] == str(config.constraints)
    assert "manylinux2014_x86_64" in command


def test_cache_key_follows_pins_and_platform(tmp_path: Path) -> None:
    config = _config(tmp_path)
    key = wheels_key(config)
    assert wheels_key(config) == key
    assert wheels_key(dataclasses.replace(config, python_version="3.12")) != key
    pinned = config.constraints.read_text()
    moved = re.sub(r"^redis==.*$", "redis==0.0.1", pinned, flags=re.MULTILINE)
    assert moved != pinned
    config.constraints.write_text(moved)
    assert wheels_key(config) != key


def test_nothing_cached_in_an_empty_cache(tmp_path: Path) -> None:
    assert cached_wheels(_config(tmp_path)) is None


@pytest.mark.parametrize("extra", IMAGE_EXTRAS)
def test_image_extras_are_pinned(extra: str) -> None:
    assert "==" in extra
